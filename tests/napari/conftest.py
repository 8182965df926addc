"""Shared inputs for the napari plugin tests: files that installed packages ship, and small images."""

from __future__ import annotations

import os

import numpy as np
import pytest

import sciSR


@pytest.fixture(scope="session")
def nifti_path() -> str:
    """nibabel's anatomical.nii: 33 × 41 × 25 voxels of 2 mm, LAS orientation."""
    from nibabel.testing import data_path

    return os.path.join(data_path, "anatomical.nii")


@pytest.fixture(scope="session")
def ct_path() -> str:
    """pydicom's CT_small.dcm: one 128 × 128 axial slice."""
    from pydicom.data import get_testdata_file

    return get_testdata_file("CT_small.dcm")


@pytest.fixture(scope="session")
def fits_path() -> str:
    """astropy's m13.fits: 300 × 300 frame with a TAN WCS."""
    from napari_scisr._sample_data import m13_path

    return m13_path()


@pytest.fixture
def small_volume() -> sciSR.SciImage:
    """A 6 × 8 × 10 MRI volume with an axial LPS-like affine and anisotropic voxels."""
    rng = np.random.default_rng(1)
    affine = np.array([[-0.5, 0.0, 0.0, 12.0], [0.0, -0.7, 0.0, 30.0], [0.0, 0.0, 2.5, -40.0], [0, 0, 0, 1.0]])
    return sciSR.SciImage.from_array(rng.random((6, 8, 10), dtype=np.float32) * 100, affine=affine, domain="mri",
                                     meta={"source": "small volume"})
