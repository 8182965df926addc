"""The shared edge checks of sciSR.io.validate, at and just past their limits."""

import numpy as np
import pytest
from pydicom.valuerep import DSfloat

from sciSR.errors import SciSRError
from sciSR.io import validate


def test_spacing_limits_are_inclusive():
    assert validate.check_spacing([1e-6, 1e6], "a.nii", field="pixdim") == (1e-6, 1e6)
    for bad in (9.9e-7, 1.01e6, 0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(SciSRError, match=r"^a\.nii: pixdim gives a voxel size of .* on axis 1"):
            validate.check_spacing([1.0, bad], "a.nii", field="pixdim")


def test_sky_limits():
    validate.check_spacing([1e-9, 180.0], "s.fits", field="CDELT", unit="deg", limits=validate.SKY_SPACING_DEG)
    with pytest.raises(SciSRError, match="181 deg"):
        validate.check_spacing([181.0], "s.fits", field="CDELT", unit="deg", limits=validate.SKY_SPACING_DEG)


def test_affine_must_be_finite_and_invertible():
    good = np.diag([1e-3, 2.0, 3.0, 1.0])  # tiny but valid voxels pass
    np.testing.assert_array_equal(validate.check_affine(good, "v", field="sform"), good)
    parallel = good.copy()
    parallel[:3, 1] = parallel[:3, 0] * 5
    with pytest.raises(SciSRError, match="sform: singular"):
        validate.check_affine(parallel, "v", field="sform")
    nan = good.copy()
    nan[0, 3] = np.nan
    with pytest.raises(SciSRError, match="non-finite"):
        validate.check_affine(nan, "v", field="sform")
    # A 2D slice: only its two spatial columns must be independent.
    flat = np.diag([1.0, 1.0, 0.0, 1.0])
    validate.check_affine(flat, "v", field="sform", n_spatial=2)


def test_memory_refusal_names_the_size(monkeypatch):
    monkeypatch.setattr(validate, "available_memory", lambda: 2**30)
    validate.check_memory((100, 100), 4, "x.png", field="IHDR")
    with pytest.raises(SciSRError, match=r"x\.png: IHDR declares a 30000x30000x30000 image \(1\.01e\+05 GiB\)"):
        validate.check_memory((30000, 30000, 30000), 4, "x.png", field="IHDR")
    with pytest.raises(SciSRError, match="negative size"):
        validate.check_memory((-5, 3), 4, "x.png", field="dim")


def test_finite_floats_names_the_field():
    np.testing.assert_array_equal(validate.finite_floats(["0.5", 2], "f", field="PixelSpacing", count=2), [0.5, 2])
    with pytest.raises(SciSRError, match="PixelSpacing must hold 2 numbers, found 1"):
        validate.finite_floats(DSfloat("0.5"), "f", field="PixelSpacing", count=2)
    with pytest.raises(SciSRError, match="decimal commas"):
        validate.finite_floats(["0,5", "0,5"], "f", field="PixelSpacing")
    with pytest.raises(SciSRError, match="non-finite"):
        validate.finite_floats(["nan", 1], "f", field="ImagePositionPatient")
    with pytest.raises(SciSRError) as info:
        validate.finite_floats(["1\n2x"], "f", field="ImagePositionPatient")
    assert "\n" not in str(info.value)


def test_values_and_boundary():
    with pytest.raises(SciSRError, match="empty"):
        validate.check_values(np.zeros((0, 3)), "e")
    with pytest.raises(SciSRError, match="NaN or inf"):
        validate.check_values(np.full(3, np.nan), "e")
    line = r"^b\.tif: damaged or unsupported TIFF file \(ValueError: bad second line\)$"
    with pytest.raises(SciSRError, match=line), validate.reader_boundary("TIFF", "b.tif"):
        raise ValueError("bad\nsecond line")
    with pytest.raises(SciSRError, match="not enough memory"), validate.reader_boundary("TIFF", "b.tif"):
        raise MemoryError
    with pytest.raises(SciSRError, match=r"^b\.tif: colour \?RGB\?$"), validate.reader_boundary("TIFF", "b.tif"):
        raise SciSRError("colour \nRGB\x00", "b.tif")
