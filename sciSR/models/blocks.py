"""Building blocks shared by the model zoo.

Every block takes ``spatial_dims`` and builds its layers through the MONAI factories
(``Conv[Conv.CONV, spatial_dims]``, ``Norm[Norm.BATCH, spatial_dims]``), so one definition serves 2D images
``(B, C, H, W)`` and 3D volumes ``(B, C, D, H, W)``. Scale factors are always one integer per spatial
axis, so anisotropic factors such as ``(1, 1, 4)`` work everywhere.

Shapes are written with ``*S`` for the spatial axes and ``s`` for the per-axis scale factors.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from monai.networks.layers.factories import Conv, Norm
from torch import nn

from sciSR.errors import SciSRError

ActFactory = Callable[[], nn.Module]


def conv_nd(
    spatial_dims: int,
    in_channels: int,
    out_channels: int,
    kernel_size: int = 3,
    *,
    stride: int = 1,
    padding: int | None = None,
    bias: bool = True,
) -> nn.Module:
    """A convolution whose odd kernel keeps the spatial size (``padding = kernel_size // 2``).

    Parameters
    ----------
    spatial_dims : int
        2 or 3.
    in_channels, out_channels : int
        Channel counts.
    kernel_size : int
        Cubic kernel edge.
    stride : int
        Stride on every axis (discriminators downsample with 2).
    padding : int, optional
        Overrides the size-keeping default (4×4 stride-2 convolutions use 1).
    bias : bool
        Add a bias (off before batch norm, whose shift makes it redundant).
    """
    pad = kernel_size // 2 if padding is None else padding
    return Conv[Conv.CONV, spatial_dims](in_channels, out_channels, kernel_size, stride=stride, padding=pad, bias=bias)


def batch_norm_nd(spatial_dims: int, channels: int) -> nn.Module:
    """``BatchNorm2d``/``BatchNorm3d`` from the MONAI factory."""
    return Norm[Norm.BATCH, spatial_dims](channels)


def pixel_shuffle_nd(x: torch.Tensor, scale: Sequence[int]) -> torch.Tensor:
    """Sub-pixel shuffle with one factor per spatial axis (2D or 3D, factors of 1 allowed).

    Parameters
    ----------
    x : torch.Tensor
        ``(B, C·∏s, *S)``; the channel axis is read as ``(C, s_0, s_1[, s_2])`` in C order, which for
        equal 2D factors is exactly :func:`torch.nn.functional.pixel_shuffle`.
    scale : sequence of int
        One factor per spatial axis.

    Returns
    -------
    torch.Tensor
        ``(B, C, *S·s)``. Sub-pixel ``r`` of input voxel ``n`` lands at ``s·n + r``, so the output
        block of every input voxel covers exactly that voxel's field of view.
    """
    scale = tuple(int(s) for s in scale)
    dims = len(scale)
    if dims == 2 and scale[0] == scale[1]:
        # The native kernel keeps a channels-last input channels-last (the generic permute below returns
        # NCHW, which the next convolution reorders again): EDSR 16×64 ×2 at 192², 8 % of the forward.
        return F.pixel_shuffle(x, scale[0])
    batch, channels = x.shape[0], x.shape[1]
    spatial = x.shape[2:]
    layout = torch.channels_last if dims == 2 else torch.channels_last_3d
    if x.is_contiguous(memory_format=layout) and not x.is_contiguous():
        # One gather from the channels-last memory into a channels-last result, instead of a copy to NCDHW,
        # the shuffle's copy and the next convolution's reorder (EDSR 8×32 ×2 at 64³: 15 % of the forward).
        x = x.permute(0, *range(2, 2 + dims), 1).reshape(batch, *spatial, channels // math.prod(scale), *scale)
        order = [0]
        for axis in range(dims):
            order += [1 + axis, 2 + dims + axis]
        x = x.permute(*order, 1 + dims).reshape(batch, *(n * s for n, s in zip(spatial, scale, strict=True)),
                                                channels // math.prod(scale))
        return x.permute(0, 1 + dims, *range(1, 1 + dims))
    # reshape/permute only (no Python arithmetic on sizes beyond what the tracer records), so
    # torch.jit.trace and ONNX export keep every size dynamic.
    x = x.reshape(batch, channels // math.prod(scale), *scale, *spatial)
    order = [0, 1]
    for axis in range(dims):
        order += [2 + dims + axis, 2 + axis]
    x = x.permute(order)
    return x.reshape(batch, channels // math.prod(scale), *(n * s for n, s in zip(spatial, scale, strict=True)))


class PixelShuffleND(nn.Module):
    """Module form of :func:`pixel_shuffle_nd`: ``(B, C·∏s, *S) → (B, C, *S·s)``."""

    def __init__(self, scale: Sequence[int]) -> None:
        super().__init__()
        self.scale = tuple(int(s) for s in scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return pixel_shuffle_nd(x, self.scale)

    def extra_repr(self) -> str:
        return f"scale={self.scale}"


def upsample_stages(scale: Sequence[int]) -> list[tuple[int, ...]]:
    """Split per-axis factors into upsampling stages the way EDSR/RCAN/RDN/ESRGAN tails do.

    Powers of two (per axis, 1 included) become successive ×2 stages on the axes that still need
    them — ``(4, 4)`` → ``[(2, 2), (2, 2)]``, ``(1, 1, 4)`` → ``[(1, 1, 2), (1, 1, 2)]``,
    ``(4, 2)`` → ``[(2, 2), (2, 1)]`` — so a paper's ×4 tail has the paper's two ×2 stages; any other
    factor (3, 5, ``(2, 3)``) is one stage with the full per-axis factor. All ones → no stage.
    """
    scale = tuple(int(s) for s in scale)
    if all(s & (s - 1) == 0 for s in scale):
        levels = [s.bit_length() - 1 for s in scale]
        return [tuple(2 if level > k else 1 for level in levels) for k in range(max(levels))]
    return [scale]


def is_power_of_two_scale(scale: Sequence[int]) -> bool:
    """True when every factor is a power of two (1 included) and at least one exceeds 1."""
    return all(int(s) & (int(s) - 1) == 0 for s in scale) and max(scale) > 1


def transposed_conv_nd(
    spatial_dims: int,
    in_channels: int,
    out_channels: int,
    kernel_size: int | Sequence[int],
    scale: Sequence[int],
    *,
    groups: int = 1,
    bias: bool = True,
) -> nn.Module:
    """A transposed convolution that multiplies each spatial size exactly by its factor.

    Parameters
    ----------
    spatial_dims : int
        2 or 3.
    in_channels, out_channels : int
        Channel counts.
    kernel_size : int or sequence of int
        Kernel edge per axis before adjustment: an axis whose factor exceeds the kernel gets
        ``kernel = factor`` (a smaller kernel would leave output samples that no input reaches), and
        a factor-1 axis with an even kernel gets ``kernel − 1`` (an even kernel cannot keep the size
        centred at stride 1).
    scale : sequence of int
        Stride (= upsampling factor) per axis.
    groups : int
        Channel groups (LapSRN's image branch upsamples each channel on its own).
    bias : bool
        Add a bias.

    Notes
    -----
    With ``out = (n − 1)·s − 2p + k + op`` the padding is ``p = ⌈(k − s)/2⌉`` (≥ 0) and the output
    padding ``op = s − k + 2p`` (< s), giving ``out = n·s``. When ``k − s`` is even the kernel is
    centred on the field of view of its input voxel (``s·n + (s−1)/2``); otherwise it sits half an
    output voxel off, which training absorbs into the learned kernel.
    """
    kernels = [int(kernel_size)] * spatial_dims if isinstance(kernel_size, int) else [int(k) for k in kernel_size]
    ks, pads, out_pads = [], [], []
    for k, s in zip(kernels, scale, strict=True):
        k = max(k, s)
        if s == 1 and k % 2 == 0:
            k -= 1
        p = max(0, -((s - k) // 2))
        ks.append(k)
        pads.append(p)
        out_pads.append(s - k + 2 * p)
    base = Conv[Conv.CONVTRANS, spatial_dims]
    return _SMALL_INPUT_SAFE[base](
        in_channels, out_channels, tuple(ks), stride=tuple(scale), padding=tuple(pads),
        output_padding=tuple(out_pads), groups=groups, bias=bias,
    )


class _SmallInputSafe:
    """Mixin for ``nn.ConvTranspose{2,3}d``: inputs smaller than the kernel are zero-padded first.

    oneDNN (torch's CPU backend, torch 2.13) corrupts the heap in the weight gradient of a 3D transposed
    convolution whose input is smaller than its kernel (FSRCNN's 9-tap deconvolution on a 3 × 2 × 3 patch:
    "free(): invalid next size", then an abort or a hang). Zero rows add nothing to a transposed
    convolution, so padding the input by ``m`` voxels and cropping ``m·s`` from each output edge gives the
    same result exactly, with inputs the backend handles. The weights and their names are unchanged;
    inference (no gradients) takes the plain path.
    """

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        spatial = x.shape[2:]
        # Only weight gradients on the CPU are affected; traced and compiled graphs keep one code path.
        if (not torch.is_grad_enabled() or x.device.type != "cpu" or torch.jit.is_tracing()
                or torch.compiler.is_compiling()
                or all(n >= k for n, k in zip(spatial, self.kernel_size, strict=True))):
            return super().forward(x, output_size)
        margins = [max(0, -(-(k - n) // 2)) for n, k in zip(spatial, self.kernel_size, strict=True)]
        pad = [v for m in reversed(margins) for v in (m, m)]
        out = super().forward(F.pad(x, pad), None)
        crop = tuple(slice(m * s, out.shape[2 + i] - m * s)
                     for i, (m, s) in enumerate(zip(margins, self.stride, strict=True)))
        return out[(slice(None), slice(None), *crop)]


_SMALL_INPUT_SAFE = {base: type(base.__name__, (_SmallInputSafe, base), {"__module__": base.__module__})
                     for base in (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)}


def init_bilinear_(deconv: nn.Module, scale: Sequence[int]) -> None:
    """Fill a (grouped, one-channel-per-group) transposed convolution with a separable bilinear kernel.

    With the geometry of :func:`transposed_conv_nd` (kernel 4 for ×2, 1-tap identity kernel 3 for ×1)
    the layer then reproduces linear interpolation on the FOV-preserving grid: new sample ``2n`` is
    ``0.75·x[n] + 0.25·x[n−1]``, i.e. old position ``n − 0.25``.
    """
    weight = deconv.weight
    taps = []
    for k, s in zip(weight.shape[2:], scale, strict=True):
        centre = (k - 1) / 2
        taps.append(torch.tensor([max(0.0, 1 - abs(i - centre) / s) for i in range(k)], dtype=weight.dtype))
    kernel = taps[0]
    for t in taps[1:]:
        kernel = kernel[..., None] * t
    with torch.no_grad():
        weight.zero_()
        for c in range(weight.shape[0]):
            weight[c, c % weight.shape[1]].copy_(kernel)
        if deconv.bias is not None:
            deconv.bias.zero_()


def interpolate_fov(x: torch.Tensor, scale: Sequence[int], *, linear: bool = False) -> torch.Tensor:
    """Cubic (2D) or trilinear (3D) interpolation on the FOV-preserving grid; bilinear in 2D if ``linear``.

    Parameters
    ----------
    x : torch.Tensor
        ``(B, C, *S)``.
    scale : sequence of int
        One factor per spatial axis.
    linear : bool
        Bilinear instead of bicubic in 2D (no overshoot; what Oktay et al. feed their residual).

    Returns
    -------
    torch.Tensor
        ``(B, C, *S·s)``; new sample ``i'`` reads old position ``(i' + 0.5)/s − 0.5`` on every axis
        (``align_corners=False``), the grid of :func:`sciSR.geometry.source_coordinates`.

    Notes
    -----
    2D uses torch's bicubic (Keys cubic convolution, ``a = −0.75``, border samples repeated), which is
    what the pre-upsampling papers fed their networks up to the kernel constant; torch has no tricubic
    mode, so 3D uses trilinear. Factors are passed as ``scale_factor`` so traced/exported graphs keep the
    input size dynamic.
    """
    mode = "trilinear" if x.ndim == 5 else ("bilinear" if linear else "bicubic")
    return F.interpolate(x, scale_factor=tuple(float(s) for s in scale), mode=mode, align_corners=False)


class FOVInterpolate(nn.Module):
    """Module form of :func:`interpolate_fov`: ``(B, C, *S) → (B, C, *S·s)``."""

    def __init__(self, scale: Sequence[int]) -> None:
        super().__init__()
        self.scale = tuple(int(s) for s in scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return interpolate_fov(x, self.scale)

    def extra_repr(self) -> str:
        return f"scale={self.scale}"


def symmetric_pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad the end of every spatial axis up to a multiple by mirroring about the last voxel's edge.

    Parameters
    ----------
    x : torch.Tensor
        ``(B, C, *S)``.
    multiple : int
        Target multiple per axis.

    Returns
    -------
    torch.Tensor
        ``(B, C, *S')`` with ``S' = ⌈S / multiple⌉·multiple``. Mirroring repeats the edge sample (the
        same symmetric padding the SwinIR authors use at test time); built from an index gather, so it
        works for any size (even an axis shorter than the pad, or of length 1) and stays traceable.
    """
    for dim in range(2, x.ndim):
        n = x.shape[dim]
        total = n + (-n) % multiple
        index = torch.arange(total, device=x.device)
        index = torch.remainder(index, 2 * n)
        index = torch.where(index >= n, 2 * n - 1 - index, index)
        x = x.index_select(dim, index)
    return x


class Upsampler(nn.Sequential):
    """Post-upsampling tail: one stage per entry of :func:`upsample_stages`.

    Parameters
    ----------
    spatial_dims : int
        2 or 3.
    channels : int
        Feature channels in and out of every stage.
    scale : sequence of int
        One factor per spatial axis.
    mode : str
        ``"pixelshuffle"`` (conv to ``channels·∏s`` then sub-pixel shuffle; ESPCN/EDSR/RCAN/RDN/SwinIR),
        ``"deconv"`` (transposed convolution of ``kernel_size``; SRDenseNet) or ``"nearest"``
        (nearest-neighbour repeat then conv; ESRGAN).
    act : callable, optional
        Builds the activation appended to every stage (SRResNet: PReLU, ESRGAN: LeakyReLU).
    kernel_size : int
        Convolution / transposed-convolution kernel.

    Shapes
    ------
    ``(B, channels, *S) → (B, channels, *S·s)``.
    """

    def __init__(
        self,
        spatial_dims: int,
        channels: int,
        scale: Sequence[int],
        *,
        mode: str = "pixelshuffle",
        act: ActFactory | None = None,
        kernel_size: int = 3,
    ) -> None:
        layers: list[nn.Module] = []
        for stage in upsample_stages(scale):
            if mode == "pixelshuffle":
                layers += [conv_nd(spatial_dims, channels, channels * math.prod(stage), kernel_size),
                           PixelShuffleND(stage)]
            elif mode == "deconv":
                layers.append(transposed_conv_nd(spatial_dims, channels, channels, kernel_size, stage))
            elif mode == "nearest":
                layers += [nn.Upsample(scale_factor=tuple(float(s) for s in stage), mode="nearest"),
                           conv_nd(spatial_dims, channels, channels, kernel_size)]
            else:
                raise SciSRError(f"upsampler mode must be pixelshuffle, deconv or nearest, got {mode!r}")
            if act is not None:
                layers.append(act())
        super().__init__(*layers)


class ChannelAttention(nn.Module):
    """Squeeze-and-excitation channel attention (RCAN): global mean → 1×1 down → ReLU → 1×1 up → sigmoid.

    The global mean makes every output voxel depend on the whole input, which is why RCAN cannot be
    tiled exactly.

    Shapes
    ------
    ``(B, C, *S) → (B, C, *S)``.
    """

    def __init__(self, spatial_dims: int, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.squeeze = nn.Sequential(
            conv_nd(spatial_dims, channels, channels // reduction, 1),
            nn.ReLU(),
            conv_nd(spatial_dims, channels // reduction, channels, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = x.mean(dim=tuple(range(2, x.ndim)), keepdim=True)
        return x * self.squeeze(pooled)


def _relu_in_place() -> nn.Module:
    """ReLU on the preceding convolution's fresh output, without a full-size temporary (autograd-safe)."""
    return nn.ReLU(inplace=True)


class ResidualBlock(nn.Module):
    """``x + res_scale · body(x)`` with ``body = conv → [BN] → act → conv → [BN] → [attention]``.

    One block serves SRResNet (batch norm, PReLU), EDSR (no norm, ReLU, residual scaling 0.1 for the
    wide model), RCAN's RCAB (channel attention appended) and SAN's residual blocks.

    Parameters
    ----------
    spatial_dims : int
        2 or 3.
    channels : int
        Feature channels.
    act : callable
        Builds the activation between the convolutions.
    batch_norm : bool
        Batch norm after each convolution (SRResNet); the convolutions then carry no bias.
    res_scale : float
        Multiplier of the residual branch (EDSR uses 0.1 to stabilise its 256-channel training).
    attention : nn.Module, optional
        Applied to the branch before the addition (RCAN's :class:`ChannelAttention`).

    Shapes
    ------
    ``(B, C, *S) → (B, C, *S)``.
    """

    def __init__(
        self,
        spatial_dims: int,
        channels: int,
        *,
        act: ActFactory = _relu_in_place,
        batch_norm: bool = False,
        res_scale: float = 1.0,
        attention: nn.Module | None = None,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [conv_nd(spatial_dims, channels, channels, bias=not batch_norm)]
        if batch_norm:
            layers.append(batch_norm_nd(spatial_dims, channels))
        layers += [act(), conv_nd(spatial_dims, channels, channels, bias=not batch_norm)]
        if batch_norm:
            layers.append(batch_norm_nd(spatial_dims, channels))
        if attention is not None:
            layers.append(attention)
        self.body = nn.Sequential(*layers)
        self.res_scale = float(res_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # In place on the branch's fresh output: two fewer full-size temporaries per block (about 6 % of an
        # EDSR forward on CPU, benchmarks/inference.py --engine); autograd refuses it if a layer needed it.
        branch = self.body(x)
        if self.res_scale != 1.0:
            branch = branch.mul_(self.res_scale)
        return branch.add_(x)


class DenseStack(nn.Module):
    """Densely connected convolutions: layer ``j`` sees the input and the ``j`` earlier layers' outputs.

    The shared core of SRDenseNet's dense blocks, RDN's residual dense blocks and ESRGAN's RRDB.

    Parameters
    ----------
    spatial_dims : int
        2 or 3.
    in_channels : int
        Channels of the input.
    growth : int
        Channels each layer adds.
    n_layers : int
        Number of 3×3 convolution + activation layers.
    act : callable
        Builds the activation after each convolution.

    Shapes
    ------
    ``(B, in_channels, *S) → (B, in_channels + n_layers·growth, *S)`` (input first, then the layers in
    order).
    """

    def __init__(self, spatial_dims: int, in_channels: int, growth: int, n_layers: int, act: ActFactory) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            nn.Sequential(conv_nd(spatial_dims, in_channels + j * growth, growth), act()) for j in range(n_layers)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = torch.cat([x, layer(x)], dim=1)
        return x
