"""ESPCN: convolutions at low resolution and one sub-pixel convolution (pixel shuffle) at the end."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from sciSR.errors import SciSRError
from sciSR.models.base import ZooModel
from sciSR.models.blocks import PixelShuffleND, conv_nd
from sciSR.models.registry import register_model


@register_model("espcn", paper="Shi, Caballero, Huszár, Totz, Aitken, Bishop, Rueckert, Wang. Real-Time Single "
                "Image and Video Super-Resolution Using an Efficient Sub-Pixel Convolutional Neural Network. "
                "CVPR 2016.", year=2016)
class ESPCN(ZooModel):
    """``conv f1 (in→n1)`` → tanh → ``conv f2 (n1→n2)`` → tanh → ``conv f3 (n2→out·∏s)`` → pixel shuffle.

    Parameters
    ----------
    spatial_dims, in_channels, out_channels, scale
        See :class:`~sciSR.models.base.ZooModel`; the shuffle takes any per-axis factors, e.g. ``(2, 3)``
        or ``(1, 1, 4)``.
    kernel_sizes : sequence of 3 odd int
        ``(f1, f2, f3)`` = ``(5, 3, 3)``.
    features : sequence of 2 int
        ``(n1, n2)`` = ``(64, 32)``.

    Shapes
    ------
    ``(B, in_channels, *S) → (B, out_channels, *S·s)``.
    """

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int, scale: Sequence[int], *,
                 kernel_sizes: Sequence[int] = (5, 3, 3), features: Sequence[int] = (64, 32)) -> None:
        super().__init__(spatial_dims, in_channels, out_channels, scale)
        kernel_sizes, features = tuple(kernel_sizes), tuple(features)
        if len(kernel_sizes) != 3 or any(k % 2 == 0 or k < 1 for k in kernel_sizes):
            raise SciSRError(f"espcn kernel_sizes must be three odd sizes, got {kernel_sizes}")
        if len(features) != 2:
            raise SciSRError(f"espcn features must be two filter counts (n1, n2), got {features}")
        f1, f2, f3 = kernel_sizes
        n1, n2 = features
        self.body = nn.Sequential(
            conv_nd(spatial_dims, in_channels, n1, f1), nn.Tanh(),
            conv_nd(spatial_dims, n1, n2, f2), nn.Tanh(),
            conv_nd(spatial_dims, n2, out_channels * math.prod(self.scale), f3),
            PixelShuffleND(self.scale),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)
