"""FITS spectral/Stokes axes are channels, never scaled; NIfTI RGB24 reads as 3 channels."""

import importlib.util
import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

import sciSR
from sciSR.errors import SciSRError

_spec = importlib.util.spec_from_file_location("io_builders", Path(__file__).parents[1] / "bad_inputs" / "builders.py")
builders = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(builders)


def test_4d_cube_keeps_spectral_and_stokes_axes(tmp_path):
    src = builders.fits_cube(tmp_path)  # FITS 16x16x3x2: RA, DEC, FREQ (1 MHz), STOKES
    img = sciSR.read(src)
    assert img.array.shape == (16, 16, 6) and img.channel_axis == 2 and img.spatial_ndim == 2
    assert img.spacing == pytest.approx((1e-3, 1e-3))  # deg/pixel; the 1 MHz channel is no "spacing"
    assert img.wcs.naxis == 2 and img.wcs.has_celestial
    assert [c["ctype"] for c in img.meta["fits_axes"]["channels"]] == ["FREQ", "STOKES"]
    with fits.open(src) as hdul:
        stored = hdul[0].data  # (stokes, freq, y, x)
    # Channel index = stokes * 3 + freq: the flattening is the documented one.
    np.testing.assert_array_equal(img.array[..., 1 * 3 + 2], stored[1, 2])

    sr = sciSR.upscale(img, "cubic", 2, flux="none")
    out = sciSR.write(sr, tmp_path / "sr.fits")
    with fits.open(out) as hdul:
        header, data = hdul[0].header, hdul[0].data
    assert data.shape == (2, 3, 32, 32)  # FITS NAXIS 32x32x3x2
    assert [header[f"CTYPE{k}"] for k in range(1, 5)] == ["RA---TAN", "DEC--TAN", "FREQ", "STOKES"]
    lr, hr = WCS(fits.getheader(src)), WCS(header)
    # Spectral and Stokes WCS unchanged ...
    for k in (2, 3):
        assert hr.wcs.cdelt[k] == lr.wcs.cdelt[k] and hr.wcs.crpix[k] == lr.wcs.crpix[k]
        assert hr.wcs.crval[k] == lr.wcs.crval[k]
    # ... spatial WCS upscaled with the field of view kept: pixel edges land on the same sky position.
    x = np.array([-0.5, 15.5, 7.0])
    np.testing.assert_allclose(hr.celestial.wcs_pix2world((x + 0.5) * 2 - 0.5, (x + 0.5) * 2 - 0.5, 0),
                               lr.celestial.wcs_pix2world(x, x, 0), rtol=1e-12)
    # Each channel plane is its own upscaled plane: no mixing between frequencies or Stokes parameters.
    np.testing.assert_allclose(data[1, 2].mean(), stored[1, 2].mean(), rtol=0.02)
    back = sciSR.read(out)
    assert back.array.shape == (32, 32, 6) and back.spacing == pytest.approx((5e-4, 5e-4))


def test_3d_spectral_cube_is_one_channel_axis(tmp_path):
    src = builders.fits_cube(tmp_path, ctypes=("RA---TAN", "DEC--TAN", "FREQ"), shape=(3, 16, 16))
    img = sciSR.read(src)
    assert img.array.shape == (16, 16, 3) and img.meta["channel_name"] == "spectral"


def test_degenerate_radio_axes_are_dropped_and_restored(tmp_path):
    src = builders.fits_cube(tmp_path, shape=(1, 1, 16, 16))  # RA x DEC x 1 FREQ x 1 STOKES
    with fits.open(src, mode="update") as hdul:
        hdul[0].header["BUNIT"] = "Jy/beam"
    img = sciSR.read(src)
    assert img.array.shape == (16, 16) and img.channel_axis is None and img.wcs.naxis == 2
    sr = sciSR.upscale(img, "cubic", 2)  # a single plane: the BUNIT flux mode applies
    out = sciSR.write(sr, tmp_path / "sr.fits")
    with fits.open(out) as hdul:
        assert hdul[0].data.shape == (1, 1, 32, 32)
        assert hdul[0].header["CTYPE3"] == "FREQ" and hdul[0].header["CRVAL3"] == 1.4e9


def test_cube_without_wcs_stays_spatial(tmp_path):
    fits.PrimaryHDU(np.ones((3, 4, 5), np.float32)).writeto(tmp_path / "plain.fits")
    img = sciSR.read(tmp_path / "plain.fits")
    assert img.array.shape == (3, 4, 5) and img.channel_axis is None


def test_nifti_rgb24_reads_as_three_channels(tmp_path):
    rgb = np.zeros((4, 5, 6), dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
    rgb["R"], rgb["G"], rgb["B"] = 10, 20, np.arange(6, dtype=np.uint8)
    nib.save(nib.Nifti1Image(rgb, np.diag([1.0, 2.0, 3.0, 1.0])), os.fspath(tmp_path / "rgb.nii"))
    img = sciSR.read(tmp_path / "rgb.nii")
    assert img.array.shape == (4, 5, 6, 3) and img.channel_axis == 3 and img.meta["channel_name"] == "rgb"
    assert img.spacing == (1.0, 2.0, 3.0)
    np.testing.assert_array_equal(img.array[1, 2, :, 2], np.arange(6))
    assert np.all(img.array[..., 0] == 10) and np.all(img.array[..., 1] == 20)


def test_library_errors_become_one_line(tmp_path):
    path = builders.nifti_file(tmp_path)
    builders.poke(path, builders.NIFTI_DIM, "<h", 0)  # dim[0] = 0
    with pytest.raises(SciSRError) as info:
        sciSR.read(path)
    assert "\n" not in str(info.value) and "dim[0]" in str(info.value) and path.name in str(info.value)
