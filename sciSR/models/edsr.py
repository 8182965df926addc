"""EDSR and EDSR-baseline: residual blocks without batch norm, wide features, sub-pixel tail."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from sciSR.models.base import PostUpsamplingModel
from sciSR.models.blocks import ResidualBlock, Upsampler, conv_nd
from sciSR.models.registry import register_model

EDSR_PAPER = ("Lim, Son, Kim, Nah, Lee. Enhanced Deep Residual Networks for Single Image Super-Resolution. "
              "CVPR Workshops 2017.")


@register_model("edsr", paper=EDSR_PAPER, year=2017)
@register_model("edsr-baseline", paper=EDSR_PAPER, year=2017,
                overrides={"n_blocks": 16, "features": 64, "res_scale": 1.0})
class EDSR(PostUpsamplingModel):
    """``conv`` → ``n_blocks`` × [conv-ReLU-conv, ×res_scale, + skip] → conv, + skip → sub-pixel stages → ``conv``.

    Parameters
    ----------
    spatial_dims, in_channels, out_channels, scale
        See :class:`~sciSR.models.base.ZooModel`; the forward pass is
        :class:`~sciSR.models.base.PostUpsamplingModel`'s.
    n_blocks : int
        Residual blocks: 32 (EDSR), 16 (baseline).
    features : int
        Feature channels: 256 (EDSR), 64 (baseline).
    res_scale : float
        Residual scaling: 0.1 (EDSR, needed to train 256 channels), 1 (baseline).

    Notes
    -----
    The paper subtracts the DIV2K RGB mean before the network; sciSR normalises intensities per domain
    instead (:mod:`sciSR.intensity`), so there is no mean shift here (it has no parameters).

    Shapes
    ------
    ``(B, in_channels, *S) → (B, out_channels, *S·s)``.
    """

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int, scale: Sequence[int], *,
                 n_blocks: int = 32, features: int = 256, res_scale: float = 0.1) -> None:
        super().__init__(spatial_dims, in_channels, out_channels, scale)
        self.head = conv_nd(spatial_dims, in_channels, features)
        self.body = nn.Sequential(
            *(ResidualBlock(spatial_dims, features, res_scale=res_scale) for _ in range(n_blocks)),
            conv_nd(spatial_dims, features, features),
        )
        self.upsample = Upsampler(spatial_dims, features, self.scale)
        self.tail = conv_nd(spatial_dims, features, out_channels)
