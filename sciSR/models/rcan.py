"""RCAN: residual-in-residual groups of channel-attention residual blocks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from sciSR.errors import SciSRError
from sciSR.models.base import PostUpsamplingModel
from sciSR.models.blocks import ChannelAttention, ResidualBlock, Upsampler, conv_nd
from sciSR.models.registry import register_model


class ResidualGroup(nn.Module):
    """``x + conv(RCAB_n(… RCAB_1(x)))`` with RCAB = residual block + channel attention.

    Shapes
    ------
    ``(B, C, *S) → (B, C, *S)``.
    """

    def __init__(self, spatial_dims: int, features: int, n_blocks: int, reduction: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            *(ResidualBlock(spatial_dims, features, attention=ChannelAttention(spatial_dims, features, reduction))
              for _ in range(n_blocks)),
            conv_nd(spatial_dims, features, features),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


@register_model("rcan", paper="Zhang, Li, Li, Wang, Zhong, Fu. Image Super-Resolution Using Very Deep Residual "
                "Channel Attention Networks. ECCV 2018.", year=2018)
class RCAN(PostUpsamplingModel):
    """``conv`` → ``n_groups`` residual groups → conv, + long skip → sub-pixel stages → ``conv``.

    Parameters
    ----------
    spatial_dims, in_channels, out_channels, scale
        See :class:`~sciSR.models.base.ZooModel`; the forward pass is
        :class:`~sciSR.models.base.PostUpsamplingModel`'s.
    n_groups : int
        Residual groups (10).
    n_blocks : int
        RCABs per group (20).
    features : int
        Feature channels (64).
    reduction : int
        Channel-attention reduction ratio (16).

    Notes
    -----
    Channel attention pools over the whole input (``spec.global_pooling``): tiled inference differs
    from whole-image inference. The DIV2K mean shift of the paper is left out (no parameters; sciSR
    normalises intensities itself).

    Shapes
    ------
    ``(B, in_channels, *S) → (B, out_channels, *S·s)``.
    """

    @classmethod
    def spec_abilities(cls, options: Mapping[str, Any]) -> dict[str, Any]:
        """Channel attention pools globally: ``global_pooling=True``."""
        del options
        return {"global_pooling": True}

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int, scale: Sequence[int], *,
                 n_groups: int = 10, n_blocks: int = 20, features: int = 64, reduction: int = 16) -> None:
        super().__init__(spatial_dims, in_channels, out_channels, scale)
        if features < reduction:
            raise SciSRError(f"rcan needs features ≥ reduction ({features} < {reduction})")
        self.head = conv_nd(spatial_dims, in_channels, features)
        self.body = nn.Sequential(
            *(ResidualGroup(spatial_dims, features, n_blocks, reduction) for _ in range(n_groups)),
            conv_nd(spatial_dims, features, features),
        )
        self.upsample = Upsampler(spatial_dims, features, self.scale)
        self.tail = conv_nd(spatial_dims, features, out_channels)
