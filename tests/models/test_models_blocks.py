"""Shared blocks: per-axis pixel shuffle, upsampling stages, transposed-convolution geometry, FOV interpolation."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sciSR.geometry import source_coordinates
from sciSR.models import create_model
from sciSR.models.blocks import (
    DenseStack,
    PixelShuffleND,
    Upsampler,
    init_bilinear_,
    interpolate_fov,
    pixel_shuffle_nd,
    symmetric_pad_to_multiple,
    transposed_conv_nd,
    upsample_stages,
)


def _reference_shuffle(x: np.ndarray, scale: tuple[int, ...]) -> np.ndarray:
    """Loop definition: out[c, n·s + r] = in[c·∏s + flat(r), n] with r in C order."""
    b, cs, *spatial = x.shape
    c = cs // int(np.prod(scale))
    out = np.zeros((b, c, *(n * s for n, s in zip(spatial, scale, strict=True))), x.dtype)
    for ci in range(c):
        for r in np.ndindex(*scale):
            channel = ci * int(np.prod(scale)) + int(np.ravel_multi_index(r, scale))
            index = (slice(None), ci, *(slice(ri, None, s) for ri, s in zip(r, scale, strict=True)))
            out[index] = x[:, channel]
    return out


def test_pixel_shuffle_matches_torch_for_equal_2d_factors() -> None:
    x = torch.rand(2, 18, 4, 5)
    assert torch.equal(pixel_shuffle_nd(x, (3, 3)), F.pixel_shuffle(x, 3))


@pytest.mark.parametrize("scale", [(2, 3), (1, 4), (1, 1, 4), (2, 1, 3), (3, 3, 3), (1, 1, 1)])
def test_pixel_shuffle_per_axis(scale: tuple[int, ...]) -> None:
    spatial = (3, 4, 2)[: len(scale)]
    x = torch.rand(2, 2 * int(np.prod(scale)), *spatial)
    out = PixelShuffleND(scale)(x)
    assert out.shape == (2, 2, *(n * s for n, s in zip(spatial, scale, strict=True)))
    np.testing.assert_array_equal(out.numpy(), _reference_shuffle(x.numpy(), scale))


def test_pixel_shuffle_keeps_channels_last_values() -> None:
    x = torch.rand(1, 8, 3, 5)
    assert torch.equal(pixel_shuffle_nd(x.to(memory_format=torch.channels_last), (2, 4)), pixel_shuffle_nd(x, (2, 4)))


@pytest.mark.parametrize(
    ("scale", "stages"),
    [
        ((2, 2), [(2, 2)]),
        ((4, 4), [(2, 2), (2, 2)]),
        ((8, 8, 8), [(2, 2, 2)] * 3),
        ((1, 1, 4), [(1, 1, 2), (1, 1, 2)]),
        ((4, 2), [(2, 2), (2, 1)]),
        ((3, 3), [(3, 3)]),
        ((2, 3), [(2, 3)]),
        ((1, 1), []),
    ],
)
def test_upsample_stages(scale, stages) -> None:
    assert upsample_stages(scale) == stages


@pytest.mark.parametrize("mode", ["pixelshuffle", "deconv", "nearest"])
@pytest.mark.parametrize("scale", [(2, 2), (3, 1), (4, 3), (5, 2)])
def test_upsampler_modes_multiply_sizes(mode: str, scale) -> None:
    up = Upsampler(2, 4, scale, mode=mode)
    assert up(torch.rand(1, 4, 3, 5)).shape == (1, 4, 3 * scale[0], 5 * scale[1])


@pytest.mark.parametrize("kernel", [1, 3, 4, 9])
@pytest.mark.parametrize("scale", [(1, 2, 3), (4, 5, 9), (10, 1, 2)])
def test_transposed_conv_multiplies_each_axis(kernel: int, scale) -> None:
    deconv = transposed_conv_nd(3, 2, 3, kernel, scale)
    assert deconv(torch.rand(1, 2, 3, 2, 4)).shape == (1, 3, 3 * scale[0], 2 * scale[1], 4 * scale[2])
    # Every output voxel is reached by some input voxel (no holes when the factor exceeds the kernel).
    ones = deconv.__class__(2, 3, deconv.kernel_size, stride=deconv.stride, padding=deconv.padding,
                            output_padding=deconv.output_padding, bias=False)
    torch.nn.init.ones_(ones.weight)
    assert (ones(torch.ones(1, 2, 3, 2, 4)) > 0).all()


def _cubic_resample_axis(values: np.ndarray, coords: np.ndarray, a: float = -0.75) -> np.ndarray:
    """Keys cubic convolution along axis 0 at fractional ``coords``, border samples repeated (torch bicubic)."""
    n = values.shape[0]
    base = np.floor(coords).astype(int)
    t = coords - base
    out = np.zeros((len(coords), *values.shape[1:]))
    for offset in (-1, 0, 1, 2):
        d = np.abs(t - offset)
        w = np.where(d <= 1, (a + 2) * d**3 - (a + 3) * d**2 + 1,
                     np.where(d < 2, a * d**3 - 5 * a * d**2 + 8 * a * d - 4 * a, 0.0))
        out += w.reshape(-1, *([1] * (values.ndim - 1))) * values[np.clip(base + offset, 0, n - 1)]
    return out


def test_interpolation_is_on_the_fov_grid_2d() -> None:
    # New sample i' must read old position (i' + 0.5)/s - 0.5 (sciSR.geometry.source_coordinates).
    n, scale = (9, 7), (3, 2)
    image = np.random.default_rng(0).random(n)
    out = interpolate_fov(torch.tensor(image)[None, None], scale)[0, 0].numpy()
    rows = _cubic_resample_axis(image, source_coordinates(n[0] * scale[0], scale[0]))
    expected = _cubic_resample_axis(rows.T, source_coordinates(n[1] * scale[1], scale[1])).T
    np.testing.assert_allclose(out, expected, atol=1e-12)


def test_interpolation_is_on_the_fov_grid_3d_anisotropic() -> None:
    n, scale = (4, 5, 3), (1, 2, 4)
    grid = np.meshgrid(*(np.arange(k) for k in n), indexing="ij")
    ramp = torch.tensor(grid[0] + 2.0 * grid[1] - 3.0 * grid[2], dtype=torch.float64)[None, None]
    out = interpolate_fov(ramp, scale)[0, 0].numpy()
    src = [source_coordinates(k * s, s) for k, s in zip(n, scale, strict=True)]
    expected = src[0][:, None, None] + 2.0 * src[1][None, :, None] - 3.0 * src[2][None, None, :]
    # Trilinear is exact for a ramp inside [0, n−1] (outside, torch repeats the border sample).
    inside = np.ix_(*((c >= 0) & (c <= k - 1) for c, k in zip(src, n, strict=True)))
    np.testing.assert_allclose(out[inside], expected[inside], atol=1e-12)
    assert out.shape == (4, 10, 12)


def test_pre_upsampling_models_interpolate_on_the_fov_grid(tiny: dict) -> None:
    model = create_model("vdsr", scale=(2, 3), **tiny["vdsr"])
    x = torch.rand(1, 1, 5, 6)
    assert torch.equal(model.upsample(x), interpolate_fov(x, (2, 3)))
    # Zero body → VDSR returns exactly the interpolated input (global residual).
    torch.nn.init.zeros_(model.body[-1].weight)
    torch.nn.init.zeros_(model.body[-1].bias)
    assert torch.allclose(model(x), interpolate_fov(x, (2, 3)))


def test_bilinear_deconvolution_matches_fov_linear_interpolation() -> None:
    deconv = transposed_conv_nd(2, 1, 1, 4, (2, 1), groups=1, bias=False)
    init_bilinear_(deconv, (2, 1))
    x = torch.rand(1, 1, 6, 5, dtype=torch.float64)
    out = deconv.double()(x)
    reference = F.interpolate(x, scale_factor=(2.0, 1.0), mode="bilinear", align_corners=False)
    # Equal away from the first/last output row (the deconvolution zero-pads, interpolation repeats).
    assert torch.allclose(out[..., 1:-1, :], reference[..., 1:-1, :])


def test_symmetric_pad_mirrors_and_handles_short_axes() -> None:
    x = torch.arange(3.0).reshape(1, 1, 3, 1)
    padded = symmetric_pad_to_multiple(x, 8)
    assert padded.shape == (1, 1, 8, 8)
    assert padded[0, 0, :, 0].tolist() == [0, 1, 2, 2, 1, 0, 0, 1]
    assert torch.equal(symmetric_pad_to_multiple(x, 1), x)


def test_dense_stack_concatenates_input_then_layers() -> None:
    stack = DenseStack(3, 4, 2, 3, torch.nn.ReLU)
    x = torch.rand(1, 4, 2, 3, 2)
    out = stack(x)
    assert out.shape == (1, 10, 2, 3, 2) and torch.equal(out[:, :4], x)


def test_swin_windows_round_trip_and_shift_mask() -> None:
    from sciSR.models.swinir import relative_position_index, shifted_window_mask, window_partition, window_reverse

    x = torch.rand(2, 4, 8, 6, 3)
    windows = window_partition(x, 2)
    assert windows.shape == (2 * 2 * 4 * 3, 8, 3)
    assert torch.equal(window_reverse(windows, 2, x), x)
    # 8×8 tokens, window 4, shift 2: the first window is one region, the last one mixes four border regions.
    mask = shifted_window_mask(torch.zeros(1, 8, 8, 1), 4, 2)
    assert mask.shape == (4, 16, 16) and not mask[0].any()
    rows, cols = torch.arange(16) // 4, torch.arange(16) % 4
    region = (rows >= 2).long() * 3 + (cols >= 2).long()
    assert torch.equal(mask[3] != 0, region[:, None] != region[None, :])
    # Relative offsets: index (dh + w − 1)·(2w − 1) + (dw + w − 1), as in the Swin papers.
    index = relative_position_index(3, 2)
    assert index.shape == (9, 9) and index[0, 8] == (0 - 2 + 2) * 5 + (0 - 2 + 2) and index[8, 0] == 4 * 5 + 4


def test_transposed_conv_on_inputs_smaller_than_its_kernel_matches_the_plain_layer() -> None:
    layer = transposed_conv_nd(2, 4, 3, 9, (2, 3))
    plain = torch.nn.ConvTranspose2d(4, 3, layer.kernel_size, layer.stride, layer.padding, layer.output_padding)
    plain.load_state_dict(layer.state_dict())
    x = torch.rand(2, 4, 3, 2, requires_grad=True)
    x_plain = x.detach().clone().requires_grad_(True)
    out, ref = layer(x), plain(x_plain)
    assert out.shape == ref.shape == (2, 3, 6, 6)
    torch.testing.assert_close(out, ref)
    out.square().sum().backward()
    ref.square().sum().backward()
    torch.testing.assert_close(x.grad, x_plain.grad)
    torch.testing.assert_close(layer.weight.grad, plain.weight.grad)


def test_3d_deconvolution_backward_on_a_tiny_patch_leaves_the_heap_intact() -> None:
    # oneDNN's 3D weight gradient with an input smaller than the kernel corrupted the heap (an abort, a hang or a
    # segfault at exit, often in a later test); glibc's checking allocator catches it in the same process.
    script = (
        "import torch\n"
        "from sciSR.models import create_model\n"
        "m = create_model('fsrcnn', scale=2, spatial_dims=3, in_channels=2, features=8, shrink=4, mapping_layers=2)\n"
        "m(torch.rand(2, 2, 3, 2, 3, requires_grad=True)).square().mean().backward()\n"
        "print('ok')\n"
    )
    env = dict(os.environ)
    debug = Path("/lib/x86_64-linux-gnu/libc_malloc_debug.so.0")
    if debug.exists():
        env.update(LD_PRELOAD=str(debug), GLIBC_TUNABLES="glibc.malloc.check=3")
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
