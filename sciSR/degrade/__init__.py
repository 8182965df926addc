"""Low-resolution simulation on the FOV-preserving grid (LR pixel n centred on HR s·n + (s−1)/2).

Functions work on ``(*spatial, ...)`` numpy arrays (channels last, like :func:`bin_array`); the MONAI
transforms in :mod:`sciSR.degrade.monai_transforms` wrap them for channel-first pipelines. Everything but the
binning (:mod:`sciSR.blocks`) is imported on first use, so ``import sciSR`` does not pull in MONAI.
"""

import importlib
from typing import Any

from sciSR.blocks import bin_array, replicate

_LAZY = {
    "BicubicDownsample": "sciSR.degrade.monai_transforms",
    "BicubicDownsampled": "sciSR.degrade.monai_transforms",
    "BinDownsample": "sciSR.degrade.monai_transforms",
    "BinDownsampled": "sciSR.degrade.monai_transforms",
    "CTDownsample": "sciSR.degrade.monai_transforms",
    "CTDownsampled": "sciSR.degrade.monai_transforms",
    "DEGRADATIONS": "sciSR.degrade.monai_transforms",
    "KSpaceDownsample": "sciSR.degrade.monai_transforms",
    "KSpaceDownsampled": "sciSR.degrade.monai_transforms",
    "RandBicubicDownsample": "sciSR.degrade.monai_transforms",
    "RandBicubicDownsampled": "sciSR.degrade.monai_transforms",
    "RandCTDownsample": "sciSR.degrade.monai_transforms",
    "RandCTDownsampled": "sciSR.degrade.monai_transforms",
    "RandKSpaceDownsample": "sciSR.degrade.monai_transforms",
    "RandKSpaceDownsampled": "sciSR.degrade.monai_transforms",
    "RandTelescopeDownsample": "sciSR.degrade.monai_transforms",
    "RandTelescopeDownsampled": "sciSR.degrade.monai_transforms",
    "RandThickSlice": "sciSR.degrade.monai_transforms",
    "RandThickSliced": "sciSR.degrade.monai_transforms",
    "TelescopeDownsample": "sciSR.degrade.monai_transforms",
    "TelescopeDownsampled": "sciSR.degrade.monai_transforms",
    "ThickSlice": "sciSR.degrade.monai_transforms",
    "ThickSliced": "sciSR.degrade.monai_transforms",
    "bicubic_downsample": "sciSR.degrade.generic",
    "bicubic_resample": "sciSR.degrade.generic",
    "convolve_psf": "sciSR.degrade.telescope",
    "create_degradation": "sciSR.degrade.monai_transforms",
    "ct_downsample": "sciSR.degrade.ct",
    "kspace_downsample": "sciSR.degrade.mri",
    "kspace_resample": "sciSR.degrade.mri",
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
    "bicubic_resample",
    "bin_array",
    "convolve_psf",
    "create_degradation",
    "ct_downsample",
    "kspace_downsample",
    "kspace_resample",
    "kspace_truncate",
    "load_psf",
    "psf_kernel",
    "replicate",
    "telescope_downsample",
    "thick_slice",
]
