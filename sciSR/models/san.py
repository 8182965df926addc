"""SAN: second-order (covariance) channel attention and region-level non-local attention."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from sciSR.errors import SciSRError
from sciSR.models.base import ZooModel
from sciSR.models.blocks import ResidualBlock, Upsampler, conv_nd
from sciSR.models.registry import register_model


def covariance_sqrt(cov: torch.Tensor, iterations: int) -> torch.Tensor:
    """Square root of symmetric positive semi-definite matrices by Newton–Schulz iteration.

    Parameters
    ----------
    cov : torch.Tensor
        ``(B, C, C)`` float32 covariance matrices.
    iterations : int
        Coupled iterations (the paper uses 5); GPU-friendly matrix products only, no eigendecomposition.

    Returns
    -------
    torch.Tensor
        ``(B, C, C)`` approximate ``cov^{1/2}``: the iteration runs on ``cov / trace(cov)`` (which makes it
        converge) and the result is rescaled by ``sqrt(trace)``.
    """
    channels = cov.shape[-1]
    trace = cov.diagonal(dim1=-2, dim2=-1).sum(-1).clamp_min(1e-12)[:, None, None]
    eye = torch.eye(channels, dtype=cov.dtype, device=cov.device).expand_as(cov)
    y, z = cov / trace, eye
    for _ in range(iterations):
        t = 0.5 * (3.0 * eye - z @ y)
        y, z = y @ t, t @ z
    return y * trace.sqrt()


class SecondOrderChannelAttention(nn.Module):
    """SOCA: channel weights from the square-rooted covariance of the features (global second-order pooling).

    Shapes
    ------
    ``(B, C, *S) → (B, C, *S)``.
    """

    def __init__(self, spatial_dims: int, channels: int, reduction: int, iterations: int) -> None:
        super().__init__()
        self.iterations = iterations
        self.squeeze = nn.Sequential(
            conv_nd(spatial_dims, channels, channels // reduction, 1), nn.ReLU(),
            conv_nd(spatial_dims, channels // reduction, channels, 1), nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Covariance and its square root in float32 even under autocast: the iteration is not fp16-safe.
        feats = x.flatten(2).float()
        centred = feats - feats.mean(dim=-1, keepdim=True)
        cov = centred @ centred.transpose(1, 2) / feats.shape[-1]
        descriptor = covariance_sqrt(cov, self.iterations).mean(dim=-1)
        weights = self.squeeze(descriptor.reshape(*descriptor.shape, *([1] * (x.ndim - 2))).to(x.dtype))
        return x * weights


class NonLocalBlock(nn.Module):
    """Embedded-Gaussian non-local block: ``x + W(softmax(θ(x)ᵀ φ(x)) g(x))`` over all positions of ``x``.

    Shapes
    ------
    ``(B, C, *S) → (B, C, *S)``; memory grows with ``(∏S)²``.
    """

    def __init__(self, spatial_dims: int, channels: int) -> None:
        super().__init__()
        inner = max(channels // 2, 1)
        self.theta = conv_nd(spatial_dims, channels, inner, 1)
        self.phi = conv_nd(spatial_dims, channels, inner, 1)
        self.g = conv_nd(spatial_dims, channels, inner, 1)
        self.out = conv_nd(spatial_dims, inner, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        theta = self.theta(x).flatten(2).transpose(1, 2)  # (B, N, C')
        phi = self.phi(x).flatten(2)  # (B, C', N)
        g = self.g(x).flatten(2).transpose(1, 2)  # (B, N, C')
        y = torch.softmax(theta @ phi, dim=-1) @ g
        y = y.transpose(1, 2).reshape(x.shape[0], -1, *x.shape[2:])
        return x + self.out(y)


class RegionNonLocal(nn.Module):
    """RL-NL: a non-local block applied separately inside each cell of a ``regions``-per-axis grid.

    Cells are contiguous; with sizes not divisible by ``regions`` the last cell of an axis is larger (no
    padding, so no invented voxels take part in the attention).

    Shapes
    ------
    ``(B, C, *S) → (B, C, *S)``.
    """

    def __init__(self, spatial_dims: int, channels: int, regions: int) -> None:
        super().__init__()
        self.block = NonLocalBlock(spatial_dims, channels)
        self.regions = regions

    def _split(self, x: torch.Tensor, dim: int) -> torch.Tensor:
        if dim == x.ndim:
            return self.block(x)
        n = x.shape[dim]
        parts = []
        for r in range(self.regions):
            start, stop = n * r // self.regions, n * (r + 1) // self.regions
            parts.append(self._split(x.narrow(dim, start, stop - start), dim + 1))
        return torch.cat(parts, dim=dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._split(x, 2)


class LocalSourceResidualGroup(nn.Module):
    """LSRAG: ``x + conv(SOCA(RB_M(… RB_1(x))))``.

    Shapes
    ------
    ``(B, C, *S) → (B, C, *S)``.
    """

    def __init__(self, spatial_dims: int, features: int, n_blocks: int, reduction: int, iterations: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            *(ResidualBlock(spatial_dims, features) for _ in range(n_blocks)),
            SecondOrderChannelAttention(spatial_dims, features, reduction, iterations),
            conv_nd(spatial_dims, features, features),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


@register_model("san", paper="Dai, Cai, Zhang, Xia, Zhang. Second-Order Attention Network for Single Image "
                "Super-Resolution. CVPR 2019.", year=2019)
class SAN(ZooModel):
    """``conv`` → RL-NL → ``n_groups`` LSRAGs, each plus ``γ·F0`` (share-source skip) → RL-NL → conv, + F0 →
    sub-pixel stages → ``conv``.

    Parameters
    ----------
    spatial_dims, in_channels, out_channels, scale
        See :class:`~sciSR.models.base.ZooModel`.
    n_groups : int
        LSRAGs (20).
    n_blocks : int
        Residual blocks per LSRAG (10).
    features : int
        Feature channels (64).
    reduction : int
        SOCA reduction ratio (16).
    regions : int
        RL-NL grid cells per axis (2: 2×2 in 2D, 2×2×2 in 3D).
    iterations : int
        Newton–Schulz iterations of the covariance square root (5).

    Notes
    -----
    Covariance pooling and non-local attention see whole images/cells (``spec.global_pooling``): tiles
    do not reproduce the whole-image result, and RL-NL memory grows with the square of the cell size.

    Shapes
    ------
    ``(B, in_channels, *S) → (B, out_channels, *S·s)``.
    """

    @classmethod
    def spec_abilities(cls, options: Mapping[str, Any]) -> dict[str, Any]:
        """Covariance pooling and non-local attention see whole images: ``global_pooling=True``."""
        del options
        return {"global_pooling": True}

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int, scale: Sequence[int], *,
                 n_groups: int = 20, n_blocks: int = 10, features: int = 64, reduction: int = 16,
                 regions: int = 2, iterations: int = 5) -> None:
        super().__init__(spatial_dims, in_channels, out_channels, scale)
        if features < reduction:
            raise SciSRError(f"san needs features ≥ reduction ({features} < {reduction})")
        self.head = conv_nd(spatial_dims, in_channels, features)
        self.non_local_in = RegionNonLocal(spatial_dims, features, regions)
        self.groups = nn.ModuleList(LocalSourceResidualGroup(spatial_dims, features, n_blocks, reduction, iterations)
                                    for _ in range(n_groups))
        # Share-source skip weight, learned and shared by all groups; zero start = plain residual groups.
        self.gamma = nn.Parameter(torch.zeros(1))
        self.non_local_out = RegionNonLocal(spatial_dims, features, regions)
        self.body_tail = conv_nd(spatial_dims, features, features)
        self.upsample = Upsampler(spatial_dims, features, self.scale)
        self.tail = conv_nd(spatial_dims, features, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f0 = self.head(x)
        h = self.non_local_in(f0)
        for group in self.groups:
            h = group(h) + self.gamma * f0
        h = self.body_tail(self.non_local_out(h))
        return self.tail(self.upsample(f0 + h))
