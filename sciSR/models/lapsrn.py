"""LapSRN: a Laplacian pyramid that predicts the residual of every ×2 level from LR features."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import torch
from torch import nn

from sciSR.errors import SciSRError
from sciSR.models.base import ZooModel
from sciSR.models.blocks import conv_nd, init_bilinear_, is_power_of_two_scale, transposed_conv_nd, upsample_stages
from sciSR.models.registry import register_model

_LeakyReLU = partial(nn.LeakyReLU, 0.2)


class _Level(nn.Module):
    """One pyramid level: ``depth`` convolutions, a ×2 feature deconvolution, a residual-image convolution,
    and the bilinear-initialised image deconvolution the residual is added to."""

    def __init__(self, spatial_dims: int, channels: int, features: int, depth: int, stage: tuple[int, ...]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for _ in range(depth):
            layers += [conv_nd(spatial_dims, features, features), _LeakyReLU()]
        # The authors' released model uses 3×3 feature deconvolutions; their 812K figure counts those.
        layers += [transposed_conv_nd(spatial_dims, features, features, 3, stage), _LeakyReLU()]
        self.features = nn.Sequential(*layers)
        self.residual = conv_nd(spatial_dims, features, channels)
        # 4×4 bilinear kernel per ×2 axis (1-tap identity on ×1 axes), one channel at a time, no bias.
        self.image_up = transposed_conv_nd(spatial_dims, channels, channels, 4, stage, groups=channels, bias=False)
        init_bilinear_(self.image_up, stage)

    def forward(self, features: torch.Tensor, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.features(features)
        return features, self.image_up(image) + self.residual(features)


@register_model("lapsrn", paper="Lai, Huang, Ahuja, Yang. Deep Laplacian Pyramid Networks for Fast and Accurate "
                "Super-Resolution. CVPR 2017.", year=2017)
class LapSRN(ZooModel):
    """Progressive ×2 levels (×2, ×4, ×8, …); each level refines the upsampled image with a predicted residual.

    Parameters
    ----------
    spatial_dims, in_channels, out_channels, scale
        See :class:`~sciSR.models.base.ZooModel`. Every factor must be a power of two (per axis, e.g.
        ``(1, 1, 4)``: two levels that double the last axis); ``out_channels`` must equal ``in_channels``.
    depth : int
        Convolutions per level (10).
    features : int
        Feature channels (64).

    Notes
    -----
    Train with :class:`sciSR.losses.CharbonnierLoss` on every level (:meth:`forward_levels`), as the
    paper does; :meth:`forward` returns the finest level only.

    Shapes
    ------
    ``(B, C, *S) → (B, C, *S·s)``.
    """

    kind = "progressive"

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int, scale: Sequence[int], *,
                 depth: int = 10, features: int = 64) -> None:
        super().__init__(spatial_dims, in_channels, out_channels, scale)
        if not is_power_of_two_scale(self.scale):
            raise SciSRError(f"lapsrn is progressive (×2 levels): every factor must be a power of two with at "
                             f"least one above 1, got {self.scale}")
        if out_channels != in_channels:
            raise SciSRError("lapsrn adds residuals to the upsampled input, so out_channels must equal in_channels")
        self.head = nn.Sequential(conv_nd(spatial_dims, in_channels, features), _LeakyReLU())
        self.levels = nn.ModuleList(_Level(spatial_dims, in_channels, features, depth, stage)
                                    for stage in upsample_stages(self.scale))

    def forward_levels(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every pyramid level's image, coarse to fine (for multi-level training losses).

        Returns
        -------
        list of torch.Tensor
            One ``(B, C, *S·s_k)`` per level, ``s_k`` the cumulative factor after level ``k``.
        """
        features, image = self.head(x), x
        outputs = []
        for level in self.levels:
            features, image = level(features, image)
            outputs.append(image)
        return outputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_levels(x)[-1]
