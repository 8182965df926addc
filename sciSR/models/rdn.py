"""RDN: residual dense blocks with local feature fusion, then global feature fusion of all blocks."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from sciSR.models.base import ZooModel
from sciSR.models.blocks import DenseStack, Upsampler, conv_nd
from sciSR.models.registry import register_model


class ResidualDenseBlock(nn.Module):
    """``x + LFF(dense(x))``: ``C`` densely connected conv-ReLU layers, 1×1 local feature fusion.

    Shapes
    ------
    ``(B, G0, *S) → (B, G0, *S)``.
    """

    def __init__(self, spatial_dims: int, features: int, growth: int, n_layers: int) -> None:
        super().__init__()
        self.dense = DenseStack(spatial_dims, features, growth, n_layers, nn.ReLU)
        self.fuse = conv_nd(spatial_dims, features + n_layers * growth, features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fuse(self.dense(x))


@register_model("rdn", paper="Zhang, Tian, Kong, Zhong, Fu. Residual Dense Network for Image Super-Resolution. "
                "CVPR 2018.", year=2018)
class RDN(ZooModel):
    """Two shallow convolutions, ``D`` residual dense blocks, global fusion (1×1 + 3×3) with a skip to the
    first shallow features, sub-pixel up-sampling net, reconstruction convolution.

    Parameters
    ----------
    spatial_dims, in_channels, out_channels, scale
        See :class:`~sciSR.models.base.ZooModel`.
    n_blocks : int
        ``D``, residual dense blocks (16).
    n_layers : int
        ``C``, convolutions per block (8).
    growth : int
        ``G``, growth rate (64).
    features : int
        ``G0``, block width (64).

    Shapes
    ------
    ``(B, in_channels, *S) → (B, out_channels, *S·s)``.
    """

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int, scale: Sequence[int], *,
                 n_blocks: int = 16, n_layers: int = 8, growth: int = 64, features: int = 64) -> None:
        super().__init__(spatial_dims, in_channels, out_channels, scale)
        self.shallow1 = conv_nd(spatial_dims, in_channels, features)
        self.shallow2 = conv_nd(spatial_dims, features, features)
        self.blocks = nn.ModuleList(ResidualDenseBlock(spatial_dims, features, growth, n_layers)
                                    for _ in range(n_blocks))
        self.fuse = nn.Sequential(conv_nd(spatial_dims, n_blocks * features, features, 1),
                                  conv_nd(spatial_dims, features, features))
        self.upsample = Upsampler(spatial_dims, features, self.scale)
        self.tail = conv_nd(spatial_dims, features, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f_minus1 = self.shallow1(x)
        h = self.shallow2(f_minus1)
        outputs = []
        for block in self.blocks:
            h = block(h)
            outputs.append(h)
        return self.tail(self.upsample(f_minus1 + self.fuse(torch.cat(outputs, dim=1))))
