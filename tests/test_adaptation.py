"""Test-time adaptation: ``upscale(..., adapt=seconds)`` fine-tunes a copy of the network on the image."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import sciSR
from sciSR.adaptation import adapt_request
from sciSR.errors import SciSRError
from sciSR.models import create_model
from sciSR.pipeline import UpscaleRequest


def _mri_frame(shape: tuple[int, int] = (96, 80), seed: int = 0) -> sciSR.SciImage:
    """A smooth MR-like frame: blobs of different intensity on a dark background."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]].astype(np.float32)
    img = np.zeros(shape, np.float32)
    for _ in range(12):
        cy, cx = rng.uniform(0, shape[0]), rng.uniform(0, shape[1])
        r = rng.uniform(4, 16)
        img += rng.uniform(50, 200) * (((yy - cy) ** 2 + (xx - cx) ** 2) < r**2)
    from scipy import ndimage

    return sciSR.SciImage.from_array(ndimage.gaussian_filter(img, 1.0), spacing=(1.0, 1.0), domain="mri")


def _weights(model: torch.nn.Module) -> list[np.ndarray]:
    return [p.detach().cpu().numpy().copy() for p in model.state_dict().values()]


def test_adaptation_keeps_the_shipped_weights_unless_they_lose_on_held_out_rows() -> None:
    image = _mri_frame()
    request = UpscaleRequest.build(image, "mri-x2", adapt=600.0)
    before = _weights(request.model.net)
    adapted = adapt_request(image, request, max_steps=10)
    record = adapted.adaptation
    assert record["steps"] == 10 and record["seconds"] == 600.0
    # The shipped weights are the first candidate: the kept ones are never worse on the held-out rows.
    assert record["val_l1"] <= record["val_l1_start"]
    assert record["used"] == (record["best_step"] > 0)
    assert (adapted.model.net is request.model.net) == (not record["used"])
    assert record["held_out_rows"] == round(48 * 0.25) and record["degradation"]["kind"] == "kspace"
    # The caller's network is a copy: never changed by the fine-tuning.
    assert all(np.array_equal(a, b) for a, b in zip(before, _weights(request.model.net), strict=True))


def test_adaptation_from_an_untrained_network_is_used_and_recorded() -> None:
    image = _mri_frame()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = create_model("edsr-baseline", scale=2, spatial_dims=2, in_channels=1, n_blocks=2, features=8)
    net.card = {**net.card, "normalisation": {"method": "percentile"}}
    request = UpscaleRequest.build(image, net, 2, adapt=600.0)
    adapted = adapt_request(image, request, max_steps=60)
    record = adapted.adaptation
    assert record["used"] and record["best_step"] > 0 and record["val_l1"] < 0.97 * record["val_l1_start"]
    result = sciSR.upscale(image, net, 2, adapt=60.0)
    step = result.meta["provenance"][-1]
    assert result.array.shape == (192, 160) and np.isfinite(result.array).all()
    assert step["adaptation"]["steps"] >= 1 and "self_check" in step


def test_adaptation_on_a_volume_learns_from_its_planes() -> None:
    frames = [_mri_frame((64, 64), seed).array for seed in range(3)]
    volume = sciSR.SciImage.from_array(np.stack(frames, axis=-1), spacing=(1.0, 1.0, 3.0), domain="mri")
    result = sciSR.upscale(volume, "mri-x2", (2, 2, 1), adapt=2.0)
    record = result.meta["provenance"][-1]["adaptation"]
    assert result.array.shape == (128, 128, 3)
    assert record["steps"] >= 1 and record["val_l1"] <= record["val_l1_start"]


def test_adapt_is_off_by_default_and_interpolation_has_none() -> None:
    image = _mri_frame()
    assert "adaptation" not in sciSR.upscale(image, "mri-x2").meta["provenance"][-1]
    with pytest.raises(SciSRError, match="an interpolation has none"):
        sciSR.upscale(image, "cubic", 2, adapt=10)


@pytest.mark.parametrize(("adapt", "message"), [
    (0, "positive number of seconds"), (-3.0, "positive number of seconds"), (float("nan"), "positive number"),
    (True, "positive number of seconds"), ("soon", "a number of seconds")])
def test_bad_adapt_values_are_one_line_errors(adapt: object, message: str) -> None:
    with pytest.raises(SciSRError, match=message):
        sciSR.upscale(_mri_frame(), "mri-x2", adapt=adapt)


def test_adapt_refuses_what_it_cannot_learn_from_the_image() -> None:
    volume = sciSR.SciImage.from_array(np.random.default_rng(0).random((32, 32, 8), np.float32),
                                       spacing=(1.0, 1.0, 4.0), domain="mri")
    with pytest.raises(SciSRError, match=r"through-plane: use sciSR\.self_supervised"):
        sciSR.upscale(volume, "mri-thick-x4", (1, 1, 4), adapt=5)
    with pytest.raises(SciSRError, match="too small to adapt"):
        sciSR.upscale(_mri_frame((20, 20)), "mri-x2", adapt=5)
    with pytest.raises(SciSRError, match="give scale=, not spacing="):
        sciSR.upscale(_mri_frame(), "mri-x2", spacing=0.6, adapt=5)
    with pytest.raises(SciSRError, match="stacks and references are not adapted"):
        sciSR.upscale([_mri_frame(), _mri_frame()], "cubic", 2, adapt=5)


def test_cli_adapt_prints_a_note_and_records_the_adaptation(tmp_path, capsys) -> None:
    from pydicom.data import get_testdata_file

    from sciSR.cli import main

    source = get_testdata_file("MR_small.dcm")
    out = tmp_path / "sr.nii"
    assert main(["upscale", source, str(out), "--model", "mri-x2", "--adapt", "3"]) == 0
    assert "note: adaptation:" in capsys.readouterr().err
    result = sciSR.read(out)
    assert result.array.shape == (128, 128)


@pytest.mark.parametrize("window", ["hamming", None])
def test_adaptation_pairs_follow_the_window_the_input_shows(window) -> None:
    from sciSR.data.phantoms import knee_phantom
    from sciSR.degrade.mri import kspace_downsample

    truth = knee_phantom((128, 128, 4), seed=3).array[..., 2].astype(np.float32)
    lr = kspace_downsample(truth, (2, 2), window)
    image = sciSR.SciImage.from_array(lr, spacing=(1.0, 1.0), domain="mri")
    adapted = adapt_request(image, UpscaleRequest.build(image, "mri-x2", adapt=600.0), max_steps=2)
    # Pairs made sharp from a Hamming input taught mri-x2 to stop undoing the window (-2.5 dB on MR_small).
    assert adapted.adaptation["degradation"].get("window") == window
    assert adapted.operator.window == window


def test_adaptation_stops_at_its_step_cap_whatever_the_budget() -> None:
    from sciSR.adaptation import ADAPTATION

    image = _mri_frame((64, 64))
    adapted = adapt_request(image, UpscaleRequest.build(image, "mri-x2", adapt=900.0))
    record = adapted.adaptation
    assert record["step_cap"] >= ADAPTATION["min_step_cap"]
    assert record["steps"] == record["step_cap"]


@pytest.mark.parametrize(("noise", "skipped"), [(0.0, False), (0.02, True)])
def test_a_noisy_windowed_acquisition_keeps_the_shipped_weights(noise: float, skipped: bool) -> None:
    import dataclasses

    from sciSR.adaptation import WINDOWED_NOISE_LIMIT
    from sciSR.consistency import ForwardModel
    from sciSR.degrade.mri import kspace_downsample

    hr = _mri_frame((128, 128)).array
    lr = kspace_downsample(hr, (2, 2), "hamming", noise * float(np.percentile(hr, 99)), np.random.default_rng(0))
    image = sciSR.SciImage.from_array(lr, spacing=(2.0, 2.0), domain="mri")
    request = UpscaleRequest.build(image, "mri-x2", adapt=600.0)
    request = dataclasses.replace(request, operator=ForwardModel("kspace", (2, 2), window="hamming", source="header"))
    record = adapt_request(image, request, max_steps=5).adaptation
    assert ("skipped" in record) == skipped
    assert record["steps"] == (0 if skipped else 5)
    if skipped:
        assert not record["used"] and f"limit {WINDOWED_NOISE_LIMIT}" in record["skipped"]


def test_a_zero_filled_acquisition_keeps_the_shipped_weights() -> None:
    from sciSR.degrade.mri import kspace_downsample

    lr = kspace_downsample(_mri_frame((128, 128)).array, (2, 2))
    image = sciSR.SciImage.from_array(lr, spacing=(2.0, 2.0), domain="mri", meta={"acquired": (0.75, 0.75)})
    record = adapt_request(image, UpscaleRequest.build(image, "mri-x2", adapt=600.0), max_steps=5).adaptation
    assert record["steps"] == 0 and not record["used"] and "zero-filled k-space" in record["skipped"]
