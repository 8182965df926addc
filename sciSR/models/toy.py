"""The seed toy network: the smallest learned upscaler, for smoke tests and shipped demo weights."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from sciSR.models.base import PreUpsamplingModel
from sciSR.models.blocks import conv_nd
from sciSR.models.registry import register_model


@register_model("srnet-toy", paper="sciSR seed network (no publication): conv3×3 → ReLU → conv3×3 on the "
                "interpolated input.", year=2026)
class SRNetToy(PreUpsamplingModel):
    """Interpolate (:func:`~sciSR.models.blocks.interpolate_fov`), then conv3×3(in→64) → ReLU → conv3×3(64→out).

    Parameters
    ----------
    spatial_dims, in_channels, out_channels, scale
        See :class:`~sciSR.models.base.ZooModel`.
    features : int
        Hidden channels (64).

    Shapes
    ------
    ``(B, in_channels, *S) → (B, out_channels, *S·s)``.
    """

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int, scale: Sequence[int], *,
                 features: int = 64) -> None:
        super().__init__(spatial_dims, in_channels, out_channels, scale, residual=False)
        self.body = nn.Sequential(
            conv_nd(spatial_dims, in_channels, features), nn.ReLU(), conv_nd(spatial_dims, features, out_channels)
        )
