"""FITS reader/writer: astropy's shipped test files plus small files generated in tmp_path.

Geometry round trips compare world coordinates of matched points read back with astropy directly:
input pixel (x, y) and output pixel ((x + 0.5)·sx − 0.5, (y + 0.5)·sy − 0.5), 0-based, must be the
same place on the sky to 1e-6 input pixels.
"""

import os
import warnings

import astropy
import numpy as np
import pytest
from astropy.io import fits
from astropy.io.fits.verify import VerifyWarning
from astropy.wcs import WCS, FITSFixedWarning
from astropy.wcs.utils import proj_plane_pixel_scales

from sciSR.errors import SciSRError
from sciSR.geometry import upscale_wcs
from sciSR.image import SciImage
from sciSR.io import fits as fitsio
from sciSR.io import format_for
from sciSR.io import write as io_write
from sciSR.pipeline import regrid

ASTROPY = os.path.dirname(astropy.__file__)
FITS_DATA = os.path.join(ASTROPY, "io", "fits", "tests", "data")
DSS = os.path.join(ASTROPY, "wcs", "tests", "data", "dss.14.29.56-62.41.05.fits.gz")  # image + table
SCALED = os.path.join(FITS_DATA, "scale.fits")  # int16 with BSCALE/BZERO, celestial
COMPRESSED = os.path.join(FITS_DATA, "comp.fits")  # RICE tile-compressed int16 extension, celestial
MULTI_SCI = os.path.join(FITS_DATA, "test0.fits")  # empty primary + 4 "SCI" extensions
STIS = os.path.join(FITS_DATA, "o4sp040b0_raw.fits")  # uint16 SCI/ERR/DQ, non-celestial LAMBDA/ANGLE WCS
TABLES_ONLY = os.path.join(FITS_DATA, "stddata.fits")  # empty primary + binary tables
IRAC_SIP = os.path.join(ASTROPY, "wcs", "tests", "data", "irac_sip.hdr")


def astropy_wcs(header, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        warnings.simplefilter("ignore", VerifyWarning)  # the DSS header's malformed SKEW card
        return WCS(header, **kwargs)


def upscaled(img, scale, model="nearest"):
    """What sciSR.upscale produces with pixel replication: the pipeline's regrid of the repeated array."""
    array = img.array
    for axis, s in enumerate(scale):
        array = np.repeat(array, s, axis)
    return regrid(img, array, tuple(scale), model, mask=img.meta["mask"])


def lr_pixel_error(w_lr, w_hr, scale, shape):
    """Largest sky distance (in LR pixels) between LR points and their mapped HR positions."""
    ny, nx = shape
    # FOV corners (pixel edges), an edge midpoint, the centre, an arbitrary interior point.
    x = np.array([-0.5, nx - 0.5, -0.5, nx - 0.5, -0.5, (nx - 1) / 2, 0.3 * nx])
    y = np.array([-0.5, -0.5, ny - 0.5, ny - 0.5, (ny - 1) / 2, (ny - 1) / 2, 0.7 * ny])
    sy, sx = scale
    sky_lr = w_lr.pixel_to_world(x, y)
    sky_hr = w_hr.pixel_to_world((x + 0.5) * sx - 0.5, (y + 0.5) * sy - 0.5)
    return float(sky_lr.separation(sky_hr).deg.max() / proj_plane_pixel_scales(w_lr.celestial).min())


@pytest.fixture
def rich_fits(tmp_path):
    """Empty primary with observation cards, SCI (SIP WCS, NaNs, grid keywords, alternate WCS 'P'),
    ERR image and a binary table."""
    sip = astropy_wcs(fits.Header.fromfile(IRAC_SIP, sep="", endcard=False, padding=False))
    primary = fits.PrimaryHDU()
    primary.header.update({"OBJECT": "NGC 5194", "TELESCOP": "Spitzer", "DATE-OBS": "2004-05-22T03:04:05.6"})
    rng = np.random.default_rng(1)
    data = rng.normal(10, 2, (40, 50)).astype(np.float32)
    data[3, 4] = np.nan
    data[30, 7:9] = np.nan
    header = sip.to_header(relax=True)
    header.update({"BUNIT": "MJy/sr", "OBJECT": "NGC 5194", "DATE-OBS": "2004-05-22T03:04:05.6", "LTV1": -10.0,
                   "LTV2": -20.0, "LTM1_1": 1.0, "LTM2_2": 1.0, "DATASEC": "[1:50,1:40]", "PIXAR": 1.2e-11,
                   "EXPTIME": 30.0})
    # Alternate WCS 'P': detector (physical) pixels, a linear transform that is also tied to the grid.
    header.update(WCSNAMEP="PHYSICAL", CTYPE1P="DETX", CTYPE2P="DETY", CRPIX1P=1.0, CRPIX2P=1.0,
                  CRVAL1P=11.0, CRVAL2P=21.0, CDELT1P=1.0, CDELT2P=1.0)
    sci = fits.ImageHDU(data, header, name="SCI")
    err = fits.ImageHDU(np.full((40, 50), 0.5, np.float32), name="ERR")
    table = fits.BinTableHDU.from_columns([fits.Column("flux", "E", array=np.arange(3.0))], name="CAT")
    path = tmp_path / "rich.fits"
    fits.HDUList([primary, sci, err, table]).writeto(path)
    return path


# --- reading ---------------------------------------------------------------------------------------


def test_module_contract():
    assert ".fits.fz" in fitsio.SUFFIXES and ".fz" in fitsio.SUFFIXES
    assert format_for("a.fits.gz") == "fits" and format_for("a.fts", for_writing=True) == "fits"
    assert fitsio.sniff(SCALED) and not fitsio.sniff(DSS) and not fitsio.sniff(IRAC_SIP + ".missing")


def test_read_celestial_primary():
    img = fitsio.read(DSS)
    with fits.open(DSS) as hdul:
        expected = hdul[0].data.astype(np.float32)
        wcs = astropy_wcs(hdul[0].header)
    assert img.array.shape == (100, 100) and img.array.dtype == np.float32
    np.testing.assert_array_equal(img.array, expected)
    assert img.domain == "sky" and img.wcs is not None and img.wcs.has_celestial
    np.testing.assert_allclose(img.spacing, proj_plane_pixel_scales(wcs)[::-1], rtol=1e-12)
    np.testing.assert_allclose(img.wcs.pixel_to_world_values(3, 97), wcs.pixel_to_world_values(3, 97))
    meta = img.meta
    assert meta["format"] == "fits" and meta["source"] == DSS and meta["hdu"] == 0
    assert meta["stored_dtype"] == "int16" and meta["units"] is None and meta["provenance"] == []
    assert meta["fits_header"]["OBJECT"] == "dss126604" and isinstance(meta["fits_header"], fits.Header)
    assert meta["mask"].shape == (100, 100) and not meta["mask"].any()
    assert meta["other_hdus"]["index"] == 0 and meta["other_hdus"]["count"] == 2
    assert fitsio.read(DSS, domain="generic").domain == "generic"


def test_read_scaled_applies_bscale_bzero():
    img = fitsio.read(SCALED)
    with fits.open(SCALED) as hdul:
        expected = hdul[0].data  # astropy applies BSCALE/BZERO
    np.testing.assert_array_equal(img.array, expected.astype(np.float32))
    assert img.meta["bscale"] == pytest.approx(0.045777764213996) and img.meta["bzero"] == 1500.0
    assert img.meta["stored_dtype"] == "int16"
    assert img.meta["fits_header"]["BSCALE"] == pytest.approx(0.045777764213996)  # the header as stored
    assert any("BSCALE" in note for note in img.meta["notes"])


def test_read_tile_compressed():
    img = fitsio.read(COMPRESSED)
    with fits.open(COMPRESSED) as hdul:
        assert isinstance(hdul[1], fits.CompImageHDU)
        np.testing.assert_array_equal(img.array, hdul[1].data.astype(np.float32))
    assert img.array.shape == (300, 440) and img.meta["hdu"] == 1 and img.wcs is not None
    assert img.meta["fits_header"]["OBJECT"] == "NGC 1316" and "ZIMAGE" not in img.meta["fits_header"]


def test_blank_becomes_nan_and_mask(tmp_path):
    raw = np.arange(20, dtype=np.int16).reshape(4, 5)
    raw[1, 2] = raw[3, 0] = -32768
    hdu = fits.PrimaryHDU(raw)
    hdu.header.update(BLANK=-32768, BSCALE=0.5, BZERO=100.0, BUNIT="adu ")
    hdu.writeto(tmp_path / "blank.fits")
    img = fitsio.read(tmp_path / "blank.fits")
    assert np.isnan(img.array[1, 2]) and np.isnan(img.array[3, 0])
    assert img.array[0, 1] == pytest.approx(100.5)
    np.testing.assert_array_equal(img.meta["mask"], np.isnan(img.array))
    assert img.meta["units"] == "adu" and img.meta["stored_dtype"] == "int16"
    assert img.wcs is None and img.spacing == (1.0, 1.0)
    fitsio.write(img, tmp_path / "out.fits")
    with fits.open(tmp_path / "out.fits") as hdul:
        header, data = hdul[0].header, hdul[0].data
        assert header["BITPIX"] == -32 and not {"BLANK", "BSCALE", "BZERO"} & set(header)
        np.testing.assert_array_equal(data, img.array)  # NaN in the same places (array_equal: NaN == NaN)


def test_inf_is_masked_and_cube_kept(tmp_path):
    cube = np.random.default_rng(0).random((3, 4, 5))
    cube[1, 2, 3] = np.inf
    fits.PrimaryHDU(cube).writeto(tmp_path / "cube.fits")
    img = fitsio.read(tmp_path / "cube.fits")
    assert img.array.shape == (3, 4, 5) and img.array.dtype == np.float64  # BITPIX -64 stays float64
    assert img.meta["mask"][1, 2, 3] and img.meta["mask"].sum() == 1 and img.spacing == (1.0, 1.0, 1.0)


@pytest.mark.parametrize(
    ("hdu", "index", "ver"),
    [(None, 1, 1), ("SCI", 1, 1), ("sci", 1, 1), (("SCI", 3), 3, 3), (4, 4, 4), (-1, 4, 4), ("2", 2, 2)],
)
def test_hdu_selection(hdu, index, ver):
    img = fitsio.read(MULTI_SCI, hdu=hdu)
    with fits.open(MULTI_SCI) as hdul:
        np.testing.assert_array_equal(img.array, hdul[index].data.astype(np.float32))
    assert img.meta["fits_header"]["EXTVER"] == ver and img.meta["other_hdus"]["index"] == index
    assert img.meta["hdu"] == (index if hdu is None else hdu)


@pytest.mark.parametrize(
    ("path", "hdu", "message"),
    [
        (MULTI_SCI, "ERR", r"no HDU 'ERR' \(HDUs are 0: PRIMARY, 1: SCI"),
        (MULTI_SCI, 9, "no HDU 9: the file has 5 HDUs"),
        (MULTI_SCI, 0, "HDU 0 holds no image"),
        (DSS, "Photometric CALTABLE", "holds no image .*BinTableHDU"),
        (TABLES_ONLY, None, "no HDU holds an image"),
    ],
)
def test_hdu_errors_are_one_line_naming_the_file(path, hdu, message):
    with pytest.raises(SciSRError, match=message) as info:
        fitsio.read(path, hdu=hdu)
    text = str(info.value)
    assert "\n" not in text and os.path.basename(path) in text


@pytest.mark.filterwarnings("ignore::astropy.io.fits.verify.VerifyWarning")
def test_all_nan_one_d_and_corrupt_files(tmp_path):
    fits.PrimaryHDU(np.full((6, 7), np.nan, np.float32)).writeto(tmp_path / "nan.fits")
    fits.PrimaryHDU(np.arange(5.0)).writeto(tmp_path / "spectrum.fits")
    (tmp_path / "broken.fits").write_bytes(b"SIMPLE  =                    T" + b" " * 50 + b"garbage" * 20)
    for name, message in [("nan.fits", "every pixel"), ("spectrum.fits", "1-D"), ("broken.fits", "not a readable")]:
        with pytest.raises(SciSRError, match=message) as info:
            fitsio.read(tmp_path / name)
        assert "\n" not in str(info.value) and name in str(info.value)
    with pytest.raises(SciSRError, match="domain must be one of"):
        fitsio.read(DSS, domain="telescope")


# --- writing ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "hdu", "scale"),
    [(DSS, None, (2, 3)), (SCALED, None, (3, 3)), (COMPRESSED, None, (2, 2)), (MULTI_SCI, ("SCI", 2), (1, 4))],
)
def test_round_trip_world_coordinates(tmp_path, path, hdu, scale):
    img = fitsio.read(path, hdu=hdu)
    index = img.meta["other_hdus"]["index"]
    fitsio.write(upscaled(img, scale), tmp_path / "sr.fits")
    with fits.open(path) as src, fits.open(tmp_path / "sr.fits") as out:
        assert len(out) == len(src)
        assert type(out[index]) is (fits.PrimaryHDU if index == 0 else fits.ImageHDU)  # uncompressed
        new = out[index]
        assert new.data.shape == (img.array.shape[0] * scale[0], img.array.shape[1] * scale[1])
        assert new.data.dtype == np.dtype(">f4")
        np.testing.assert_array_equal(new.data[:: scale[0], :: scale[1]], img.array)
        w_lr, w_hr = astropy_wcs(src[index].header), astropy_wcs(new.header)
        assert lr_pixel_error(w_lr, w_hr, scale, img.array.shape) <= 1e-6
        history = " ".join(str(h) for h in new.header.get("HISTORY", []))
        assert "nearest" in history and "x".join(map(str, scale)) in history
        for key in ("OBJECT", "DATE-OBS", "BUNIT", "TELESCOP", "EXTNAME", "EXTVER"):
            if key in src[index].header:
                assert new.header[key] == src[index].header[key], key
        for i in set(range(len(src))) - {index}:
            assert out[i].header == src[i].header
            if src[i].data is not None:
                np.testing.assert_array_equal(out[i].data, src[i].data)


def test_round_trip_sip_extension_mask_and_grid_keywords(tmp_path, rich_fits):
    img = fitsio.read(rich_fits)
    assert img.meta["hdu"] == 1 and img.meta["units"] == "MJy/sr" and img.wcs.sip is not None
    assert img.meta["mask"].sum() == 3
    assert img.meta["fits_companions"] == [{"index": 2, "extname": "ERR", "kind": "sigma"}]
    assert any("ERR" in note and "upscaled with the image" in note for note in img.meta["notes"])
    scale = (2, 3)
    sr = upscaled(img, scale, model="cubic")
    sr.array[...] = np.nan_to_num(sr.array, nan=-1.0)  # the writer must put the NaNs back from the mask
    io_write(sr, tmp_path / "sr.fits")  # through the registry and atomic output
    with fits.open(rich_fits) as src, fits.open(tmp_path / "sr.fits") as out:
        assert [h.name for h in out] == ["PRIMARY", "SCI", "ERR", "CAT"]
        assert out[0].header == src[0].header
        # No flux mode in the provenance: the σ map is replicated onto the new grid, its WCS rescaled.
        np.testing.assert_array_equal(out[2].data, np.repeat(np.repeat(src[2].data, 2, 0), 3, 1))
        np.testing.assert_array_equal(out[3].data, src[3].data)
        header = out[1].header
        assert np.isnan(out[1].data).sum() == 3 * 6 and np.isnan(out[1].data[6:8, 12:15]).all()
        # Forward SIP transform of the written header, read by astropy.
        w_lr, w_hr = astropy_wcs(src[1].header), astropy_wcs(header)
        assert w_hr.sip is not None and w_hr.sip.a_order == w_lr.sip.a_order == 2
        assert lr_pixel_error(w_lr, w_hr, scale, (40, 50)) <= 1e-6
        assert header["CTYPE1"] == "RA---TAN-SIP" and "CD1_1" not in header
        # Grid keywords updated by upscale_fits_grid_keywords, the rest preserved.
        assert header["LTV1"] == -10.0 * 3 + 0.5 - 1.5 and header["DATASEC"] == "[1:150,1:80]"
        assert header["PIXAR"] == pytest.approx(1.2e-11 / 6)
        assert header["BUNIT"] == "MJy/sr" and header["EXPTIME"] == 30.0
        assert header["DATE-OBS"] == "2004-05-22T03:04:05.6"
        # The alternate WCS was rescaled too: detector coordinates of matched pixels agree.
        p_lr, p_hr = astropy_wcs(src[1].header, key="P"), astropy_wcs(header, key="P")
        x, y = np.array([0.0, 49.0, 17.0]), np.array([0.0, 39.0, 5.0])
        np.testing.assert_allclose(p_hr.wcs_pix2world((x + 0.5) * 3 - 0.5, (y + 0.5) * 2 - 0.5, 0),
                                   p_lr.wcs_pix2world(x, y, 0), atol=1e-9)
        assert header["WCSNAMEP"] == "PHYSICAL"


def test_dss_plate_solution(tmp_path):
    # wcslib reads the DSS plate solution (AMDXn, CNPIXn, XPIXELSZ...) in preference to CRPIX/CD.
    img = fitsio.read(DSS)
    fitsio.write(upscaled(img, (2, 3)), tmp_path / "sr.fits")
    header = fits.getheader(tmp_path / "sr.fits")
    assert header["CNPIX1"] == 8860 * 3 and header["YPIXELSZ"] == pytest.approx(25.28445 / 2)
    assert header["AMDX1"] == fits.getheader(DSS)["AMDX1"]  # the plate solution itself is kept
    # A crop cannot be expressed in DSS terms: the header falls back to wcslib's own description.
    cropped = img.replace(array=img.array[10:60, 5:80], wcs=img.wcs[10:60, 5:80], meta={**img.meta, "mask": None})
    fitsio.write(cropped, tmp_path / "crop.fits")
    header = fits.getheader(tmp_path / "crop.fits")
    assert "AMDX1" not in header and "CNPIX1" not in header and header["OBJECT"] == "dss126604"
    w_crop = astropy_wcs(header)
    x, y = np.array([-0.5, 74.5, 30.0]), np.array([-0.5, 49.5, 20.0])
    sky_full = astropy_wcs(fits.getheader(DSS)).pixel_to_world(x + 5, y + 10)
    assert sky_full.separation(w_crop.pixel_to_world(x, y)).deg.max() / img.spacing[0] <= 1e-6


def test_non_celestial_header_wcs_is_rescaled(tmp_path):
    img = fitsio.read(STIS)
    assert img.wcs is None and img.meta["stored_dtype"] == "uint16" and img.meta["units"] == "COUNTS"
    fitsio.write(upscaled(img, (2, 4)), tmp_path / "sr.fits")
    with fits.open(STIS) as src, fits.open(tmp_path / "sr.fits") as out:
        w_lr, w_hr = astropy_wcs(src[1].header), astropy_wcs(out[1].header)
        x, y = np.array([-0.5, 61.5, 30.0]), np.array([-0.5, 43.5, 12.0])
        np.testing.assert_allclose(w_hr.wcs_pix2world((x + 0.5) * 4 - 0.5, (y + 0.5) * 2 - 0.5, 0),
                                   w_lr.wcs_pix2world(x, y, 0), rtol=1e-12)
        # The other SCI/ERR/DQ extensions are copied raw (still uint16 via BZERO).
        assert out[4].header["BZERO"] == 32768 and out[4].data.dtype == np.uint16
        np.testing.assert_array_equal(out[4].data, src[4].data)


def test_header_wcs_dropped_when_grid_change_is_not_integer(tmp_path):
    img = fitsio.read(STIS)
    cropped = img.replace(array=img.array[:, :61], meta={**img.meta, "mask": None})
    fitsio.write(cropped, tmp_path / "crop.fits")
    header = fits.getheader(tmp_path / "crop.fits", 1)
    assert "CTYPE1" not in header and "CRPIX1" not in header
    assert any("removed" in str(h) for h in header["HISTORY"])


def test_compressed_output_is_lossless(tmp_path):
    img = fitsio.read(COMPRESSED)
    sr = upscaled(img, (2, 2))
    sr.array[...] += np.float32(0.123)  # not integers: the default quantization would change them
    sr.meta["fits_compress"] = True
    fitsio.write(sr, tmp_path / "sr.fits")
    with fits.open(tmp_path / "sr.fits") as out:
        assert isinstance(out[1], fits.CompImageHDU)
        np.testing.assert_array_equal(out[1].data, sr.array)
        assert astropy_wcs(out[1].header).has_celestial


def test_compressed_primary_image_moves_behind_an_empty_primary(tmp_path):
    img = fitsio.read(DSS)
    fitsio.write(img.replace(meta={**img.meta, "fits_compress": True}), tmp_path / "out.fits.fz")
    with fits.open(tmp_path / "out.fits.fz") as out:
        assert [type(h).__name__ for h in out] == ["PrimaryHDU", "CompImageHDU", "BinTableHDU"]
        np.testing.assert_array_equal(out[1].data, img.array)
        assert out[1].header["OBJECT"] == "dss126604"


def test_gzip_output(tmp_path):
    img = fitsio.read(SCALED)
    io_write(img, tmp_path / "out.fits.gz")
    assert (tmp_path / "out.fits.gz").read_bytes()[:2] == b"\x1f\x8b"
    np.testing.assert_array_equal(fits.getdata(tmp_path / "out.fits.gz"), img.array)


def test_from_array_gets_a_minimal_header(tmp_path):
    w = upscale_wcs(fitsio.read(SCALED).wcs, (1, 1))
    arr = np.random.default_rng(2).random((21, 20)).astype(np.float32)
    fitsio.write(SciImage.from_array(arr, wcs=w, domain="sky", meta={"units": "Jy/beam"}), tmp_path / "a.fits")
    with fits.open(tmp_path / "a.fits") as out:
        assert len(out) == 1 and out[0].header["BUNIT"] == "Jy/beam"
        np.testing.assert_array_equal(out[0].data, arr)
        assert lr_pixel_error(w, astropy_wcs(out[0].header), (1, 1), arr.shape) <= 1e-9
    rgb = np.zeros((4, 5, 3), np.uint8)
    rgb[..., 2] = 7
    fitsio.write(SciImage.from_array(rgb, meta={"channel_axis": 2}), tmp_path / "rgb.fits")
    data = fits.getdata(tmp_path / "rgb.fits")
    assert data.shape == (3, 4, 5) and data.dtype == np.dtype(">f4") and (data[2] == 7).all()


def test_write_errors(tmp_path, rich_fits):
    img = fitsio.read(rich_fits)
    os.remove(rich_fits)
    with pytest.raises(SciSRError, match="source FITS file is gone") as info:
        fitsio.write(img, tmp_path / "out.fits")
    assert "rich.fits" in str(info.value)
    with pytest.raises(SciSRError, match="real numbers"):
        fitsio.write(SciImage.from_array(np.ones((2, 2), complex)), tmp_path / "c.fits")
