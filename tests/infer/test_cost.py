"""Run-time estimates (:mod:`sciSR.infer.cost`) and the guard refusing a job estimated above ``SCISR_MAX_HOURS``
unless forced (issue 15 item 3; docs/architecture.md §5)."""

from __future__ import annotations

import contextlib
import io
import math

import numpy as np
import pytest
import torch
from torch import nn

import sciSR
from sciSR.cli import main
from sciSR.errors import SciSRError
from sciSR.infer import cost
from sciSR.models import create_model, spec_of
from sciSR.paging import DEFAULT_MAX_HOURS, MAX_HOURS_ENV, MAX_OUTPUT_BYTES, check_run_time, max_run_hours
from sciSR.pipeline import ResolvedModel, UpscaleRequest


class ConvShuffle(nn.Module):
    """A 3×3 convolution 1 → 4 channels then a ×2 pixel shuffle: 36 multiply-adds per input pixel, so 9 per
    output pixel (18 FLOPs). Records the shapes it is called with."""

    def __init__(self, window_multiple: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.up = nn.PixelShuffle(2)
        self.scale, self.spatial_dims, self.in_channels = 2, 2, 1
        self.window_multiple = window_multiple
        self.seen: list[tuple[int, ...]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(tuple(x.shape))
        return self.up(self.conv(x))


@pytest.fixture
def default_limit(monkeypatch):
    monkeypatch.delenv(MAX_HOURS_ENV, raising=False)


def test_flops_per_output_voxel_are_counted_once_on_a_small_probe():
    net = ConvShuffle()
    assert cost.network_flops_per_voxel(net, spec_of(net)) == 18.0
    assert cost.network_flops_per_voxel(net, spec_of(net)) == 18.0
    assert net.seen == [(1, 1, 8, 8)]  # one probe of PROBE_SIDE[2] pixels per axis, then the cache


def test_the_probe_respects_the_window_multiple():
    net = ConvShuffle(window_multiple=3)
    cost.network_flops_per_voxel(net, spec_of(net))
    assert net.seen == [(1, 1, 9, 9)]


class NeedsLargeInputs(ConvShuffle):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if min(x.shape[2:]) < 64:
            raise RuntimeError("input smaller than the network's pooling")
        return super().forward(x)


def test_a_network_the_probe_fails_on_is_estimated_from_its_parameters():
    net = NeedsLargeInputs()
    params = sum(p.numel() for p in net.parameters())  # 36 weights + 4 biases
    assert cost.network_flops_per_voxel(net, spec_of(net)) == 2.0 * params / 4


def test_a_network_estimate_is_voxels_times_flops_over_the_device_throughput(monkeypatch):
    net = ConvShuffle()
    cpu = cost.CPU_FLOPS_PER_THREAD * torch.get_num_threads()
    assert cost.flops_per_second("cpu") == cpu
    assert cost.network_seconds(10**12, net, spec_of(net), "cpu") == pytest.approx(18e12 / cpu)
    monkeypatch.setattr("sciSR.infer.tiled.resolve_device", lambda device: torch.device("cuda"))
    gpu = cost.ACCELERATOR_FLOPS["cuda"]
    assert cost.network_seconds(10**12, net, spec_of(net), "auto") == pytest.approx(18e12 / gpu)


def test_interpolation_is_never_refused_for_time_within_the_size_guard(default_limit, tmp_path):
    largest = MAX_OUTPUT_BYTES // 4  # float32 voxels of the largest result accepted without --force
    assert cost.interpolation_seconds(largest) < 3600 < DEFAULT_MAX_HOURS * 3600
    image = sciSR.SciImage.from_array(np.zeros((2048, 2048), np.float32))
    request = UpscaleRequest.build(image, "cubic", 8, output=tmp_path / "out.fits")  # 16384² voxels: no refusal
    assert request.estimated_seconds(image) == pytest.approx(16384**2 * cost.INTERPOLATION_SECONDS_PER_VOXEL)


def test_the_request_counts_the_result_the_self_check_and_channel_passes():
    net = ConvShuffle()
    request = UpscaleRequest(model=ResolvedModel.of(net), factors=(2, 2), device="cpu")
    rgb = sciSR.SciImage.from_array(np.zeros((10, 20, 3), np.float32), meta={"channel_axis": 2})
    voxels = (20 * 40 + 10 * 20) * 3  # result + self-check (the input's own size), once per channel
    assert request.estimated_seconds(rgb) == pytest.approx(voxels * 18 / cost.flops_per_second("cpu"))


def test_a_large_network_job_is_estimated_above_the_limit_and_refused(default_limit):
    # A 200000² mosaic ×2 through EDSR (about 2e7 FLOPs per output pixel): days even on 128 CPU threads. The
    # array is a broadcast view, so nothing that large is allocated.
    request = UpscaleRequest(model=ResolvedModel.of(create_model("edsr", scale=2).eval()), factors=(2, 2),
                             device="cpu")
    huge = sciSR.SciImage.from_array(np.broadcast_to(np.float32(0), (200000, 200000)))
    seconds = request.estimated_seconds(huge)
    assert seconds > 2 * DEFAULT_MAX_HOURS * 3600
    with pytest.raises(SciSRError) as info:
        check_run_time(seconds, path="sr.tif", device="cpu")
    message = str(info.value)
    assert message.startswith(f"sr.tif: the upscale would take about {seconds / 3600:.3g} h on cpu (a rough estimate)")
    assert "more than the limit of 24 h (SCISR_MAX_HOURS)" in message and "force=True (CLI: --force)" in message
    assert "\n" not in message


def test_the_limit_is_24_hours_or_scisr_max_hours(monkeypatch, default_limit):
    check_run_time(23.9 * 3600)
    with pytest.raises(SciSRError, match=r"about 24\.1 h"):
        check_run_time(24.1 * 3600)
    monkeypatch.setenv(MAX_HOURS_ENV, "48")
    assert max_run_hours() == 48.0
    check_run_time(24.1 * 3600)


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "a day"])
def test_a_bad_scisr_max_hours_is_one_line_naming_the_variable(monkeypatch, value):
    monkeypatch.setenv(MAX_HOURS_ENV, value)
    with pytest.raises(SciSRError) as info:
        check_run_time(1.0)
    assert str(info.value) == f"{MAX_HOURS_ENV}: must be a positive number of hours, got {value!r}"


def test_force_skips_the_estimate(monkeypatch, tmp_path):
    monkeypatch.setenv(MAX_HOURS_ENV, "1e-9")  # every network job is now "too long"
    image = sciSR.SciImage.from_array(np.zeros((16, 16), np.float32))
    with pytest.raises(SciSRError, match="would take about"):
        UpscaleRequest.build(image, "generic-x2", output=tmp_path / "out.png")

    def not_estimated(*args, **kwargs):
        raise AssertionError("forced: the estimate must not even run")

    monkeypatch.setattr("sciSR.pipeline.network_seconds", not_estimated)
    request = UpscaleRequest.build(image, "generic-x2", output=tmp_path / "out.png", force=True)
    assert request.output == tmp_path / "out.png"
    assert not list(tmp_path.iterdir())


def test_scisr_force_runs_a_job_refused_for_time(monkeypatch, tmp_path):
    monkeypatch.setenv(MAX_HOURS_ENV, "1e-9")
    source, target = tmp_path / "in.png", tmp_path / "out.png"
    sciSR.write(sciSR.SciImage.from_array(np.linspace(0, 1, 32 * 32, dtype=np.float32).reshape(32, 32)), source)
    argv = ["upscale", str(source), str(target), "--model", "generic-x2", "--device", "cpu"]
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        assert main(argv) == 1
        assert not target.exists() and "would take about" in err.getvalue()
        assert main([*argv, "--force"]) == 0, err.getvalue()
    assert sciSR.read(target).array.shape == (64, 64)
    assert math.isfinite(float(sciSR.read(target).array.mean()))
