"""Data consistency, the self-check, the guard and the weights' hash in the upscale pipeline (issue 16)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import warnings

import numpy as np
import pytest
import torch
from pydicom.data import get_testdata_file

import sciSR
from sciSR.cli import main
from sciSR.consistency import ForwardModel, degrade
from sciSR.hub import shipped_models
from sciSR.models import create_model
from sciSR.pipeline import UpscaleRequest, upscale_image


@pytest.fixture(scope="module")
def mr() -> sciSR.SciImage:
    return sciSR.read(get_testdata_file("MR_small.dcm"))


@pytest.fixture(scope="module")
def ct() -> sciSR.SciImage:
    return sciSR.read(get_testdata_file("CT_small.dcm"))


@pytest.fixture
def run_shapes(monkeypatch) -> list[tuple[int, ...]]:
    """The input shapes of every network run in the pipeline from now on (a spy on ``pipeline.run``)."""
    from sciSR import pipeline

    shapes: list[tuple[int, ...]] = []
    real_run = pipeline.run

    def spy(request, image, values, **kwargs):
        shapes.append(tuple(values.shape))
        return real_run(request, image, values, **kwargs)

    monkeypatch.setattr(pipeline, "run", spy)
    return shapes


def _reapplied_error(result: sciSR.SciImage, lr: sciSR.SciImage, operator: ForwardModel) -> float:
    again = degrade(result.array.astype(np.float64), operator)
    return float(np.abs(again - lr.array).max() / np.abs(lr.array).max())


def test_kspace_consistency_on_gives_the_input_back(mr):
    request = UpscaleRequest.build(mr, "mri-x2", consistency="on")
    operator = ForwardModel("kspace", request.factors, window=None, noise_sigma=0.0, source="default")
    result = upscale_image(mr, dataclasses.replace(request, operator=operator))
    assert result.meta["provenance"][-1]["consistency"]["kind"] == "kspace"
    assert _reapplied_error(result, mr, operator) <= 1e-5
    off = upscale_image(mr, dataclasses.replace(request, operator=operator, consistency="off"))
    assert off.meta["provenance"][-1]["consistency"] == "off"
    assert _reapplied_error(off, mr, operator) > 1e-3  # the network alone is not consistent


def _exact_upscale(image: sciSR.SciImage, model: str) -> tuple[sciSR.SciImage, dict, ForwardModel]:
    """The default upscale's provenance step, and the upscale told the input is noise-free, with its operator."""
    step = sciSR.upscale(image, model, consistency="on").meta["provenance"][-1]
    request = UpscaleRequest.build(image, model, consistency="on")
    operator = dataclasses.replace(request.operator, noise_sigma=0.0)
    return upscale_image(image, dataclasses.replace(request, operator=operator)), step, operator


def test_ct_and_thick_slice_consistency_through_the_api(ct):
    # Blur operators leave σ to be estimated (a Wiener-weighted projection: CT carries quantum noise);
    # told the input is noise-free, the projection is exact.
    result, step, operator = _exact_upscale(ct, "ct-x2")
    assert step["consistency"]["kind"] == "ct" and step["consistency"]["noise_sigma"] > 0  # the σ it used, in HU
    assert _reapplied_error(result, ct, operator) <= 1e-5
    rng = np.random.default_rng(0)
    volume = sciSR.SciImage.from_array(rng.random((24, 24, 6)).astype(np.float32) + 1, spacing=(1.0, 1.0, 4.0),
                                       affine=np.diag([1.0, 1.0, 4.0, 1.0]), domain="mri")
    thick, step, operator = _exact_upscale(volume, "mri-thick-x4")  # the factor goes to the thick axis
    assert thick.array.shape == (24, 24, 24)
    assert step["consistency"]["kind"] == "slice_profile" and step["consistency"]["noise_sigma"] > 0
    assert _reapplied_error(thick, volume, operator) <= 1e-5


def test_noisy_ct_is_not_deconvolved(ct):
    # The top of ct-x2's noise range (20 HU) on the held-out slice: the exact projection was 2.7 dB below
    # cubic here; the noise-weighted one is above it.
    truth = ct.array.astype(np.float32)
    low = sciSR.SciImage.from_array(
        sciSR.degrade.ct_downsample(truth, (2, 2), 1.75, noise_std=20.0, rng=np.random.default_rng(0)),
        spacing=tuple(2 * s for s in ct.spacing), domain="ct")
    model = sciSR.upscale(low, "ct-x2").array
    cubic = sciSR.upscale(low, "cubic", 2).array
    assert sciSR.metrics.psnr(model, truth) > sciSR.metrics.psnr(cubic, truth)


def test_self_check_and_weights_hash_are_in_the_provenance(mr):
    result = sciSR.upscale(mr, "mri-x2")
    step = result.meta["provenance"][-1]
    check = step["self_check"]
    assert check["baseline"] == "zerofill" and np.isfinite(check["model_psnr"]) and np.isfinite(check["baseline_psnr"])
    assert check["delta_db"] == pytest.approx(check["model_psnr"] - check["baseline_psnr"], abs=2e-3)
    assert check["model_psnr"] == (check["model_psnr_consistent"] if check["consistency"] else check["model_psnr_raw"])
    expected = hashlib.sha256(shipped_models()["mri-x2"].read_bytes()).hexdigest()
    assert step["weights_sha256"] == expected
    # Interpolation has no self-check and no consistency step.
    cubic = sciSR.upscale(mr, "cubic", 2, consistency="on").meta["provenance"][-1]
    assert "self_check" not in cubic and "consistency" not in cubic


def test_guard_returns_the_baseline_when_the_model_loses(mr):
    with torch.random.fork_rng():
        torch.manual_seed(0)
        untrained = create_model("srcnn", scale=2, spatial_dims=2, in_channels=1)
    with pytest.warns(UserWarning, match="loses to zerofill"):
        loser = sciSR.upscale(mr, untrained, consistency="off")
    assert loser.meta["provenance"][-1]["self_check"]["delta_db"] < -0.05
    guarded = sciSR.upscale(mr, untrained, consistency="off", guard=True)
    step = guarded.meta["provenance"][-1]
    assert step["model"] == "zerofill" and step["guard"]["replaced"] == "srcnn"
    np.testing.assert_array_equal(guarded.array, sciSR.upscale(mr, "zerofill", 2).array)


def test_bad_consistency_value_is_refused(mr):
    with pytest.raises(sciSR.SciSRError, match="consistency must be one of auto, on, off"):
        sciSR.upscale(mr, "mri-x2", consistency="yes")


def test_cli_prints_the_self_check_and_refuses_options_that_do_not_apply(tmp_path, capsys):
    source = get_testdata_file("MR_small.dcm")
    assert main(["upscale", source, str(tmp_path / "sr.nii"), "--model", "mri-x2", "--consistency", "on"]) == 0
    err = capsys.readouterr().err
    assert "self-check: mri-x2" in err and "zerofill" in err
    for options in (["--model", "cubic", "--scale", "2", "--guard"], ["--model", "cubic", "--scale", "2",
                                                                       "--consistency", "on"],
                    ["--model", "mri-x2", "--consistency", "maybe"]):
        with pytest.raises(SystemExit) as info:
            main(["upscale", source, str(tmp_path / "x.nii"), *options])
        assert info.value.code == 2
    assert not (tmp_path / "x.nii").exists()


def test_evaluate_reports_the_strongest_baseline(tmp_path):
    hr = sciSR.read(get_testdata_file("MR_small.dcm"))
    path = sciSR.write(hr, tmp_path / "mr.nii")
    rows = sciSR.evaluate("mri-x2", [path])
    assert rows[0]["baseline"] == "zerofill"
    assert json.loads(json.dumps(rows))[0]["delta_psnr"] == pytest.approx(rows[0]["psnr"] - rows[0]["psnr_baseline"])


def test_precision_is_resolved_once_and_recorded(mr):
    from sciSR.infer.precision import cpu_has_native_bf16

    fp32 = sciSR.upscale(mr, "mri-x2", consistency="off")
    assert fp32.meta["provenance"][-1]["precision"] == "fp32"
    bf16 = sciSR.upscale(mr, "mri-x2", consistency="off", precision="bf16")
    assert bf16.meta["provenance"][-1]["precision"] == "bf16"
    span = float(np.ptp(fp32.array))
    error = float(np.sqrt(np.mean((bf16.array - fp32.array) ** 2)))
    assert 0 < error < span * 10 ** (-40 / 20)  # bf16 changes the result, by less than 40 dB below its range
    auto = sciSR.upscale(mr, "mri-x2", consistency="off", precision="auto").meta["provenance"][-1]["precision"]
    assert auto == ("bf16" if cpu_has_native_bf16() else "fp32")
    with pytest.raises(sciSR.SciSRError, match="fp16"):
        sciSR.upscale(mr, "mri-x2", device="cpu", precision="fp16")
    if not torch.cuda.is_available():
        with pytest.raises(sciSR.SciSRError, match="CUDA is not available"):
            sciSR.upscale(mr, "mri-x2", device="cuda")


def test_window_beyond_damps_only_what_the_reduction_drops() -> None:
    from sciSR.consistency import window_beyond
    from sciSR.degrade.mri import kspace_window

    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 24))
    out = window_beyond(x, (2, 2), "hamming")
    ratio = np.fft.fft2(out) / np.fft.fft2(x)
    k0, k1 = (np.rint(np.fft.fftfreq(n) * n) for n in x.shape)
    inside = (np.abs(k0) <= 8)[:, None] & (np.abs(k1) <= 6)[None, :]
    weight = kspace_window(k0, 32, "hamming")[:, None] * kspace_window(k1, 24, "hamming")[None, :]
    np.testing.assert_allclose(ratio[inside], 1.0, atol=1e-9)
    np.testing.assert_allclose(ratio[~inside], weight[~inside], atol=1e-9)


def test_self_check_scores_a_windowed_input_against_its_window(mr):
    from sciSR.degrade.mri import kspace_downsample

    # A Hamming-windowed, noisy acquisition that the card does not describe (mri-x2 expects no window):
    # the self-check finds the window as the projection does and degrades its copy with it; judged as a
    # sharp acquisition against the input's damped outer frequencies, restoring them would read as a loss.
    sigma = 0.02 * float(np.percentile(mr.array, 99))
    low = kspace_downsample(mr.array.astype(np.float32), (2, 2), "hamming", noise_std=sigma,
                            rng=np.random.default_rng(0))
    image = sciSR.SciImage.from_array(low, spacing=tuple(2 * d for d in mr.spacing), domain="mri")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a self-check loss would warn
        result = sciSR.upscale(image, "mri-x2")
    check = result.meta["provenance"][-1]["self_check"]
    found = (check["forward_model"]["window"], check["forward_model"]["source"])
    assert found == ("hamming", "estimated") and check["delta_db"] > 0 and check["consistency"]
    sharp = sciSR.upscale(mr, "mri-x2").meta["provenance"][-1]["self_check"]
    assert sharp["reference_window"] is None and sharp["forward_model"]["window"] is None


def test_the_projection_finds_a_hamming_window_the_card_does_not_name(mr):
    from sciSR.degrade.mri import kspace_downsample
    from sciSR.metrics import psnr

    truth = mr.array.astype(np.float32)
    sigma = 0.02 * float(np.percentile(truth, 99))
    spacing = tuple(2 * d for d in mr.spacing)
    windowed = sciSR.SciImage.from_array(kspace_downsample(truth, (2, 2), "hamming", noise_std=sigma,
                                                           rng=np.random.default_rng(0)), spacing=spacing, domain="mri")
    result = sciSR.upscale(windowed, "mri-x2", consistency="on")
    step = result.meta["provenance"][-1]["consistency"]
    assert (step["window"], step["source"]) == ("hamming", "estimated")
    # Projected with the window it was acquired with, the result beats the network alone by far (measured
    # +0.96 dB) instead of losing to it (the sharp operator re-imposes the window's blur: -0.72 dB).
    off = sciSR.upscale(windowed, "mri-x2", consistency="off")
    assert psnr(result.array, truth) > psnr(off.array, truth) + 0.5
    ensemble = sciSR.upscale(windowed, "mri-x2", consistency="on", ensemble=True)
    assert ensemble.meta["provenance"][-1]["consistency"]["window"] == "hamming"
    sharp = sciSR.SciImage.from_array(kspace_downsample(truth, (2, 2)), spacing=spacing, domain="mri")
    step = sciSR.upscale(sharp, "mri-x2", consistency="on").meta["provenance"][-1]["consistency"]
    assert (step["window"], step["source"]) == (None, "card")


def test_a_volume_is_searched_for_its_window_on_one_plane(run_shapes):
    from sciSR import pipeline

    rng = np.random.default_rng(0)
    volume = sciSR.SciImage.from_array(rng.random((48, 40, 6), dtype=np.float32) * 100, spacing=(1.0, 1.0, 3.0),
                                       domain="mri")
    request = pipeline.UpscaleRequest.build(volume, "mri-x2", (2, 2, 1))
    pipeline.self_check(request, volume, volume.array)
    # The window search sees the middle plane; the check itself the degraded copy of the whole crop.
    assert run_shapes == [(48, 40, 1), (24, 20, 6)]


def test_scanner_zero_filled_input_is_projected_on_its_measured_lines(mr):
    # A ×2 acquisition of MR_small whose scanner measured 75 % of the lines and zero-filled the rest.
    op = ForwardModel("kspace", (2, 2), acquired=(0.75, 0.75))
    lr = degrade(mr.array.astype(np.float64), op).astype(np.float32)
    spacing = tuple(2 * s for s in mr.spacing)
    told = sciSR.SciImage.from_array(lr, spacing=spacing, domain="mri", meta={"acquired": (0.75, 0.75)})
    untold = sciSR.SciImage.from_array(lr, spacing=spacing, domain="mri")
    aware, unaware = sciSR.upscale(told, "mri-x2"), sciSR.upscale(untold, "mri-x2")
    assert aware.meta["provenance"][-1]["consistency"]["acquired"] == [0.75, 0.75]
    # Projected as if every line were measured, the empty ones wipe the network's detail (+1.14 dB over
    # cubic); on the measured ones only, +2.29 dB.
    assert sciSR.metrics.psnr(aware.array, mr.array) > sciSR.metrics.psnr(unaware.array, mr.array) + 0.5


def test_through_plane_self_check_keeps_the_network_planes_sharp(run_shapes):
    from sciSR import pipeline

    rng = np.random.default_rng(0)
    # Thick slices along axis 2: mri-thick-x4 runs on the (0, 2) planes, so the copy takes axis 1, which
    # those planes do not hold, into the thick axis's place and makes it thick: (48, 12, 40) → (48, 12, 10).
    volume = sciSR.SciImage.from_array(rng.random((48, 40, 12), dtype=np.float32) * 100,
                                       spacing=(1.0, 1.0, 4.0), domain="mri")
    request = pipeline.UpscaleRequest.build(volume, "mri-thick-x4", (1, 1, 4))
    check = pipeline.self_check(request, volume, volume.array)
    assert check is not None and run_shapes == [(48, 12, 10)]
    # One plane: no sharp axis beside the network's plane, so no faithful copy and no check; the projection
    # still runs (auto without a measurement keeps it).
    plane = sciSR.SciImage.from_array(rng.random((48, 10, 1), dtype=np.float32) * 100, spacing=(1.0, 4.0, 1.0),
                                      domain="mri")
    request = pipeline.UpscaleRequest.build(plane, "mri-thick-x4", (1, 4, 1))
    assert request.operator.kind == "slice_profile"
    assert pipeline.self_check(request, plane, plane.array) is None
    step = sciSR.upscale(plane, "mri-thick-x4", (1, 4, 1)).meta["provenance"][-1]
    assert step.get("self_check") is None and step["consistency"]["kind"] == "slice_profile"


def test_a_smooth_slice_keeps_the_share_of_the_extrapolated_band_its_copy_chooses(monkeypatch, caplog):
    from sciSR import pipeline
    from sciSR.data.shipped import EVALUATION_MRI, evaluation_files, read_raw_mri
    from sciSR.metrics import psnr

    # Matplotlib's real 256² head slice, sharp k-space ×2: the networks extrapolate more energy beyond the
    # measured band than this smooth slice has; the whole band lost to zero-filling (mri-x2 −0.18 dB).
    path = next(p for p in evaluation_files() if p.name == EVALUATION_MRI[0][1])
    truth = read_raw_mri(path)
    low = sciSR.SciImage.from_array(sciSR.degrade.kspace_downsample(truth, (2, 2)), spacing=(2.0, 2.0),
                                    domain="mri")
    zerofill = psnr(sciSR.upscale(low, "zerofill", 2).array, truth)
    with caplog.at_level("INFO", logger="sciSR"):
        result = sciSR.upscale(low, "mri-x2", 2)
    step = result.meta["provenance"][-1]
    assert f"keeping {100 * step['detail_share']:.0f} % of the detail" in caplog.text
    assert step["detail_share"] == step["self_check"]["detail_share"] < 1.0
    assert psnr(result.array, truth) > zerofill + 0.05
    monkeypatch.setattr(pipeline, "DETAIL_SHARES", (1.0,))
    whole = sciSR.upscale(low, "mri-x2", 2)
    assert "detail_share" not in whole.meta["provenance"][-1]
    assert psnr(whole.array, truth) < zerofill
    monkeypatch.undo()
    # A blend of two results consistent with the input is consistent: told it is noise-free, exact.
    request = UpscaleRequest.build(low, "mri-x2", consistency="on")
    operator = dataclasses.replace(request.operator, noise_sigma=0.0)
    exact = upscale_image(low, dataclasses.replace(request, operator=operator))
    assert exact.meta["provenance"][-1]["detail_share"] < 1.0
    assert _reapplied_error(exact, low, operator) <= 1e-5
    # The ensemble blends its mean alike and scales its spread by the share.
    mean, spread = sciSR.upscale(low, "mri-x2", 2, ensemble=True, uncertainty=True)
    share = mean.meta["provenance"][-1]["detail_share"]
    assert share < 1.0 and psnr(mean.array, truth) > zerofill
    monkeypatch.setattr(pipeline, "DETAIL_SHARES", (1.0,))
    _, whole_spread = sciSR.upscale(low, "mri-x2", 2, ensemble=True, uncertainty=True)
    np.testing.assert_allclose(spread.array, share * whole_spread.array, rtol=1e-4, atol=1e-3)
