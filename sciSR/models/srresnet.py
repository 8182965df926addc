"""SRResNet (the SRGAN generator) and the SRGAN discriminator."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import torch
from monai.networks.layers.factories import Pool
from torch import nn

from sciSR.models.base import Discriminator, PostUpsamplingModel
from sciSR.models.blocks import ResidualBlock, Upsampler, batch_norm_nd, conv_nd
from sciSR.models.registry import register_model

SRGAN_PAPER = ("Ledig, Theis, Huszár, Caballero, Cunningham, Acosta, Aitken, Tejani, Totz, Wang, Shi. "
               "Photo-Realistic Single Image Super-Resolution Using a Generative Adversarial Network. CVPR 2017.")


@register_model("srresnet", paper=SRGAN_PAPER, year=2017)
class SRResNet(PostUpsamplingModel):
    """``conv9×9`` → PReLU → ``n_blocks`` × [conv-BN-PReLU-conv-BN + skip] → conv-BN + skip → ×2 sub-pixel
    stages (conv → shuffle → PReLU) → ``conv9×9``.

    Parameters
    ----------
    spatial_dims, in_channels, out_channels, scale
        See :class:`~sciSR.models.base.ZooModel`; the forward pass is
        :class:`~sciSR.models.base.PostUpsamplingModel`'s.
    n_blocks : int
        Residual blocks (16).
    features : int
        Feature channels (64).

    Notes
    -----
    PReLUs are channel-wise (He et al.'s PReLU); the paper does not say, and it changes the count by
    1.2k of 1.5M parameters.

    Shapes
    ------
    ``(B, in_channels, *S) → (B, out_channels, *S·s)``.
    """

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int, scale: Sequence[int], *,
                 n_blocks: int = 16, features: int = 64) -> None:
        super().__init__(spatial_dims, in_channels, out_channels, scale)
        prelu = partial(nn.PReLU, features)
        self.head = nn.Sequential(conv_nd(spatial_dims, in_channels, features, 9), prelu())
        self.body = nn.Sequential(
            *(ResidualBlock(spatial_dims, features, act=prelu, batch_norm=True) for _ in range(n_blocks)),
            conv_nd(spatial_dims, features, features, bias=False), batch_norm_nd(spatial_dims, features),
        )
        self.upsample = Upsampler(spatial_dims, features, self.scale, mode="pixelshuffle", act=prelu)
        self.tail = conv_nd(spatial_dims, features, out_channels, 9)


def discriminator_head(spatial_dims: int, channels: int, pool_size: int, fc_features: int) -> nn.Sequential:
    """Adaptive average pool to ``pool_size`` per axis, flatten, dense → LeakyReLU(0.2) → dense to one logit.

    The pool makes the dense layers accept any patch size; at the paper's patch size it is the identity,
    so the weights are exactly the paper's.
    """
    return nn.Sequential(
        Pool[Pool.ADAPTIVEAVG, spatial_dims](pool_size),
        nn.Flatten(),
        nn.Linear(channels * pool_size**spatial_dims, fc_features),
        nn.LeakyReLU(0.2),
        nn.Linear(fc_features, 1),
    )


@register_model("srgan-d", paper=SRGAN_PAPER, year=2017)
class SRGANDiscriminator(Discriminator):
    """VGG-style critic: eight 3×3 convolutions (64→512 channels, stride 2 every other layer), BN and
    LeakyReLU(0.2), then dense 1024 → dense 1.

    Parameters
    ----------
    spatial_dims, in_channels
        See :class:`~sciSR.models.base.ZooModel`; ``scale`` must be all ones, ``out_channels`` 1.
    features : int
        Channels of the first layer (64); doubled every two layers up to 8×.
    fc_features : int
        Width of the hidden dense layer (1024).
    pool_size : int, optional
        Spatial size per axis fed to the dense layers. Default: 6 in 2D (the paper's 96-pixel HR patch
        after four stride-2 layers), 3 in 3D (6³·512 inputs would make a 113M-parameter dense layer).

    Shapes
    ------
    ``(B, in_channels, *S) → (B, 1)`` logits (no sigmoid; see :class:`sciSR.losses.GANLoss`).
    """

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int = 1, scale: int | Sequence[int] = 1, *,
                 features: int = 64, fc_features: int = 1024, pool_size: int | None = None) -> None:
        super().__init__(spatial_dims, in_channels, out_channels, scale)
        lrelu = partial(nn.LeakyReLU, 0.2)
        layers: list[nn.Module] = [conv_nd(spatial_dims, in_channels, features), lrelu()]
        channels = features
        for width, stride in ((1, 2), (2, 1), (2, 2), (4, 1), (4, 2), (8, 1), (8, 2)):
            layers += [conv_nd(spatial_dims, channels, width * features, stride=stride, bias=False),
                       batch_norm_nd(spatial_dims, width * features), lrelu()]
            channels = width * features
        self.features = nn.Sequential(*layers)
        pool = pool_size if pool_size is not None else (6 if spatial_dims == 2 else 3)
        self.head = discriminator_head(spatial_dims, channels, pool, fc_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
