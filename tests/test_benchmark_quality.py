"""Smoke test of the quality matrix of benchmarks/quality.py on one tiny image (a few seconds)."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

import sciSR
from sciSR.errors import SciSRError
from sciSR.pipeline import ResolvedModel

ROOT = Path(__file__).resolve().parents[1]


def _quality():
    # The benchmark is a script, not a package module: load it from its file.
    spec = importlib.util.spec_from_file_location("quality_matrix", ROOT / "benchmarks" / "quality.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


quality = _quality()


def test_agreement_sign_with_tolerance():
    assert quality.real_agrees(0.3, 1.0) is True
    assert quality.real_agrees(-0.04, 0.5) is True  # a loss within 0.05 dB is a tie
    assert quality.real_agrees(-0.2, 0.5) is False
    assert quality.real_agrees(0.2, -0.3) is False
    assert quality.real_agrees(None, 0.3) is None


@pytest.mark.parametrize("family,ndim,shape", [("mri-inplane", 2, (32, 32)), ("mri-through", 3, (32, 32, 1)),
                                               ("ct", 2, (32, 32)), ("sky", 2, (32, 32)), ("generic", 2, (32, 32))])
def test_variants_make_the_low_resolution_shape(family, ndim, shape):
    truth = np.random.default_rng(0).uniform(1.0, 100.0, shape).astype(np.float32)
    for variant in quality.variants(family, ndim, 4 if family == "generic" else 2):
        lr = variant.make(truth, np.random.default_rng(0))
        assert lr.shape == tuple(n // f for n, f in zip(shape, variant.factors, strict=True))
        assert np.isfinite(lr).all()


def test_zero_filled_variant_says_so_in_its_header():
    truth = np.random.default_rng(0).uniform(1.0, 100.0, (32, 32)).astype(np.float32)
    variant = next(v for v in quality.variants("mri-inplane", 2) if v.header)
    assert variant.input_meta() == {"acquired": (0.75, 0.75)}
    spectrum = np.abs(np.fft.fft2(variant.make(truth, np.random.default_rng(0))))
    k = np.abs(np.rint(np.fft.fftfreq(16) * 16))
    empty = (k[:, None] > 6) | (k[None, :] > 6)  # beyond ⌊0.75 · 16 / 2⌋ lines
    assert spectrum[empty].max() <= 1e-6 * spectrum.max() and spectrum[~empty].min() > 0
    assert quality.variants("sky", 2)[0].input_meta() == {"units": "counts"}


def test_held_out_check_refuses_a_training_image():
    card = ResolvedModel.of("mri-x2").card
    quality.check_held_out(card, Path("MR_small.dcm"))
    with pytest.raises(SciSRError, match="not a held-out image"):
        quality.check_held_out(card, Path("anatomical.nii"))


def test_held_out_check_refuses_a_crop_of_a_training_slice():
    """pydicom's examples_overlay.dcm is rows 100–399 of MR-SIEMENS-DICOM-WithOverlays.dcm (same study)."""
    from pydicom.data import get_testdata_file

    path = Path(get_testdata_file("examples_overlay.dcm"))
    with pytest.raises(SciSRError, match=r"study of MR-SIEMENS-DICOM-WithOverlays\.dcm, which trained mri-x2"):
        quality.check_held_out(ResolvedModel.of("mri-x2").card, path)
    quality.check_held_out(ResolvedModel.of("generic-x2").card, path)  # it trained on photographs only


def test_a_zero_filled_slice_is_no_truth():
    from pydicom.data import get_testdata_file

    name = "examples_overlay.dcm"
    with pytest.raises(SciSRError, match=r"examples_overlay\.dcm: its header says 53 % × 37 % of the k-space"):
        quality.check_measured(sciSR.read(get_testdata_file(name)), name)
    quality.check_measured(sciSR.read(get_testdata_file("MR_small.dcm")), "MR_small.dcm")


def test_one_cell_tables_json_and_figure(tmp_path):
    truth, path = quality.load_truth("CT_small.dcm", "ct")
    quality.check_held_out(ResolvedModel.of("ct-x2").card, path)
    small = sciSR.SciImage.from_array(truth.array[32:80, 32:80], spacing=truth.spacing, domain=truth.domain)
    variant = quality.variants("ct", 2)[1]
    row = quality.evaluate_cell(ResolvedModel.of("ct-x2"), small, variant, image=path.name)
    assert row["baseline"] == "cubic" and row["shape"] == [48, 48]
    assert set(row["psnr"]) == {"baseline", "cubic", "off", "on", "auto"}
    assert row["delta"]["auto"] == pytest.approx(row["psnr"]["auto"] - row["psnr"]["baseline"])
    assert row["self_check"]["auto"] is not None  # 24² LR pixels: enough for the self-check
    assert row["agree"]["auto"] == quality.real_agrees(row["self_check"]["auto"], row["delta"]["auto"])
    rows = [row]
    text = quality.matrix_tables(rows) + quality.agreement_table(rows) + quality.summary_table(quality.summary(rows))
    assert "ct-x2" in text and "agreement (default auto runs)" in text
    json.dumps(quality.plain(rows))  # every number is JSON
    png = quality.matrix_figure(rows, tmp_path / "quality.png")
    assert png.stat().st_size > 0
