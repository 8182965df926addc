"""Low-resolution simulation on the FOV-preserving grid (LR pixel n centred on HR s·n + (s−1)/2)."""

from sciSR.degrade.binning import bin_array, replicate

__all__ = ["bin_array", "replicate"]
