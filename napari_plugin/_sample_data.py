"""Sample data: a generated knee MRI phantom and two files that installed packages ship (no downloads)."""

from __future__ import annotations

import os

import numpy as np

import sciSR

from ._layers import LayerDataTuple, image_layer

KNEE_SHAPE = (96, 96, 24)
KNEE_SPACING = (0.4, 0.4, 3.0)
# Tissue intensities (arbitrary MR units, PD-weighted look): bone marrow bright, cartilage brighter
# than the surrounding fluid-free joint space, muscle mid-grey.
_MUSCLE, _MARROW, _CORTEX, _CARTILAGE = 300.0, 700.0, 80.0, 900.0


def _ellipsoid(grid: tuple[np.ndarray, ...], centre: tuple[float, ...], radii: tuple[float, ...]) -> np.ndarray:
    return sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, radii, strict=True)) <= 1.0


def knee_phantom() -> sciSR.SciImage:
    """A deterministic thick-slice sagittal knee MRI phantom, 96 × 96 × 24 voxels of 0.4 × 0.4 × 3 mm.

    Array ``[i, j, k]`` like a sagittal DICOM series: ``i`` runs anterior → posterior (columns), ``j``
    superior → inferior (rows) and ``k`` across the slices from left to right. The femur (top) and
    tibia (bottom) are marrow-filled ellipsoids with a dark cortex, each capped by a cartilage layer,
    in muscle, plus Rician-like noise (seed 0).
    """
    mm = np.meshgrid(*(np.arange(n) * s for n, s in zip(KNEE_SHAPE, KNEE_SPACING, strict=True)), indexing="ij")
    volume = np.zeros(KNEE_SHAPE, dtype=np.float32)
    volume[_ellipsoid(mm, (19.2, 19.2, 36.0), (17.0, 30.0, 40.0))] = _MUSCLE
    # (centre, radii) in mm along (i, j, k); the joint line is at j ≈ 19 mm.
    for centre, radii in (((19.2, 7.0, 36.0), (10.0, 11.0, 26.0)), ((19.2, 31.5, 36.0), (11.0, 11.0, 28.0))):
        volume[_ellipsoid(mm, centre, tuple(r + 1.2 for r in radii))] = _CARTILAGE
        volume[_ellipsoid(mm, centre, radii)] = _CORTEX
        volume[_ellipsoid(mm, centre, tuple(r - 1.0 for r in radii))] = _MARROW
    rng = np.random.default_rng(0)
    noise = rng.normal(0.0, 20.0, (2, *KNEE_SHAPE)).astype(np.float32)
    volume = np.hypot(volume + noise[0], noise[1])
    # Sagittal DICOM orientation (0, 1, 0, 0, 0, −1) in LPS: i → posterior, j → inferior, slices → right;
    # in RAS: i → −A, j → −S, k → +R.
    affine = np.array([[0.0, 0.0, KNEE_SPACING[2], -36.0],
                       [-KNEE_SPACING[0], 0.0, 0.0, 19.0],
                       [0.0, -KNEE_SPACING[1], 0.0, 19.0],
                       [0.0, 0.0, 0.0, 1.0]])
    return sciSR.SciImage.from_array(volume, affine=affine, domain="mri",
                                     meta={"source": "sciSR knee phantom", "units": None})


def knee_mri() -> list[LayerDataTuple]:
    """The knee phantom as a layer (sagittal slices on the slider)."""
    return [image_layer(knee_phantom(), name="knee MRI phantom")]


def ct_slice() -> list[LayerDataTuple]:
    """pydicom's ``CT_small.dcm`` (128 × 128 axial CT slice) read by :func:`sciSR.read`."""
    from pydicom.data import get_testdata_file

    return [image_layer(sciSR.read(get_testdata_file("CT_small.dcm")), name="CT slice")]


def m13_path() -> str:
    """Path of ``m13.fits`` (300 × 300 DSS frame of the globular cluster M13) shipped with astropy."""
    import astropy

    return os.path.join(os.path.dirname(astropy.__file__), "io", "fits", "hdu", "compressed", "tests", "data",
                        "m13.fits")


def telescope_frame() -> list[LayerDataTuple]:
    """astropy's ``m13.fits`` read by :func:`sciSR.read` (ZScale contrast)."""
    return [image_layer(sciSR.read(m13_path()), name="M13 telescope frame")]
