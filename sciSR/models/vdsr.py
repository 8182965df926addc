"""VDSR: a 20-layer network that learns the residual between the interpolated input and the target."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from sciSR.errors import SciSRError
from sciSR.models.base import PreUpsamplingModel
from sciSR.models.blocks import conv_nd
from sciSR.models.registry import register_model


@register_model("vdsr", paper="Kim, Lee, Lee. Accurate Image Super-Resolution Using Very Deep Convolutional "
                "Networks. CVPR 2016.", year=2016)
class VDSR(PreUpsamplingModel):
    """Interpolate, then ``depth`` 3×3 convolutions (ReLU between) whose output is added to the interpolation.

    Parameters
    ----------
    spatial_dims, in_channels, out_channels, scale
        See :class:`~sciSR.models.base.ZooModel`; ``out_channels`` must equal ``in_channels``
        (global residual).
    depth : int
        Number of convolution layers (20).
    features : int
        Channels of the hidden layers (64).

    Shapes
    ------
    ``(B, C, *S) → (B, C, *S·s)``.
    """

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int, scale: Sequence[int], *,
                 depth: int = 20, features: int = 64) -> None:
        super().__init__(spatial_dims, in_channels, out_channels, scale, residual=True)
        if depth < 2:
            raise SciSRError(f"vdsr depth must be at least 2, got {depth}")
        layers: list[nn.Module] = [conv_nd(spatial_dims, in_channels, features), nn.ReLU()]
        for _ in range(depth - 2):
            layers += [conv_nd(spatial_dims, features, features), nn.ReLU()]
        layers.append(conv_nd(spatial_dims, features, out_channels))
        self.body = nn.Sequential(*layers)
