"""Inference precision: resolving "auto", mixed precision with a float32 last layer, channels-last layout."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sciSR.errors import SciSRError
from sciSR.infer import precision as prec
from sciSR.infer.precision import autocast_forward, resolve_precision
from sciSR.infer.predict import predict_array
from sciSR.infer.tiled import predict_tiled
from sciSR.models import create_model
from sciSR.models.spec import ModelSpec

CPU = torch.device("cpu")


def _spec(precisions: tuple[str, ...] = ("fp32", "bf16", "fp16")) -> ModelSpec:
    return ModelSpec(arch="edsr-baseline", scale=(2, 2), spatial_dims=2, in_channels=1, out_channels=1,
                     precisions=precisions)


def _edsr(dims: int = 2, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return create_model("edsr-baseline", scale=2, spatial_dims=dims, features=8, n_blocks=2).eval()


def _image(shape: tuple[int, ...], seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).random((1, *shape), dtype=np.float32)


@pytest.mark.parametrize("native, expected", [(True, "bf16"), (False, "fp32")])
def test_auto_on_cpu_follows_native_bf16(monkeypatch, native, expected):
    monkeypatch.setattr(prec, "cpu_has_native_bf16", lambda: native)
    assert resolve_precision("auto", CPU, _spec()) == expected
    # A model whose card dropped bf16 (fidelity below the bar) never gets it from "auto".
    assert resolve_precision("auto", CPU, _spec(("fp32", "fp16"))) == "fp32"


def test_auto_on_cuda_is_bf16_where_supported(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert resolve_precision("auto", torch.device("cuda"), None) == "bf16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert resolve_precision("auto", torch.device("cuda"), None) == "fp32"
    assert resolve_precision("fp16", torch.device("cuda"), None) == "fp16"


def test_auto_on_mps_is_fp32():
    assert resolve_precision("auto", torch.device("mps"), _spec()) == "fp32"


@pytest.mark.parametrize("name, device, spec, message", [
    ("fp16", CPU, None, "not available on the CPU"),
    ("half", CPU, None, "is not one of"),
    ("bf16", torch.device("mps"), None, "not available on MPS"),
    ("bf16", CPU, _spec(("fp32",)), "supports precisions"),
])
def test_refused_precisions(name, device, spec, message):
    with pytest.raises(SciSRError, match=message) as info:
        resolve_precision(name, device, spec)
    assert "\n" not in str(info.value)


def test_cpu_bf16_detection_reads_cpuinfo_without_torch_probes(monkeypatch, tmp_path):
    for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        monkeypatch.delattr(torch.cpu, name, raising=False)
    text = {"value": "processor: 0\nflags\t\t: fpu sse avx512f avx512_bf16\n"}
    monkeypatch.setattr(prec.Path, "read_text", lambda self: text["value"])
    prec.cpu_has_native_bf16.cache_clear()
    try:
        assert prec.cpu_has_native_bf16()
        text["value"] = "flags: fpu sse avx2 avx512f\n"
        prec.cpu_has_native_bf16.cache_clear()
        assert not prec.cpu_has_native_bf16()
    finally:
        prec.cpu_has_native_bf16.cache_clear()


def test_autocast_forward_runs_tail_and_hooks_in_fp32():
    model = _edsr()
    seen = {}
    model.tail.register_forward_pre_hook(lambda m, args: seen.__setitem__("tail", args[0].dtype))
    model.body.register_forward_hook(lambda m, args, out: seen.__setitem__("body", out.dtype))
    model.register_forward_hook(lambda m, args, out: seen.__setitem__("hook", out.dtype) or out * 2)
    x = torch.rand(1, 1, 12, 12)
    with torch.inference_mode():
        full = model(x)
        mixed = autocast_forward(model, "cpu", torch.bfloat16)(x)
    assert seen == {"tail": torch.float32, "body": torch.bfloat16, "hook": torch.float32}
    assert mixed.dtype == torch.float32
    # The model-level hook (doubling) ran exactly once on the mixed path too.
    assert torch.allclose(mixed, full, atol=0.05 * float(full.abs().max()))
    assert autocast_forward(model, "cpu", None) is model


def test_autocast_forward_casts_other_networks_whole():
    torch.manual_seed(0)
    model = create_model("srnet-toy", scale=2, features=8).eval()
    with torch.inference_mode():
        out = autocast_forward(model, "cpu", torch.bfloat16)(torch.rand(1, 1, 10, 10))
    assert out.dtype == torch.float32 and out.shape == (1, 1, 20, 20)


@pytest.mark.parametrize("dims, shape, tile", [(2, (40, 36), 17), (3, (36, 34, 20), 17)])
def test_channels_last_fp32_matches_nchw(dims, shape, tile):
    model = _edsr(dims)
    x = _image(shape)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.inference_mode():
        reference = model(torch.from_numpy(x)[None])[0].numpy()
    fmt = torch.channels_last if dims == 2 else torch.channels_last_3d
    for t in (None, tile):
        result = predict_tiled(model, x, 2, tile=t, device="cpu", compile_model=False)
        assert np.abs(result - reference).max() <= 1e-5
    # The weights are now channels-last; their values (and so the model file) are unchanged.
    assert model.head.weight.is_contiguous(memory_format=fmt)
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


def test_bf16_prediction_is_close_and_float32():
    model = _edsr()
    x = _image((48, 48))
    fp32 = predict_tiled(model, x, 2, device="cpu", compile_model=False)
    bf16 = predict_tiled(model, x, 2, device="cpu", precision="bf16", compile_model=False)
    assert bf16.dtype == np.float32
    peak = float(np.abs(fp32).max())
    psnr = 10 * np.log10(peak**2 / float(np.mean((bf16 - fp32) ** 2)))
    assert 30 < psnr < 200, psnr  # close, yet really computed in bf16 (not silently fp32)
    # The old amp switch still works and overrides precision.
    assert np.array_equal(predict_tiled(model, x, 2, device="cpu", precision="bf16", amp=False,
                                        compile_model=False), fp32)
    with pytest.raises(SciSRError, match="precision 'half'"):
        predict_tiled(model, x, 2, device="cpu", precision="half")


def test_predict_array_passes_precision_and_remaining_calls(monkeypatch):
    from sciSR.infer import predict as predict_module

    calls = []
    real = predict_module.predict_tiled

    def spy(*args, **kwargs):
        calls.append((kwargs["precision"], kwargs["expected_calls"]))
        return real(*args, **kwargs)

    monkeypatch.setattr(predict_module, "predict_tiled", spy)
    volume = np.random.default_rng(0).random((10, 12, 3), dtype=np.float32)
    out, scale = predict_array(_edsr(), volume, 3, (2, 2, 1), device="cpu", precision="bf16", compile_model=False)
    assert out.shape == (20, 24, 3) and scale == (2, 2, 1)
    assert calls == [("bf16", 3), ("bf16", 2), ("bf16", 1)]
