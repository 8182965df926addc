"""ESRGAN: the RRDBNet generator (residual-in-residual dense blocks) and its VGG-style discriminator."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import torch
from torch import nn

from sciSR.models.base import Discriminator, PostUpsamplingModel
from sciSR.models.blocks import DenseStack, Upsampler, batch_norm_nd, conv_nd
from sciSR.models.registry import register_model
from sciSR.models.srresnet import discriminator_head

ESRGAN_PAPER = ("Wang, Yu, Wu, Gu, Liu, Dong, Loy, Qiao, Tang. ESRGAN: Enhanced Super-Resolution Generative "
                "Adversarial Networks. ECCV Workshops 2018.")
_LeakyReLU = partial(nn.LeakyReLU, 0.2)


class ResidualDenseBlock(nn.Module):
    """Four densely connected conv-LeakyReLU layers and a fusing conv, added back scaled by ``beta``.

    Shapes
    ------
    ``(B, C, *S) → (B, C, *S)``.
    """

    def __init__(self, spatial_dims: int, features: int, growth: int, beta: float) -> None:
        super().__init__()
        self.dense = DenseStack(spatial_dims, features, growth, 4, _LeakyReLU)
        self.fuse = conv_nd(spatial_dims, features + 4 * growth, features)
        self.beta = beta

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.beta * self.fuse(self.dense(x))


class RRDB(nn.Module):
    """Residual in residual dense block: three dense blocks, residual scaled by ``beta`` (0.2).

    Shapes
    ------
    ``(B, C, *S) → (B, C, *S)``.
    """

    def __init__(self, spatial_dims: int, features: int, growth: int, beta: float = 0.2) -> None:
        super().__init__()
        self.body = nn.Sequential(*(ResidualDenseBlock(spatial_dims, features, growth, beta) for _ in range(3)))
        self.beta = beta
        # The paper's "smaller initialization": He-normal scaled by 0.1 keeps the deep residual stack stable.
        for module in self.modules():
            if isinstance(module, nn.Conv2d | nn.Conv3d):
                nn.init.kaiming_normal_(module.weight)
                module.weight.data.mul_(0.1)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.beta * self.body(x)


@register_model("rrdbnet", paper=ESRGAN_PAPER, year=2018)
class RRDBNet(PostUpsamplingModel):
    """``conv`` → ``n_blocks`` RRDBs → conv, + skip → (nearest ×2 → conv → LeakyReLU) stages → conv →
    LeakyReLU → ``conv``.

    Parameters
    ----------
    spatial_dims, in_channels, out_channels, scale
        See :class:`~sciSR.models.base.ZooModel`; the forward pass is
        :class:`~sciSR.models.base.PostUpsamplingModel`'s.
    n_blocks : int
        RRDBs (23).
    features : int
        Trunk channels (64).
    growth : int
        Dense growth channels (32).

    Shapes
    ------
    ``(B, in_channels, *S) → (B, out_channels, *S·s)``.
    """

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int, scale: Sequence[int], *,
                 n_blocks: int = 23, features: int = 64, growth: int = 32) -> None:
        super().__init__(spatial_dims, in_channels, out_channels, scale)
        self.head = conv_nd(spatial_dims, in_channels, features)
        self.body = nn.Sequential(*(RRDB(spatial_dims, features, growth) for _ in range(n_blocks)),
                                  conv_nd(spatial_dims, features, features))
        self.upsample = Upsampler(spatial_dims, features, self.scale, mode="nearest", act=_LeakyReLU)
        self.tail = nn.Sequential(conv_nd(spatial_dims, features, features), _LeakyReLU(),
                                  conv_nd(spatial_dims, features, out_channels))


@register_model("esrgan-d", paper=ESRGAN_PAPER, year=2018)
class ESRGANDiscriminator(Discriminator):
    """VGG-style critic for 128-pixel patches (the relativistic average loss is
    :class:`sciSR.losses.GANLoss` with ``mode="relativistic"``).

    Five stages of [3×3 conv, 4×4 stride-2 conv] with widths ``features·(1, 2, 4, 8, 8)``, batch norm (not
    on the first conv) and LeakyReLU(0.2); dense 100 → dense 1.

    Parameters
    ----------
    spatial_dims, in_channels
        See :class:`~sciSR.models.base.ZooModel`; ``scale`` must be all ones, ``out_channels`` 1.
    features : int
        Channels of the first stage (64).
    fc_features : int
        Width of the hidden dense layer (100).
    pool_size : int
        Spatial size per axis fed to the dense layers (4: a 128-pixel patch after five stride-2 stages).

    Shapes
    ------
    ``(B, in_channels, *S) → (B, 1)`` logits; each axis needs at least 32 voxels.
    """

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int = 1, scale: int | Sequence[int] = 1, *,
                 features: int = 64, fc_features: int = 100, pool_size: int = 4) -> None:
        super().__init__(spatial_dims, in_channels, out_channels, scale)
        layers: list[nn.Module] = []
        channels = in_channels
        for stage, width in enumerate((1, 2, 4, 8, 8)):
            out = width * features
            layers.append(conv_nd(spatial_dims, channels, out, bias=stage == 0))
            if stage:
                layers.append(batch_norm_nd(spatial_dims, out))
            layers += [_LeakyReLU(), conv_nd(spatial_dims, out, out, 4, stride=2, padding=1, bias=False),
                       batch_norm_nd(spatial_dims, out), _LeakyReLU()]
            channels = out
        self.features = nn.Sequential(*layers)
        self.head = discriminator_head(spatial_dims, channels, pool_size, fc_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
