"""Low-resolution simulation on the FOV-preserving grid (LR pixel n centred on HR s·n + (s−1)/2).

Functions work on ``(*spatial, ...)`` numpy arrays (channels last, like :func:`bin_array`); the MONAI
transforms in :mod:`sciSR.degrade.transforms` wrap them for channel-first pipelines. Everything but the
binning is imported on first use, so ``import sciSR`` does not pull in MONAI.
"""

import importlib
from typing import Any

from sciSR.degrade.binning import bin_array, replicate

_LAZY = {
    "BicubicDownsample": "sciSR.degrade.transforms",
    "BicubicDownsampled": "sciSR.degrade.transforms",
    "BinDownsample": "sciSR.degrade.transforms",
    "BinDownsampled": "sciSR.degrade.transforms",
    "CTDownsample": "sciSR.degrade.transforms",
    "CTDownsampled": "sciSR.degrade.transforms",
    "DEGRADATIONS": "sciSR.degrade.transforms",
    "KSpaceDownsample": "sciSR.degrade.transforms",
    "KSpaceDownsampled": "sciSR.degrade.transforms",
    "RandBicubicDownsample": "sciSR.degrade.transforms",
    "RandBicubicDownsampled": "sciSR.degrade.transforms",
    "RandCTDownsample": "sciSR.degrade.transforms",
    "RandCTDownsampled": "sciSR.degrade.transforms",
    "RandKSpaceDownsample": "sciSR.degrade.transforms",
    "RandKSpaceDownsampled": "sciSR.degrade.transforms",
    "RandTelescopeDownsample": "sciSR.degrade.transforms",
    "RandTelescopeDownsampled": "sciSR.degrade.transforms",
    "RandThickSlice": "sciSR.degrade.transforms",
    "RandThickSliced": "sciSR.degrade.transforms",
    "TelescopeDownsample": "sciSR.degrade.transforms",
    "TelescopeDownsampled": "sciSR.degrade.transforms",
    "ThickSlice": "sciSR.degrade.transforms",
    "ThickSliced": "sciSR.degrade.transforms",
    "bicubic_downsample": "sciSR.degrade.generic",
    "convolve_psf": "sciSR.degrade.telescope",
    "create_degradation": "sciSR.degrade.transforms",
    "ct_downsample": "sciSR.degrade.ct",
    "kspace_downsample": "sciSR.degrade.mri",
    "kspace_truncate": "sciSR.degrade.mri",
    "load_psf": "sciSR.degrade.telescope",
    "psf_kernel": "sciSR.degrade.telescope",
    "telescope_downsample": "sciSR.degrade.telescope",
    "thick_slice": "sciSR.degrade.mri",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'sciSR.degrade' has no attribute {name!r}")


__all__ = [
    "DEGRADATIONS",
    "BicubicDownsample",
    "BicubicDownsampled",
    "BinDownsample",
    "BinDownsampled",
    "CTDownsample",
    "CTDownsampled",
    "KSpaceDownsample",
    "KSpaceDownsampled",
    "RandBicubicDownsample",
    "RandBicubicDownsampled",
    "RandCTDownsample",
    "RandCTDownsampled",
    "RandKSpaceDownsample",
    "RandKSpaceDownsampled",
    "RandTelescopeDownsample",
    "RandTelescopeDownsampled",
    "RandThickSlice",
    "RandThickSliced",
    "TelescopeDownsample",
    "TelescopeDownsampled",
    "ThickSlice",
    "ThickSliced",
    "bicubic_downsample",
    "bin_array",
    "convolve_psf",
    "create_degradation",
    "ct_downsample",
    "kspace_downsample",
    "kspace_truncate",
    "load_psf",
    "psf_kernel",
    "replicate",
    "telescope_downsample",
    "thick_slice",
]
