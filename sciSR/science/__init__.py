"""Science validation of super-resolved sky frames (``sciSR.science.report``).

Detects sources (photutils when installed, else the simple detector of :mod:`sciSR.science.detect`),
compares aperture photometry and WCS-mapped centroids of the input and the output, measures the
background noise of both and runs the model on pure noise to count hallucinated sources.
"""

from sciSR.science.detect import Background, Sources, aperture_sums, background_stats, detect_sources
from sciSR.science.frames import SHIPPED_SKY_FRAMES, shipped_sky_frames
from sciSR.science.report import ScienceReport, report

__all__ = ["SHIPPED_SKY_FRAMES", "Background", "ScienceReport", "Sources", "aperture_sums", "background_stats",
           "detect_sources", "report", "shipped_sky_frames"]
