"""Oktay et al.'s cardiac super-resolution networks: the single-stack de-CNN and the multi-stack fusion network.

``oktay-desr`` works on the low-resolution grid, upsamples features with one transposed convolution placed
on the FOV-preserving grid, refines them, and adds the result to the linearly interpolated input.
``oktay-multi`` takes N stacks that were already resampled onto the output grid (by world coordinates,
see :mod:`sciSR.resample`), runs each through the same feature stream, fuses them with an operation that
does not depend on the order or the number of stacks, refines, and adds the mean of the stacks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
from torch import nn

from sciSR.errors import SciSRError
from sciSR.models.base import ZooModel
from sciSR.models.blocks import conv_nd, init_bilinear_, interpolate_fov, transposed_conv_nd
from sciSR.models.registry import register_model

OKTAY_PAPER = ("Oktay, Bai, Lee, Guerrero, Kamnitsas, Caballero, de Marvao, Cook, O'Regan, Rueckert. "
               "Multi-input Cardiac Image Super-Resolution Using Convolutional Neural Networks. MICCAI 2016.")


def fov_deconv_kernel(factor: int) -> int:
    """Kernel edge of a transposed convolution of stride ``factor`` centred on the FOV-preserving grid.

    Parameters
    ----------
    factor : int
        Upsampling factor (stride) along one axis.

    Returns
    -------
    int
        ``2·factor`` for even factors, ``2·factor − 1`` for odd ones (3 for a factor of 1): the support of
        the linear-interpolation (triangle) kernel of width ``factor``. ``kernel − factor`` is then even,
        so with padding ``(kernel − factor)/2`` the centre tap of input voxel ``n`` lands on output
        position ``factor·n + (factor − 1)/2`` — the centre of that voxel's field of view (docs/architecture.md §3).
    """
    return 3 if factor == 1 else 2 * factor - factor % 2


def _conv_relu_stack(spatial_dims: int, in_channels: int, features: int, n_layers: int) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for j in range(n_layers):
        layers += [conv_nd(spatial_dims, in_channels if j == 0 else features, features), nn.ReLU()]
    return layers


def _check_depth(name: str, **depths: int) -> None:
    for key, value in depths.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise SciSRError(f"{name} {key} must be a positive integer, got {value!r}")


def _check_residual(name: str, in_channels: int, out_channels: int) -> None:
    if out_channels != in_channels:
        raise SciSRError(f"{name} adds its output to the input image, so out_channels ({out_channels}) must equal "
                         f"in_channels ({in_channels})")


@register_model("oktay-desr", paper=OKTAY_PAPER, year=2016)
class OktayDeSR(ZooModel):
    """De-CNN: LR conv layers → transposed convolution ×s → HR conv layers, + linear interpolation of the input.

    Parameters
    ----------
    spatial_dims, in_channels, out_channels, scale
        See :class:`~sciSR.models.base.ZooModel`; ``out_channels`` must equal ``in_channels`` (residual).
    features : int
        Feature maps of every hidden layer (64).
    lr_layers : int
        3×3(×3) conv + ReLU layers on the low-resolution grid, before the upsampling (3).
    hr_layers : int
        Layers on the output grid after the upsampling, the last one a linear conv to the image (3).

    Notes
    -----
    The transposed convolution has kernel :func:`fov_deconv_kernel` per axis and starts as per-channel
    linear interpolation (:func:`~sciSR.models.blocks.init_bilinear_`), so at initialisation the
    features are already on the FOV-preserving grid and training refines from there. The residual is
    bilinear/trilinear interpolation with ``align_corners=False`` (same grid).

    Shapes
    ------
    ``(B, C, *S) → (B, C, *S·s)``.
    """

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int, scale: Sequence[int], *,
                 features: int = 64, lr_layers: int = 3, hr_layers: int = 3) -> None:
        super().__init__(spatial_dims, in_channels, out_channels, scale)
        _check_residual("oktay-desr", in_channels, out_channels)
        _check_depth("oktay-desr", features=features, lr_layers=lr_layers, hr_layers=hr_layers)
        self.features = nn.Sequential(*_conv_relu_stack(spatial_dims, in_channels, features, lr_layers))
        self.upsample = transposed_conv_nd(spatial_dims, features, features,
                                           [fov_deconv_kernel(s) for s in self.scale], self.scale)
        init_bilinear_(self.upsample, self.scale)
        self.refine = nn.Sequential(nn.ReLU(), *_conv_relu_stack(spatial_dims, features, features, hr_layers - 1),
                                    conv_nd(spatial_dims, features, out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return interpolate_fov(x, self.scale, linear=True) + self.refine(self.upsample(self.features(x)))


@register_model("oktay-multi", paper=OKTAY_PAPER, year=2016)
class OktayMulti(ZooModel):
    """N stacks on the output grid → shared feature stream each → mean ‖ max over stacks → 1×1 conv → refine.

    Parameters
    ----------
    spatial_dims, in_channels, out_channels, scale
        See :class:`~sciSR.models.base.ZooModel`. ``in_channels`` is the channels of ONE stack;
        ``out_channels`` must equal it (residual to the mean stack). ``scale`` is nominal: the factor
        from the first stack's grid to the output grid, kept in the card; the network keeps the size.
    features : int
        Feature maps of the streams and of the refinement (64).
    stream_layers : int
        3×3(×3) conv + ReLU layers of the weight-shared stream every stack goes through (3).
    refine_layers : int
        Layers after the fusion, the last one a linear conv to the image (3).

    Notes
    -----
    ``spec.inputs`` is ``"stacks"``: the input holds several stacks as channel groups.
    ``spec.input_on_output_grid`` is True: the stacks are resampled onto the output grid before the
    network, so tiled inference treats it as a scale-1 network with ``N·C`` input channels.

    Oktay et al. concatenate the streams of a fixed set of views; a mean and a max over the stack axis
    instead make the output independent of the order of the stacks and let N be chosen at run time with
    the same weights (N = 1 degenerates to a single-stack refinement network).

    Shapes
    ------
    ``(B, N·C, *S) → (B, C, *S)``; channels ``n·C … n·C + C − 1`` are stack ``n``.
    """

    kind: ClassVar[str] = "fusion"

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int, scale: Sequence[int], *,
                 features: int = 64, stream_layers: int = 3, refine_layers: int = 3) -> None:
        super().__init__(spatial_dims, in_channels, out_channels, scale)
        _check_residual("oktay-multi", in_channels, out_channels)
        _check_depth("oktay-multi", features=features, stream_layers=stream_layers, refine_layers=refine_layers)
        self.stream = nn.Sequential(*_conv_relu_stack(spatial_dims, in_channels, features, stream_layers))
        self.fuse = nn.Sequential(conv_nd(spatial_dims, 2 * features, features, 1), nn.ReLU())
        self.refine = nn.Sequential(*_conv_relu_stack(spatial_dims, features, features, refine_layers - 1),
                                    conv_nd(spatial_dims, features, out_channels))

    @classmethod
    def spec_abilities(cls, options: Mapping[str, Any]) -> dict[str, Any]:
        """Several stacks, already on the output grid: ``inputs="stacks"``, ``input_on_output_grid=True``."""
        del options
        return {"inputs": "stacks", "input_on_output_grid": True}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, spatial = x.shape[0], x.shape[1], x.shape[2:]
        if channels % self.in_channels:
            raise SciSRError(f"oktay-multi: input has {channels} channels, not a multiple of the {self.in_channels} "
                             "channels per stack (stacks go as channel groups: (B, N·C, ...))")
        stacks = x.reshape(batch, -1, self.in_channels, *spatial)
        n_stacks = stacks.shape[1]
        feats = self.stream(stacks.reshape(batch * n_stacks, self.in_channels, *spatial))
        feats = feats.reshape(batch, n_stacks, feats.shape[1], *spatial)
        fused = self.fuse(torch.cat([feats.mean(dim=1), feats.amax(dim=1)], dim=1))
        return stacks.mean(dim=1) + self.refine(fused)
