"""read → upscale(cubic) → write → read with the format's own library: geometry and values survive.

Real files that packages ship: pydicom's CT_small.dcm, nibabel's anatomical.nii, astropy's m13.fits.
World coordinates of matched points are compared, not only shapes: input voxel centre i and the
output position (i + 0.5)·s − 0.5 must be the same place in the world.
"""

import os

import astropy
import nibabel as nib
import numpy as np
import pydicom
import pytest
from astropy.io import fits
from astropy.wcs import WCS
from nibabel.testing import data_path
from pydicom.data import get_testdata_file

import sciSR

M13 = os.path.join(os.path.dirname(astropy.__file__), "io/fits/hdu/compressed/tests/data/m13.fits")


def mapped(index, scale):
    """Output index of the point at input index ``index`` (FOV-preserving grid)."""
    return (np.asarray(index, float) + 0.5) * np.asarray(scale, float) - 0.5


def test_nifti_through_plane(tmp_path):
    src = os.path.join(data_path, "anatomical.nii")
    img = sciSR.read(src)
    sr = sciSR.upscale(img, "cubic", (1, 1, 3))
    sciSR.write(sr, tmp_path / "sr.nii.gz")
    back = nib.load(tmp_path / "sr.nii.gz")
    assert back.shape == (33, 41, 75)
    np.testing.assert_allclose(back.header.get_zooms(), (2.0, 2.0, 2.0 / 3), rtol=1e-6)
    np.testing.assert_allclose(back.get_qform(), back.get_sform(), atol=1e-6)
    for ijk in [(0, 0, 0), (10, 20, 7), (32, 40, 24)]:
        np.testing.assert_allclose(nib.load(src).affine @ [*ijk, 1], back.affine @ [*mapped(ijk, (1, 1, 3)), 1],
                                   atol=1e-5)
    # Cubic B-spline interpolates: every 3rd new slice (odd scale) is the old one.
    np.testing.assert_allclose(back.get_fdata()[:, :, 1::3], img.array, atol=1e-3 * np.abs(img.array).max())


def test_dicom_ct_in_plane(tmp_path):
    src = get_testdata_file("CT_small.dcm")
    img = sciSR.read(src)
    assert img.domain == "ct" and img.array.min() < -500
    sr = sciSR.upscale(img, "cubic", (2, 2))
    sciSR.write(sr, tmp_path / "ct_sr")
    files = sorted((tmp_path / "ct_sr").glob("*.dcm"))
    assert len(files) == 1
    ds, ref = pydicom.dcmread(files[0]), pydicom.dcmread(src)
    assert (ds.Rows, ds.Columns) == (2 * ref.Rows, 2 * ref.Columns)
    np.testing.assert_allclose([float(v) for v in ds.PixelSpacing], [float(v) / 2 for v in ref.PixelSpacing])
    assert ds.StudyInstanceUID == ref.StudyInstanceUID and ds.SeriesInstanceUID != ref.SeriesInstanceUID
    assert "DERIVED" in ds.ImageType and "not for diagnostic use" in ds.ImageComments
    # World position (LPS) of a matched pixel: row r, column c of the input.
    def world(d, r, c):
        row, col = np.array(d.ImageOrientationPatient[:3], float), np.array(d.ImageOrientationPatient[3:], float)
        dr, dc = (float(v) for v in d.PixelSpacing)
        return np.array(d.ImagePositionPatient, float) + c * dc * row + r * dr * col
    for r, c in [(0, 0), (17, 101), (127, 127)]:
        rr, cc = mapped((r, c), (2, 2))
        np.testing.assert_allclose(world(ref, r, c), world(ds, rr, cc), atol=1e-4)
    hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    np.testing.assert_allclose(hu.T, sr.array, atol=float(ds.RescaleSlope) / 2 + 1e-3)


def test_fits_frame_wcs_and_flux(tmp_path):
    img = sciSR.read(M13)
    sr = sciSR.upscale(img, "cubic", 2, flux="conserve")
    sciSR.write(sr, tmp_path / "m13_x2.fits")
    with fits.open(M13) as a, fits.open(tmp_path / "m13_x2.fits") as b:
        w_in, w_out = WCS(a[0].header), WCS(b[0].header)
        data_in, data_out = a[0].data.astype(float), b[0].data.astype(float)
        assert data_out.shape == (600, 600)
        for y, x in [(0, 0), (150, 37), (299, 299)]:
            yy, xx = mapped((y, x), (2, 2))
            sky_in = w_in.pixel_to_world(x, y)
            sky_out = w_out.pixel_to_world(xx, yy)
            pixel_deg = abs(w_in.wcs.cdelt[0]) if not w_in.wcs.has_cd() else abs(w_in.wcs.cd[0, 0])
            assert sky_in.separation(sky_out).deg / pixel_deg <= 1e-6
        blocks = data_out.reshape(300, 2, 300, 2).sum(axis=(1, 3))
        assert np.abs(blocks - data_in).max() <= 1e-6 * np.abs(data_in).max()
        assert any("cubic" in str(card) for card in b[0].header.get("HISTORY", []))


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_raster_round_trip(tmp_path, suffix):
    rng = np.random.default_rng(0)
    arr = (rng.random((20, 30)) * 60000).astype(np.uint16)
    img = sciSR.SciImage.from_array(arr.astype(np.float32), meta={"stored_dtype": "uint16"})
    sciSR.write(img, tmp_path / f"in{suffix}")
    read = sciSR.read(tmp_path / f"in{suffix}")
    np.testing.assert_array_equal(read.array, arr)
    sr = sciSR.upscale(read, "nearest", (2, 3))
    sciSR.write(sr, tmp_path / f"out{suffix}")
    np.testing.assert_array_equal(sciSR.read(tmp_path / f"out{suffix}").array,
                                  np.repeat(np.repeat(arr, 2, 0), 3, 1))


def test_outputs_get_the_permissions_of_ordinary_files(tmp_path):
    import stat

    mask = os.umask(0o022)
    try:
        img = sciSR.read(get_testdata_file("CT_small.dcm"))
        folder = sciSR.write(img, tmp_path / "series")  # a DICOM folder comes from mkdtemp (0700)
        nifti = sciSR.write(sciSR.SciImage.from_array(np.ones((4, 4, 4), np.float32), affine=np.eye(4)),
                            tmp_path / "v.nii.gz")
    finally:
        os.umask(mask)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o755
    assert stat.S_IMODE(nifti.stat().st_mode) == 0o644
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o644 for f in folder.iterdir())
