"""SRDenseNet: dense blocks whose outputs all skip to a bottleneck before deconvolution upsampling."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from sciSR.models.base import ZooModel
from sciSR.models.blocks import DenseStack, Upsampler, conv_nd
from sciSR.models.registry import register_model


@register_model("srdensenet", paper="Tong, Li, Liu, Gao. Image Super-Resolution Using Dense Skip Connections. "
                "ICCV 2017.", year=2017)
class SRDenseNet(ZooModel):
    """The paper's "SRDenseNet_All" variant: low-level features and every dense block's output are concatenated
    into a 1×1 bottleneck, upsampled by ×2 deconvolutions and reconstructed by one 3×3 convolution.

    Parameters
    ----------
    spatial_dims, in_channels, out_channels, scale
        See :class:`~sciSR.models.base.ZooModel`.
    n_blocks : int
        Dense blocks (8).
    n_layers : int
        Convolution layers per dense block (8); a block outputs ``n_layers·growth`` = 128 maps.
    growth : int
        Growth rate ``k`` (16).
    features : int
        Maps of the low-level convolution (128, the width every block sees).
    bottleneck : int
        Maps of the 1×1 bottleneck and of the deconvolution layers (256).

    Notes
    -----
    Deconvolutions are 3×3 (stride 2 per ×2 stage; a ×3 factor is one stride-3 stage) with ReLU, as
    described in the paper's Sec. 3.

    Shapes
    ------
    ``(B, in_channels, *S) → (B, out_channels, *S·s)``.
    """

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int, scale: Sequence[int], *,
                 n_blocks: int = 8, n_layers: int = 8, growth: int = 16, features: int = 128,
                 bottleneck: int = 256) -> None:
        super().__init__(spatial_dims, in_channels, out_channels, scale)
        self.head = nn.Sequential(conv_nd(spatial_dims, in_channels, features), nn.ReLU())
        block_out = n_layers * growth
        widths = [features] + [block_out] * (n_blocks - 1)
        self.blocks = nn.ModuleList(DenseStack(spatial_dims, w, growth, n_layers, nn.ReLU) for w in widths)
        self.block_inputs = widths
        self.bottleneck = nn.Sequential(conv_nd(spatial_dims, features + n_blocks * block_out, bottleneck, 1),
                                        nn.ReLU())
        self.upsample = Upsampler(spatial_dims, bottleneck, self.scale, mode="deconv", act=nn.ReLU)
        self.reconstruct = conv_nd(spatial_dims, bottleneck, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.head(x)
        levels = [h]
        for block, width in zip(self.blocks, self.block_inputs, strict=True):
            # A block's output is its new maps only; its input already reaches the bottleneck directly.
            h = block(h)[:, width:]
            levels.append(h)
        return self.reconstruct(self.upsample(self.bottleneck(torch.cat(levels, dim=1))))
