"""FSRCNN: SRCNN made fast by working at low resolution and upsampling with a final deconvolution."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from sciSR.models.base import ZooModel
from sciSR.models.blocks import conv_nd, transposed_conv_nd
from sciSR.models.registry import register_model


@register_model("fsrcnn", paper="Dong, Loy, Tang. Accelerating the Super-Resolution Convolutional Neural Network. "
                "ECCV 2016.", year=2016)
class FSRCNN(ZooModel):
    """FSRCNN(d, s, m): feature extraction, shrinking, mapping, expanding, deconvolution.

    ``conv5×5(in→d)`` → ``conv1×1(d→s)`` → ``m × conv3×3(s→s)`` → ``conv1×1(s→d)``, each followed by a
    channel-wise PReLU, then a ``9×9`` transposed convolution with stride = scale to ``out_channels``.

    Parameters
    ----------
    spatial_dims, in_channels, out_channels, scale
        See :class:`~sciSR.models.base.ZooModel`.
    features : int
        ``d``, the LR feature dimension (56).
    shrink : int
        ``s``, the shrunk mapping dimension (12).
    mapping_layers : int
        ``m``, the number of mapping layers (4).
    deconv_kernel : int
        Deconvolution kernel (9); an axis whose factor exceeds it uses the factor instead.

    Shapes
    ------
    ``(B, in_channels, *S) → (B, out_channels, *S·s)``.
    """

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int, scale: Sequence[int], *,
                 features: int = 56, shrink: int = 12, mapping_layers: int = 4, deconv_kernel: int = 9) -> None:
        super().__init__(spatial_dims, in_channels, out_channels, scale)
        layers: list[nn.Module] = [conv_nd(spatial_dims, in_channels, features, 5), nn.PReLU(features),
                                   conv_nd(spatial_dims, features, shrink, 1), nn.PReLU(shrink)]
        for _ in range(mapping_layers):
            layers += [conv_nd(spatial_dims, shrink, shrink, 3), nn.PReLU(shrink)]
        layers += [conv_nd(spatial_dims, shrink, features, 1), nn.PReLU(features)]
        self.features = nn.Sequential(*layers)
        self.deconv = transposed_conv_nd(spatial_dims, features, out_channels, deconv_kernel, self.scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.deconv(self.features(x))
