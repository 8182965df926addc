"""Base classes: every zoo network carries a frozen :class:`~sciSR.models.spec.ModelSpec` as ``spec``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
from torch import nn

from sciSR.errors import SciSRError
from sciSR.models.blocks import FOVInterpolate
from sciSR.models.spec import ModelSpec


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
    options : Mapping, optional
        The architecture options :meth:`spec_abilities` reads (subclasses whose abilities depend on
        their options pass them).

    Attributes
    ----------
    kind : str
        Class attribute: the registry kind (see :class:`~sciSR.models.spec.ModelSpec`).
    spec : ModelSpec
        What the network is and what inference may assume about it; ``arch`` is the class name until
        :func:`sciSR.models.create_model` sets the registry name.
    scale, spatial_dims, in_channels, out_channels
        Read-only views of ``spec``.
    card : dict
        Recipe to rebuild the network, filled in by :func:`sciSR.models.create_model`.
    """

    kind: ClassVar[str] = "post"

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int, scale: int | Sequence[int],
                 *, options: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        if spatial_dims not in (2, 3):
            raise SciSRError(f"spatial_dims must be 2 or 3, got {spatial_dims!r}")
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SciSRError(f"{name} must be a positive integer, got {value!r}")
        self.spec = ModelSpec(arch=type(self).__name__.lower(), scale=scale, spatial_dims=spatial_dims,
                              in_channels=in_channels, out_channels=out_channels, kind=self.kind,
                              **self.spec_abilities(options or {}))
        self.card: dict[str, Any] = {}

    @classmethod
    def spec_abilities(cls, options: Mapping[str, Any]) -> dict[str, Any]:
        """The :class:`~sciSR.models.spec.ModelSpec` fields this architecture sets beyond shape and kind.

        The one place a family states its abilities (``inputs``, ``input_on_output_grid``,
        ``global_pooling``, ``window_multiple``, ...): the constructor and
        :func:`sciSR.models.spec_from_card` (which builds no network)
        both read it.

        Parameters
        ----------
        options : Mapping
            The architecture's keyword options (paper defaults updated with the caller's).

        Returns
        -------
        dict
            Keyword arguments of :class:`~sciSR.models.spec.ModelSpec`; none for a plain local network.
        """
        del options
        return {}

    @property
    def scale(self) -> tuple[int, ...]:
        """Upscaling factor per spatial axis (``spec.scale``)."""
        return self.spec.scale

    @property
    def spatial_dims(self) -> int:
        """2 or 3 (``spec.spatial_dims``)."""
        return self.spec.spatial_dims

    @property
    def in_channels(self) -> int:
        """Input channels (``spec.in_channels``)."""
        return self.spec.in_channels

    @property
    def out_channels(self) -> int:
        """Output channels (``spec.out_channels``)."""
        return self.spec.out_channels


class PostUpsamplingModel(ZooModel):
    """The post-upsampling skeleton: ``head`` → ``body`` → long skip → ``upsample`` → ``tail``.

    Subclasses (EDSR, RCAN, SRResNet, RRDBNet) set the four modules, in this order, under these names
    (they are the state-dict keys of the shipped weights).

    Shapes
    ------
    ``head``: ``(B, in, *S) → (B, F, *S)``; ``body``: ``(B, F, *S) → (B, F, *S)``; ``upsample``:
    ``(B, F, *S) → (B, F, *S·s)``; ``tail``: ``(B, F, *S·s) → (B, out, *S·s)``. Overall
    ``(B, in_channels, *S) → (B, out_channels, *S·s)``.
    """

    head: nn.Module
    body: nn.Module
    upsample: nn.Module
    tail: nn.Module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        head = self.head(x)
        return self.tail(self.upsample(self.body(head).add_(head)))


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
