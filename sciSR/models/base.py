"""Base classes: the attributes every zoo network carries for inference and model files."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import nn

from sciSR.errors import SciSRError
from sciSR.geometry import normalize_scale
from sciSR.models.blocks import FOVInterpolate


class ZooModel(nn.Module):
    """A network of the registry; built by :func:`sciSR.models.create_model`.

    Parameters
    ----------
    spatial_dims : int
        2 (slices, frames: ``(B, C, H, W)``) or 3 (volumes: ``(B, C, D, H, W)``).
    in_channels, out_channels : int
        Channels of the input and of the output.
    scale : int or sequence of int
        Upscaling factor per spatial axis.

    Attributes
    ----------
    kind : str
        ``"pre"`` (interpolates first, then refines), ``"post"`` (upsamples at the end),
        ``"progressive"`` (×2 pyramid levels), ``"fusion"`` (several stacks already on the output grid),
        ``"reference"`` (low-res input plus a high-res reference) or ``"discriminator"``.
    global_pooling : bool
        True when an output voxel depends on the whole input (channel attention over global statistics,
        non-local attention), so tiled inference cannot reproduce the whole-image result exactly.
    window_multiple : int
        Spatial sizes the network pads internally to a multiple of (1: none); tiles aligned to it avoid
        the padding.
    scale : tuple of int
        One factor per spatial axis.
    card : dict
        Recipe to rebuild the network, filled in by :func:`sciSR.models.create_model`.
    """

    kind: ClassVar[str] = "post"
    global_pooling: ClassVar[bool] = False

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int, scale: int | Sequence[int]) -> None:
        super().__init__()
        if spatial_dims not in (2, 3):
            raise SciSRError(f"spatial_dims must be 2 or 3, got {spatial_dims!r}")
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SciSRError(f"{name} must be a positive integer, got {value!r}")
        self.spatial_dims = spatial_dims
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.scale = normalize_scale(scale, spatial_dims)
        self.window_multiple = 1
        self.card: dict[str, Any] = {}


class PreUpsamplingModel(ZooModel):
    """Interpolate on the FOV-preserving grid (:func:`~sciSR.models.blocks.interpolate_fov`), then refine.

    Subclasses set ``self.body`` (``(B, in, *S·s) → (B, out, *S·s)``) and ``self.residual`` (add the
    interpolated input to the body's output, as VDSR does).

    Shapes
    ------
    ``(B, in_channels, *S) → (B, out_channels, *S·s)``.
    """

    kind: ClassVar[str] = "pre"

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int, scale: int | Sequence[int],
                 *, residual: bool) -> None:
        super().__init__(spatial_dims, in_channels, out_channels, scale)
        if residual and out_channels != in_channels:
            raise SciSRError(
                f"{type(self).__name__} adds its output to the interpolated input, so out_channels "
                f"({out_channels}) must equal in_channels ({in_channels})"
            )
        self.upsample = FOVInterpolate(self.scale)
        self.residual = residual
        self.body: nn.Module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        up = self.upsample(x)
        out = self.body(up)
        return up + out if self.residual else out


class Discriminator(ZooModel):
    """A GAN critic: ``(B, C, *S) → (B, 1)`` raw logits (apply the sigmoid in the loss, see
    :class:`sciSR.losses.GANLoss`). It takes no scale: ``scale`` is all ones and ``out_channels`` 1.
    """

    kind: ClassVar[str] = "discriminator"

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int = 1,
                 scale: int | Sequence[int] = 1) -> None:
        super().__init__(spatial_dims, in_channels, out_channels, scale)
        if any(s != 1 for s in self.scale):
            raise SciSRError(f"{type(self).__name__} is a discriminator and takes no scale (got {self.scale})")
        if out_channels != 1:
            raise SciSRError(f"{type(self).__name__} outputs one logit per image; out_channels must be 1")
