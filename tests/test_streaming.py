"""Results larger than RAM: memory-mapped outputs, page release, streamed FITS writing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from astropy.io import fits
from astropy.wcs import WCS

import sciSR
from sciSR.errors import SciSRError
from sciSR.models import create_model
from sciSR.paging import disk_array, is_disk_backed, release_pages, row_chunks


def test_disk_array_keeps_data_after_release_and_is_removed(tmp_path):
    with disk_array((64, 1000), folder=tmp_path) as a:
        assert is_disk_backed(a) and is_disk_backed(a[3:9, ::2].T) and not is_disk_backed(np.zeros(3))
        a[:] = np.arange(64 * 1000, dtype=np.float32).reshape(64, 1000)
        release_pages(a[10:20])  # any view releases the whole mapping
        assert a[63, 999] == 64 * 1000 - 1 and a.sum(dtype=np.float64) == np.arange(64000.0).sum()
        path = a.filename
    assert not list(tmp_path.iterdir()), f"{path} left behind"


def test_row_chunks_cover_rows_once():
    chunks = list(row_chunks(103, row_bytes=10, budget=40))
    assert chunks[0] == (0, 4) and chunks[-1] == (100, 103)
    assert sum(hi - lo for lo, hi in chunks) == 103


def _sky(shape=(45, 52), seed=0) -> sciSR.SciImage:
    rng = np.random.default_rng(seed)
    data = (100 + 30 * rng.random(shape)).astype(np.float32)
    data[10:13, 20:24] = np.nan
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crpix = [20.5, 22.0]
    wcs.wcs.crval = [150.0, 2.0]
    wcs.wcs.cdelt = [-1e-4, 1e-4]
    return sciSR.SciImage.from_array(data, wcs=wcs, spacing=(1e-4, 1e-4), domain="sky", meta={"units": "counts"})


@pytest.mark.parametrize("model", ["cubic", "net"])
def test_upscale_into_a_memmap_equals_the_in_memory_result(tmp_path, model):
    torch.manual_seed(0)
    net = create_model("srnet-toy", scale=2) if model == "net" else "cubic"
    img = _sky()
    expected = sciSR.upscale(img, net, 2, tile=24)
    with disk_array(expected.array.shape, folder=tmp_path) as out:
        result = sciSR.upscale(img, net, 2, tile=24, out=out)
        assert np.shares_memory(result.array, out) and is_disk_backed(result.array)
        np.testing.assert_array_equal(np.asarray(out), expected.array)
        assert np.isnan(out[20:26, 40:48]).all()  # the masked block stays masked
        # Flux: each finite 2×2 block sums to its input pixel.
        blocks = np.asarray(out).reshape(45, 2, 52, 2).sum(axis=(1, 3))
        finite = np.isfinite(img.array)
        np.testing.assert_allclose(blocks[finite], img.array[finite], rtol=0, atol=1e-6 * np.nanmax(img.array))


def test_upscale_refuses_an_out_of_the_wrong_shape():
    with pytest.raises(SciSRError, match=r"out has shape \(10, 10\)"):
        sciSR.upscale(np.ones((8, 8), np.float32), "cubic", 2, out=np.empty((10, 10), np.float32))


def test_upscale_file_streams_a_multi_extension_fits(tmp_path):
    img = _sky()
    primary = fits.PrimaryHDU()
    primary.header["OBSERVER"] = "test"
    sci = fits.ImageHDU(img.array, img.wcs.to_header(), name="SCI")
    sci.header["BUNIT"] = "counts"
    sci.header["DATAMAX"] = 1.0
    table = fits.BinTableHDU.from_columns([fits.Column(name="flux", format="E", array=np.arange(3.0))], name="CAT")
    source = tmp_path / "frame.fits"
    fits.HDUList([primary, sci, table]).writeto(source)

    in_ram = sciSR.upscale_file(source, tmp_path / "ram.fits", "cubic", 2, memmap=False)
    streamed = sciSR.upscale_file(source, tmp_path / "disk.fits", "cubic", 2, memmap=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["disk.fits", "frame.fits", "ram.fits"]
    with fits.open(in_ram) as a, fits.open(streamed) as b:
        assert [h.name for h in b] == ["PRIMARY", "SCI", "CAT"]
        np.testing.assert_array_equal(a["SCI"].data, b["SCI"].data)
        assert b["SCI"].header["DATAMAX"] == pytest.approx(float(np.nanmax(a["SCI"].data)))
        assert b["SCI"].header["CRPIX1"] == a["SCI"].header["CRPIX1"] == pytest.approx((20.5 - 0.5) * 2 + 0.5)
        np.testing.assert_array_equal(b["CAT"].data["flux"], [0.0, 1.0, 2.0])
        assert b[0].header["OBSERVER"] == "test"
        b.verify("exception")


def _exposure(path, rng):
    """An HST-like multi-extension exposure: two chips, each SCI + ERR + DQ, and a table."""
    hdus = [fits.PrimaryHDU()]
    for chip in (1, 2):
        wcs = WCS(naxis=2)
        wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
        wcs.wcs.crpix, wcs.wcs.crval, wcs.wcs.cdelt = [10.0, 12.0 + 30 * chip], [150.0, 2.0], [-1e-5, 1e-5]
        header = wcs.to_header()
        header["BUNIT"] = "ELECTRONS"
        sci = (50 + 10 * rng.random((21, 25))).astype(np.float32)
        hdus += [fits.ImageHDU(sci, header, name="SCI", ver=chip),
                 fits.ImageHDU(np.sqrt(sci), header, name="ERR", ver=chip),
                 fits.ImageHDU((rng.random((21, 25)) > 0.9).astype(np.int16) * 4, header, name="DQ", ver=chip)]
    hdus.append(fits.BinTableHDU.from_columns([fits.Column(name="x", format="E", array=np.arange(2.0))], name="CAT"))
    fits.HDUList(hdus).writeto(path)


def test_every_science_extension_is_upscaled_with_its_companions(tmp_path):
    source = tmp_path / "exposure.fits"
    _exposure(source, np.random.default_rng(1))
    out = sciSR.upscale_file(source, tmp_path / "sr.fits", "cubic", 2, hdu="all")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exposure.fits", "sr.fits"]
    with fits.open(source) as lr, fits.open(out) as sr:
        assert [(h.name, h.ver) for h in sr] == [(h.name, h.ver) for h in lr]
        for chip in (1, 2):
            single = sciSR.upscale(sciSR.read(source, hdu=("SCI", chip)), "cubic", 2)
            np.testing.assert_array_equal(sr["SCI", chip].data, single.array)
            # Electrons are counts: block sums conserved, σ ÷ 2 per sub-pixel, DQ nearest.
            sums = sr["SCI", chip].data.reshape(21, 2, 25, 2).sum(axis=(1, 3))
            np.testing.assert_allclose(sums, lr["SCI", chip].data, rtol=0, atol=1e-6 * lr["SCI", chip].data.max())
            np.testing.assert_allclose(sr["ERR", chip].data[::2, ::2], lr["ERR", chip].data / 2, rtol=1e-6)
            np.testing.assert_array_equal(sr["DQ", chip].data[1::2, 1::2], lr["DQ", chip].data)
            assert sr["SCI", chip].header["CRPIX2"] == pytest.approx((12.0 + 30 * chip - 0.5) * 2 + 0.5)
        np.testing.assert_array_equal(sr["CAT"].data["x"], [0.0, 1.0])


def test_hdu_all_is_refused_for_other_formats(tmp_path):
    import nibabel as nib

    path = tmp_path / "v.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((4, 4, 4), np.float32), np.eye(4)), path)
    with pytest.raises(SciSRError, match='hdu="all" is for multi-extension FITS'):
        sciSR.upscale_file(path, tmp_path / "o.nii.gz", "cubic", 2, hdu="all")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.nii.gz"]


def test_cli_hdu_all(tmp_path):
    from sciSR.cli import main

    source = tmp_path / "exposure.fits"
    _exposure(source, np.random.default_rng(2))
    assert main(["upscale", str(source), str(tmp_path / "sr.fits"), "--scale", "2", "--hdu", "all"]) == 0
    with fits.open(tmp_path / "sr.fits") as sr:
        assert sr["SCI", 2].data.shape == sr["DQ", 1].data.shape == (42, 50)
