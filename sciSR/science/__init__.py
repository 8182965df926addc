"""Science validation of super-resolved sky frames (``sciSR.science.report``).

photutils (the ``astro`` extra) detects sources, fits the background, and measures aperture and PSF
photometry of the input and the output; the report compares them and WCS-mapped centroids, measures the
background noise of both and runs the model on pure noise to count hallucinated sources.
"""

from sciSR.science.detect import (
    Background,
    PSFFit,
    Sources,
    aperture_sums,
    background_stats,
    detect_sources,
    psf_photometry,
    require_photutils,
)
from sciSR.science.frames import SHIPPED_SKY_FRAMES, shipped_sky_frames
from sciSR.science.report import ScienceReport, report

__all__ = [
    "SHIPPED_SKY_FRAMES",
    "Background",
    "PSFFit",
    "ScienceReport",
    "Sources",
    "aperture_sums",
    "background_stats",
    "detect_sources",
    "psf_photometry",
    "report",
    "require_photutils",
    "shipped_sky_frames",
]
