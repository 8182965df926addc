"""Tiled prediction equals whole-image prediction for local networks; receptive fields are exact.

Measured on this suite's nets (CPU, float32, unit-range input): EDSR-like, RDN-like, 3D and zoo nets
(edsr-baseline, SwinIR with aligned windows, VDSR, 3D RDN) match the whole-image output to 2e-7–6e-7
(max abs, bound 1e-5). The channel-attention net (global average pooling, attention gain ×10) cannot be
tiled exactly: with tile 65 / overlap 64 on a 240×220 intensity ramp its deviation is 1.1e-4 (6e-6 with
the plain random init), printed by ``test_global_pooling_deviation_is_finite_and_reported``. Trained
RCAN-type nets deviate by amounts of their own: measure them.
"""

from __future__ import annotations

import importlib
import math
import threading

import numpy as np
import pytest
import torch
from torch import nn

from sciSR.errors import Cancelled, SciSRError
from sciSR.infer import tiled
from sciSR.infer.receptive_field import GLOBAL_POOLING_RADIUS, receptive_field_radius
from sciSR.infer.tiled import predict_tiled


def _conv(dims: int, cin: int, cout: int, kernel: int | tuple[int, ...] = 3, dilation: int = 1) -> nn.Module:
    kernel = (kernel,) * dims if isinstance(kernel, int) else kernel
    padding = tuple(dilation * (k // 2) for k in kernel)
    return (nn.Conv2d if dims == 2 else nn.Conv3d)(cin, cout, kernel, padding=padding, dilation=dilation)


def pixel_shuffle(x: torch.Tensor, scale: tuple[int, ...]) -> torch.Tensor:
    """(N, C·prod(s), *S) → (N, C, *S·s) with one factor per axis."""
    n, c, *spatial = x.shape
    d = len(scale)
    x = x.reshape(n, c // math.prod(scale), *scale, *spatial)
    order = [0, 1] + [p for a in range(d) for p in (2 + d + a, 2 + a)]
    return x.permute(order).reshape(n, c // math.prod(scale), *(m * s for m, s in zip(spatial, scale, strict=True)))


class Upsampler(nn.Module):
    def __init__(self, dims: int, feats: int, scale: tuple[int, ...]) -> None:
        super().__init__()
        self.scale = scale
        self.conv = _conv(dims, feats, feats * math.prod(scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return pixel_shuffle(self.conv(x), self.scale)


class ResBlock(nn.Module):
    def __init__(self, dims: int, feats: int, attention: str | None = None) -> None:
        super().__init__()
        self.body = nn.Sequential(_conv(dims, feats, feats), nn.ReLU(), _conv(dims, feats, feats))
        self.attention = attention
        if attention:
            self.squeeze = nn.Sequential(_conv(dims, feats, 4, 1), nn.ReLU(), _conv(dims, 4, feats, 1), nn.Sigmoid())
            self.pool = nn.AdaptiveAvgPool2d(1) if dims == 2 else nn.AdaptiveAvgPool3d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        if self.attention == "module":
            y = y * self.squeeze(self.pool(y))
        elif self.attention == "mean":  # the same, invisible to a module scan
            y = y * self.squeeze(y.mean(dim=tuple(range(2, y.ndim)), keepdim=True))
        return x + 0.5 * y


class EDSRLike(nn.Module):
    """Head conv, residual blocks, body conv + skip, pixel-shuffle upsampler, HR conv: r = 2·blocks + 4."""

    def __init__(self, dims: int, scale: tuple[int, ...], blocks: int = 2, feats: int = 16,
                 attention: str | None = None, in_channels: int = 1) -> None:
        super().__init__()
        self.in_channels, self.spatial_dims, self.scale = in_channels, dims, scale
        self.head = _conv(dims, in_channels, feats)
        self.body = nn.Sequential(*(ResBlock(dims, feats, attention) for _ in range(blocks)),
                                  _conv(dims, feats, feats))
        self.tail = nn.Sequential(Upsampler(dims, feats, scale), _conv(dims, feats, in_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.head(x)
        return self.tail(h + self.body(h))


class DenseBlock(nn.Module):
    def __init__(self, dims: int, feats: int, growth: int, layers: int) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Sequential(_conv(dims, feats + i * growth, growth), nn.ReLU()) for i in range(layers))
        self.fuse = _conv(dims, feats + layers * growth, feats, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for conv in self.convs:
            features.append(conv(torch.cat(features, 1)))
        return x + self.fuse(torch.cat(features, 1))


class RDNLike(nn.Module):
    """Shallow convs, residual dense blocks, global fusion: r = 2 + blocks·layers + 1 + 2 (tail)."""

    def __init__(self, dims: int, scale: tuple[int, ...], blocks: int = 2, layers: int = 3, feats: int = 12,
                 growth: int = 6) -> None:
        super().__init__()
        self.in_channels, self.spatial_dims, self.scale = 1, dims, scale
        self.sfe1, self.sfe2 = _conv(dims, 1, feats), _conv(dims, feats, feats)
        self.blocks = nn.ModuleList(DenseBlock(dims, feats, growth, layers) for _ in range(blocks))
        self.gff = nn.Sequential(_conv(dims, blocks * feats, feats, 1), _conv(dims, feats, feats))
        self.tail = nn.Sequential(Upsampler(dims, feats, scale), _conv(dims, feats, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f1 = self.sfe1(x)
        h = self.sfe2(f1)
        outs = []
        for block in self.blocks:
            h = block(h)
            outs.append(h)
        return self.tail(f1 + self.gff(torch.cat(outs, 1)))


class ConvStack(nn.Module):
    """``n`` convs with ReLU, the last feeding a pixel shuffle: radius ``n·dilation·(k//2)``."""

    def __init__(self, dims: int, scale: tuple[int, ...], n: int, kernel: int | tuple[int, ...] = 3,
                 dilation: int = 1, feats: int = 4) -> None:
        super().__init__()
        self.scale = scale
        layers: list[nn.Module] = [_conv(dims, 1, feats, kernel, dilation), nn.ReLU()]
        for _ in range(n - 2):
            layers += [_conv(dims, feats, feats, kernel, dilation), nn.ReLU()]
        layers.append(_conv(dims, feats, math.prod(scale), kernel, dilation))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return pixel_shuffle(self.body(x), self.scale)


def _seeded(factory, *args, **kwargs) -> nn.Module:
    torch.manual_seed(0)
    return factory(*args, **kwargs).eval()


def _image(shape: tuple[int, ...], channels: int = 1) -> np.ndarray:
    """Smooth structure plus noise, in [0, 1]."""
    rng = np.random.default_rng(1)
    grids = np.meshgrid(*(np.linspace(0, 3, n) for n in shape), indexing="ij")
    smooth = np.sin(sum(grids)) * 0.25 + 0.5
    noisy = smooth + 0.2 * rng.random((channels, *shape))
    return ((noisy - noisy.min()) / (noisy.max() - noisy.min())).astype(np.float32)


def _whole(model: nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return model(torch.from_numpy(x)[None])[0].numpy()


def _record_windows(model: nn.Module) -> list[tuple[int, ...]]:
    shapes: list[tuple[int, ...]] = []
    model.register_forward_pre_hook(lambda m, args: shapes.append(tuple(args[0].shape)))
    return shapes


# --- receptive field -------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [3, 11])
def test_conv_stack_radius_is_exact(n):
    model = _seeded(ConvStack, 2, (2, 2), n)
    assert receptive_field_radius(model, 2, (2, 2), 1) == ((n, n), False)


def test_anisotropic_and_dilated_radius():
    flat = _seeded(ConvStack, 3, (1, 1, 4), 4, kernel=(3, 3, 1))
    assert receptive_field_radius(flat, 3, (1, 1, 4), 1).radius == (4, 4, 0)
    dilated = _seeded(ConvStack, 2, (3, 2), 3, dilation=2)
    assert receptive_field_radius(dilated, 2, (3, 2), 1).radius == (6, 6)


def test_edsr_and_rdn_radius():
    assert receptive_field_radius(_seeded(EDSRLike, 2, (2, 3)), 2, (2, 3), 1) == ((8, 8), False)
    assert receptive_field_radius(_seeded(RDNLike, 2, (2, 2)), 2, (2, 2), 1) == ((11, 11), False)


def test_radius_is_cached_and_declarations_skip_measurement():
    model = _seeded(ConvStack, 2, (2, 2), 3)
    calls = _record_windows(model)
    first = receptive_field_radius(model, 2, (2, 2), 1)
    n_calls = len(calls)
    assert receptive_field_radius(model, 2, (2, 2), 1) == first and len(calls) == n_calls

    declared = _seeded(ConvStack, 2, (2, 2), 3)
    declared.receptive_field = 5
    calls = _record_windows(declared)
    assert receptive_field_radius(declared, 2, (2, 2), 1) == ((5, 5), False) and not calls

    flagged = _seeded(ConvStack, 2, (2, 2), 3)
    flagged.global_pooling = True
    assert receptive_field_radius(flagged, 2, (2, 2), 1) == ((GLOBAL_POOLING_RADIUS,) * 2, True)


@pytest.mark.parametrize("attention", ["module", "mean"])
def test_global_pooling_is_flagged(attention):
    model = _seeded(EDSRLike, 2, (2, 2), blocks=1, feats=8, attention=attention)
    rf = receptive_field_radius(model, 2, (2, 2), 1, global_cap=20, max_radius=64)
    assert rf == ((20, 20), True)


# --- tiled == whole --------------------------------------------------------------------------------

CASES = {
    # name: (factory, kwargs, dims, scale, image shape, tile, overlap)
    "edsr2d-x2-tile20": (EDSRLike, {}, 2, (2, 2), (61, 53), 20, None),
    "edsr2d-x2-tile17x23-minoverlap": (EDSRLike, {}, 2, (2, 2), (61, 53), (17, 23), 8),
    "edsr2d-x2x3-odd": (EDSRLike, {}, 2, (2, 3), (47, 39), 17, 8),
    "edsr2d-2ch": (EDSRLike, {"in_channels": 2}, 2, (2, 2), (45, 51), 18, 9),
    "rdn2d-x2": (RDNLike, {}, 2, (2, 2), (67, 59), 25, 11),
    "rdn2d-x3x2-tile30": (RDNLike, {}, 2, (3, 2), (70, 65), 30, 14),
    "edsr3d-1x1x4": (EDSRLike, {"blocks": 1, "feats": 6}, 3, (1, 1, 4), (29, 31, 27), 13, 6),
    "edsr3d-2x2x1": (EDSRLike, {"blocks": 1, "feats": 6}, 3, (2, 2, 1), (27, 29, 31), (13, 15, 14), 6),
    "rdn3d-2x2x2": (RDNLike, {"blocks": 1, "layers": 2, "feats": 6, "growth": 4}, 3, (2, 2, 2), (33, 35, 31),
                    15, 7),
}


@pytest.mark.parametrize("case", list(CASES))
def test_tiled_matches_whole(case):
    factory, kwargs, dims, scale, shape, tile, overlap = CASES[case]
    model = _seeded(factory, dims, scale, **kwargs)
    x = _image(shape, kwargs.get("in_channels", 1))
    reference = _whole(model, x)
    receptive_field_radius(model, dims, scale, x.shape[0])  # measured (and cached) before recording
    windows = _record_windows(model)
    result = predict_tiled(model, x, scale, tile=tile, overlap=overlap, device="cpu")
    assert result.dtype == np.float32 and result.shape == reference.shape
    assert all(w[2 + a] < shape[a] for w in windows for a in range(dims)), "not tiled in every axis"
    error = float(np.abs(result - reference).max())
    print(f"{case}: max |tiled - whole| = {error:.2e}")
    assert error <= 1e-5


ZOO = {
    # name: (options, spatial_dims, scale); small versions of the paper architectures
    "edsr-baseline": ({"n_blocks": 2, "features": 16}, 2, (2, 2)),
    "swinir": ({"embed_dim": 12, "depths": (2, 2), "num_heads": (2, 2), "window_size": 4, "upsample_features": 8},
               2, (2, 2)),
    "vdsr": ({"depth": 3, "features": 8}, 2, (2, 3)),
    "rdn": ({"n_blocks": 1, "n_layers": 2, "growth": 4, "features": 6}, 3, (1, 1, 2)),
}


@pytest.mark.parametrize("name", list(ZOO))
def test_zoo_models_tile_exactly(name):
    models = importlib.import_module("sciSR.models")
    if not hasattr(models, "create_model") or name not in {m["name"] for m in models.list_models()}:
        pytest.skip(f"sciSR.models has no {name} yet")
    options, dims, scale = ZOO[name]
    torch.manual_seed(0)
    model = models.create_model(name, scale=scale, spatial_dims=dims, in_channels=1, **options).eval()
    rf = receptive_field_radius(model, dims, scale, 1)
    assert not rf.global_pooling
    # Several windows per axis (fewer in 3D, to stay fast), the last shifted inward (for windowed nets
    # only as far as keeps starts on window multiples).
    full = 2 if dims == 2 else 1
    shape = tuple(full * (2 * r + 1) + 2 * r + 3 + 4 * a for a, r in enumerate(rf.radius))
    x = _image(shape)
    windows = _record_windows(model)
    result = predict_tiled(model, x, scale, tile=tuple(2 * r + 1 for r in rf.radius), overlap=rf.radius,
                           device="cpu")
    assert all(w[2 + a] < shape[a] for w in windows for a in range(dims))
    error = float(np.abs(result - _whole(model, x)).max())
    print(f"{name} r={rf.radius}: max |tiled - whole| = {error:.2e}")
    assert error <= 1e-5


def test_global_pooling_deviation_is_finite_and_reported():
    model = _seeded(EDSRLike, 2, (2, 2), blocks=2, feats=8, attention="module")
    with torch.no_grad():  # random attention barely gates; a 10× gain makes the global mean matter
        for block in model.body[:2]:
            for p in block.squeeze.parameters():
                p.mul_(10)
    shape = (240, 220)
    ramp = np.broadcast_to(np.linspace(0, 1, shape[1], dtype=np.float32), (1, *shape))
    x = (0.8 * ramp + 0.2 * np.random.default_rng(0).random((1, *shape))).astype(np.float32)
    with pytest.warns(UserWarning, match="global pooling"):
        result = predict_tiled(model, x, 2, tile=2 * GLOBAL_POOLING_RADIUS + 1, device="cpu")
    deviation = float(np.abs(result - _whole(model, x)).max())
    print(f"channel attention, tile {2 * GLOBAL_POOLING_RADIUS + 1}, overlap {2 * GLOBAL_POOLING_RADIUS}: "
          f"max |tiled - whole| = {deviation:.2e}")
    assert np.isfinite(result).all() and 1e-6 < deviation < 0.05
    # A tile covering the image runs it whole: exact.
    whole = predict_tiled(model, x, 2, tile=x.shape[1:], device="cpu")
    assert np.abs(whole - _whole(model, x)).max() <= 1e-6


def test_small_images_and_short_axes():
    model = _seeded(EDSRLike, 2, (2, 2))
    for shape, tile in [((5, 7), 64), ((1, 9), None), ((6, 90), 20)]:
        x = _image(shape)
        result = predict_tiled(model, x, 2, tile=tile, device="cpu")
        assert np.abs(result - _whole(model, x)).max() <= 1e-5, shape


def test_window_starts_shift_inward_on_multiples():
    assert tiled._window_starts(95, 28, 60, 1) == [0, 28, 35]
    assert tiled._window_starts(95, 28, 60, 4) == [0, 28, 36]
    assert tiled._window_starts(60, 28, 60, 4) == [0]


def test_mixed_precision_on_cpu_when_asked():
    model = _seeded(EDSRLike, 2, (2, 2))
    x = _image((50, 44))
    result = predict_tiled(model, x, 2, tile=20, device="cpu", amp=True)
    assert result.dtype == np.float32
    assert np.abs(result - _whole(model, x)).max() < 0.05  # bf16 precision, not seams


# --- automatic tile and memory ----------------------------------------------------------------------

def test_automatic_tile_runs_small_images_whole():
    model = _seeded(EDSRLike, 2, (2, 2))
    windows = _record_windows(model)
    x = _image((40, 33))
    result = predict_tiled(model, x, 2, device="cpu")
    assert windows[-1] == (1, 1, 40, 33)
    assert np.abs(result - _whole(model, x)).max() <= 1e-6


def test_automatic_tile_follows_the_memory_budget(monkeypatch):
    model = _seeded(EDSRLike, 2, (2, 2))
    per_voxel = tiled._bytes_per_voxel(model, torch.device("cpu"), torch.float32, None, 1, (2, 2))
    assert per_voxel > 4 * 16  # at least the 16 features of the body
    budget = per_voxel * 3 * 64 * 64 / tiled.CPU_MEMORY_FRACTION  # three 64² windows per forward
    monkeypatch.setattr(tiled, "_available_memory", lambda device: budget)
    windows = _record_windows(model)
    x = _image((150, 140))
    result = predict_tiled(model, x, 2, batch_size=3, device="cpu")
    assert max(w[0] * w[2] * w[3] for w in windows) <= 3 * 64 * 64 and len(windows) > 1
    assert np.abs(result - _whole(model, x)).max() <= 1e-5


class _OutOfMemoryAbove(nn.Module):
    """Raises CUDA's OOM error when a forward exceeds ``limit`` input voxels, like a small GPU."""

    def __init__(self, inner: nn.Module, limit: int) -> None:
        super().__init__()
        self.inner, self.limit, self.sizes = inner, limit, []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.sizes.append(tuple(x.shape))
        if x.numel() > self.limit:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return self.inner(x)


def test_out_of_memory_halves_batch_then_tile():
    inner = _seeded(EDSRLike, 2, (2, 2))
    model = _OutOfMemoryAbove(inner, limit=40 * 40)
    model.receptive_field = 8
    x = _image((90, 80))
    fractions: list[float] = []
    result = predict_tiled(model, x, 2, tile=40, overlap=8, batch_size=4, device="cpu", progress=fractions.append)
    assert np.abs(result - _whole(inner, x)).max() <= 1e-5
    assert model.sizes[-1][0] == 1 and model.sizes[-1][2] * model.sizes[-1][3] <= 40 * 40
    assert fractions == sorted(fractions) and fractions[-1] == 1.0

    hopeless = _OutOfMemoryAbove(inner, limit=10)
    hopeless.receptive_field = 8
    with pytest.raises(SciSRError, match="out of memory even with tile"):
        predict_tiled(hopeless, x, 2, tile=40, device="cpu")


# --- progress, cancel, memmap, errors -------------------------------------------------------------

def test_progress_increases_to_one():
    model = _seeded(ConvStack, 2, (2, 2), 3)
    fractions: list[float] = []
    predict_tiled(model, _image((50, 50)), 2, tile=10, batch_size=3, device="cpu", progress=fractions.append)
    # r = 3, overlap 6: windows of 22 at 0, 10, 20, 28 per axis; 16 windows, 3 per forward → 6 reports.
    assert len(fractions) == 6 and fractions == sorted(fractions) and fractions[-1] == 1.0


def test_cancel_raises_between_batches():
    model = _seeded(ConvStack, 2, (2, 2), 3)
    event = threading.Event()
    event.set()
    with pytest.raises(Cancelled):
        predict_tiled(model, _image((50, 50)), 2, tile=10, device="cpu", cancel=event)

    later = threading.Event()
    seen: list[float] = []

    def progress(fraction: float) -> None:
        seen.append(fraction)
        later.set()

    with pytest.raises(Cancelled):
        predict_tiled(model, _image((50, 50)), 2, tile=10, device="cpu", cancel=later, progress=progress)
    assert len(seen) == 1


def test_memmap_output(tmp_path):
    model = _seeded(EDSRLike, 2, (2, 3))
    x = _image((41, 37))
    out = np.memmap(tmp_path / "out.f32", dtype=np.float32, mode="w+", shape=(1, 82, 111))
    out[:] = 7.0  # stale content is overwritten, not added to
    result = predict_tiled(model, x, (2, 3), tile=17, overlap=8, device="cpu", out=out)
    assert result is out
    out.flush()
    again = np.memmap(tmp_path / "out.f32", dtype=np.float32, mode="r", shape=(1, 82, 111))
    assert np.abs(again - _whole(model, x)).max() <= 1e-5


def test_argument_errors():
    model = _seeded(EDSRLike, 2, (2, 2))
    x = _image((60, 60))
    with pytest.raises(SciSRError, match="smaller than the model's receptive field"):
        predict_tiled(model, x, 2, tile=16, device="cpu")
    with pytest.raises(SciSRError, match="overlap"):
        predict_tiled(model, x, 2, tile=20, overlap=7, device="cpu")
    with pytest.raises(SciSRError, match="channel"):
        predict_tiled(model, _image((60, 60), 2), 2, device="cpu")
    with pytest.raises(SciSRError, match="scale"):
        predict_tiled(model, x, 3, device="cpu")
    with pytest.raises(SciSRError, match="out has shape"):
        predict_tiled(model, x, 2, device="cpu", out=np.zeros((1, 60, 60), np.float32))


def test_training_flag_is_restored():
    model = _seeded(EDSRLike, 2, (2, 2)).train()
    predict_tiled(model, _image((20, 20)), 2, device="cpu")
    assert model.training
