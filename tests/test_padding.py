"""CT padding outside the reconstructed field: read, kept apart from the anatomy, handed back, written."""

from __future__ import annotations

import warnings

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

import sciSR
from sciSR.blocks import bin_array, replicate
from sciSR.cli import main
from sciSR.degrade.ct import ct_downsample
from sciSR.metrics import psnr
from sciSR.padding import CT_OUTSIDE_HU, outside_field, padding_value
from sciSR.pipeline import prepare


@pytest.fixture(scope="module")
def ct() -> sciSR.SciImage:
    return sciSR.read(get_testdata_file("CT_small.dcm"))


def _disc(image: sciSR.SciImage, fill: float, radius: float = 0.45) -> sciSR.SciImage:
    """``image`` with everything outside a centred disc set to ``fill``, as a scanner stores its corners."""
    n, m = image.array.shape
    i, j = np.mgrid[:n, :m]
    outside = (i - (n - 1) / 2) ** 2 + (j - (m - 1) / 2) ** 2 > (radius * min(n, m)) ** 2
    array = np.where(outside, np.float32(fill), image.array).astype(np.float32)
    return sciSR.SciImage.from_array(array, spacing=image.spacing, domain="ct", meta={"units": "HU"})


def test_reader_calibrates_pixel_padding_value(ct):
    # CT_small stores PixelPaddingValue −2000 with RescaleIntercept −1024: −3024 HU.
    assert pydicom.dcmread(get_testdata_file("CT_small.dcm")).PixelPaddingValue == -2000
    assert ct.meta["padding"] == (-3024.0, -3024.0)
    assert sciSR.read(get_testdata_file("MR_small.dcm")).meta.get("padding") is None


def test_outside_field_from_header_and_from_ct_numbers(ct):
    assert outside_field(ct) is None  # no pixel holds the padding value
    padded = _disc(ct, -2000.0)
    outside = outside_field(padded)
    assert outside is not None and np.array_equal(outside, padded.array < CT_OUTSIDE_HU)
    assert padding_value(padded, outside) == -2000.0
    # A header's value marks padding in CT even inside the CT range; in MR (whose air holds it too) never.
    header = sciSR.SciImage.from_array(np.where(outside, 7.0, 100.0).astype(np.float32), domain="ct",
                                       meta={"padding": (7.0, 7.0)})
    assert np.array_equal(outside_field(header), outside)
    mr = sciSR.SciImage.from_array(header.array, domain="mri", meta={"padding": (7.0, 7.0)})
    assert outside_field(mr) is None
    values, mask = prepare(padded)
    assert np.array_equal(mask, outside) and values.min() >= CT_OUTSIDE_HU  # filled from the disc


def test_network_sees_the_disc_only_and_the_corners_come_back(ct):
    padded = _disc(ct, -2000.0)
    filled = sciSR.SciImage.from_array(prepare(padded)[0], spacing=ct.spacing, domain="ct", meta={"units": "HU"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = sciSR.upscale(padded, "ct-x2")
        # Without the projection (which takes the corners as unmeasured, not as air) the disc is the same.
        network = sciSR.upscale(padded, "ct-x2", consistency="off")
        reference = sciSR.upscale(filled, "ct-x2", consistency="off")
    corners = replicate(outside_field(padded), (2, 2))
    for image in (result, network):
        assert np.all(image.array[corners] == -2000.0)
        assert "mask" not in image.meta and np.isfinite(image.array).all()
    assert np.array_equal(network.array[~corners], reference.array[~corners])


def test_padding_no_longer_costs_the_disc(monkeypatch):
    # A real head CT whose corners hold −2000 HU (no PixelPaddingValue: found by the CT-number rule), acquired
    # at low resolution as a scanner would (ct-x2's family, FWHM 1.75; wholly outside pixels stay padding).
    head = sciSR.read(get_testdata_file("J2K_pixelrep_mismatch.dcm"))
    outside = outside_field(head)
    assert outside is not None and head.meta.get("padding") is None
    lr = ct_downsample(prepare(head)[0], (2, 2), 1.75).astype(np.float32)
    lr[bin_array(outside.astype(np.float32), (2, 2)) == 1] = -2000.0
    low = sciSR.SciImage.from_array(lr, spacing=tuple(2 * s for s in head.spacing), domain="ct",
                                    meta={"units": "HU"})
    truth = np.where(outside, np.nan, head.array)  # the anatomy: padding is no image

    def gain() -> float:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = sciSR.upscale(low, "ct-x2").array
        return psnr(model, truth) - psnr(sciSR.upscale(low, "cubic", scale=2).array, truth)

    assert gain() > 3.0  # +6.9 dB
    # Fed to the network as values, the corners cancel its gain (+0.01 dB; −0.8 dB with 20 HU of noise).
    monkeypatch.setattr(sciSR.pipeline, "outside_field", lambda image: None)
    assert gain() < 0.5


def test_ensemble_spread_is_zero_outside(ct):
    padded = _disc(ct, -2000.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mean, spread = sciSR.upscale(padded, "ct-x2", ensemble=True, uncertainty=True)
    corners = replicate(outside_field(padded), (2, 2))
    assert np.all(mean.array[corners] == -2000.0) and np.all(spread.array[corners] == 0.0)
    assert spread.array[~corners].max() > 0


def test_dicom_writer_keeps_the_padding_value_and_info_shows_it(ct, tmp_path, capsys):
    padded = _disc(ct, -3024.0)
    padded.meta.update({k: ct.meta[k] for k in ("format", "dicom_template", "rescale", "padding", "modality")})
    result = sciSR.upscale(padded, "cubic", scale=2)
    sciSR.write(result, tmp_path / "out")
    first = sorted((tmp_path / "out").glob("*.dcm"))[0]
    ds = pydicom.dcmread(first)
    assert ds["PixelPaddingValue"].VR == "SS"
    assert ds.PixelPaddingValue * float(ds.RescaleSlope) + float(ds.RescaleIntercept) == -3024.0
    back = sciSR.read(first)
    assert back.meta["padding"] == (-3024.0, -3024.0)
    assert np.array_equal(outside_field(back), replicate(outside_field(padded), (2, 2)))
    capsys.readouterr()
    assert main(["info", str(first)]) == 0
    corners = int(outside_field(back).sum())
    assert f"padding:     {corners} voxels outside the reconstructed field, value -3024" in capsys.readouterr().out
