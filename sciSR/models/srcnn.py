"""SRCNN: the first convolutional super-resolution network (patch extraction, mapping, reconstruction)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from sciSR.errors import SciSRError
from sciSR.models.base import PreUpsamplingModel
from sciSR.models.blocks import conv_nd
from sciSR.models.registry import register_model


@register_model("srcnn", paper="Dong, Loy, He, Tang. Image Super-Resolution Using Deep Convolutional Networks. "
                "ECCV 2014 (extended in IEEE TPAMI 2016).", year=2014)
class SRCNN(PreUpsamplingModel):
    """Interpolate, then three convolutions ``f1-f2-f3`` with ``n1``, ``n2`` filters and ReLU between.

    Parameters
    ----------
    spatial_dims, in_channels, out_channels, scale
        See :class:`~sciSR.models.base.ZooModel`.
    kernel_sizes : sequence of 3 odd int
        ``(f1, f2, f3)``: ``(9, 1, 5)`` is the paper's base network, ``(9, 5, 5)`` its best one.
    features : sequence of 2 int
        ``(n1, n2)`` = ``(64, 32)``.

    Notes
    -----
    The paper trains with valid convolutions (the output shrinks by ``f1 + f2 + f3 − 3``); here every
    layer is zero-padded so the output covers the whole upscaled grid.

    Shapes
    ------
    ``(B, in_channels, *S) → (B, out_channels, *S·s)``.
    """

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int, scale: Sequence[int], *,
                 kernel_sizes: Sequence[int] = (9, 1, 5), features: Sequence[int] = (64, 32)) -> None:
        super().__init__(spatial_dims, in_channels, out_channels, scale, residual=False)
        kernel_sizes, features = tuple(kernel_sizes), tuple(features)
        if len(kernel_sizes) != 3 or any(k % 2 == 0 or k < 1 for k in kernel_sizes):
            raise SciSRError(f"srcnn kernel_sizes must be three odd sizes, got {kernel_sizes}")
        if len(features) != 2:
            raise SciSRError(f"srcnn features must be two filter counts (n1, n2), got {features}")
        f1, f2, f3 = kernel_sizes
        n1, n2 = features
        self.body = nn.Sequential(
            conv_nd(spatial_dims, in_channels, n1, f1), nn.ReLU(),
            conv_nd(spatial_dims, n1, n2, f2), nn.ReLU(),
            conv_nd(spatial_dims, n2, out_channels, f3),
        )
