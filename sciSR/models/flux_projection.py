"""Exact flux projection as a torch layer, for training and inference of sky models.

The math is :func:`sciSR.flux.project_blocks` (shared with the numpy :func:`sciSR.flux.enforce_flux`),
so a network trained with this layer sees exactly the correction :func:`sciSR.upscale` applies.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from sciSR.errors import SciSRError
from sciSR.flux import project_blocks
from sciSR.geometry import normalize_scale

# Network units in which a block mean of linear values can be enforced exactly.
SPACES = ("linear", "asinh")


class FluxProjection(nn.Module):
    """``SR += U(LR − D_sum(SR)) / ∏s`` (``"conserve"``) or ``SR += U(LR − D_mean(SR))`` (``"mean"``).

    Parameters
    ----------
    scale : int or sequence of int
        Factor per spatial axis (2 or 3 axes).
    mode : str
        ``"conserve"`` (block sums equal the input) or ``"mean"`` (block means equal the input).
    space : str
        ``"linear"``: the tensors are the physical values or an affine map of them (percentile or
        CT-window normalisation; affine maps commute with block means). ``"asinh"``: the tensors are
        ``asinh((x − b)/c)`` (sky normalisation of :mod:`sciSR.intensity`); the projection runs on
        ``sinh`` of them, where ``b`` and ``c`` drop out of a block mean, and ``asinh`` is applied back.
        In ``"asinh"`` space only ``"mean"`` is exact (a block sum of ``(x − b)/c`` carries ``∏s·b``).

    Shapes
    ------
    ``forward(sr, lr)``: ``sr`` ``(B, C, *S·s)``, ``lr`` ``(B, C, *S)`` → ``(B, C, *S·s)``.
    """

    def __init__(self, scale: int | Sequence[int], mode: str = "mean", space: str = "linear") -> None:
        super().__init__()
        if mode not in ("conserve", "mean"):
            raise SciSRError(f"flux projection mode must be 'conserve' or 'mean', got {mode!r}")
        if space not in SPACES:
            raise SciSRError(f"flux projection space must be one of {SPACES}, got {space!r}")
        if space == "asinh" and mode == "conserve":
            raise SciSRError("in asinh units only block means can be projected exactly; train with mode 'mean' "
                             "on LR-pixel units (HR × ∏s, as the sky data pipeline does)")
        dims = 1 if isinstance(scale, int) else len(tuple(scale))
        self.scale = normalize_scale(scale, dims)
        self.mode, self.space = mode, space

    def forward(self, sr: torch.Tensor, lr: torch.Tensor) -> torch.Tensor:
        lead = sr.ndim - len(self.scale)
        if lead < 0 or lr.ndim != sr.ndim:
            raise SciSRError(f"flux projection needs (B, C, *spatial) tensors, got {tuple(sr.shape)} and "
                             f"{tuple(lr.shape)}")
        # float32 block sums of ~1e4 values lose digits: project in float64, return the input dtype.
        high, low = sr.to(torch.float64), lr.to(torch.float64)
        if self.space == "asinh":
            return torch.asinh(project_blocks(torch.sinh(high), torch.sinh(low), self.scale, self.mode)).to(sr.dtype)
        return project_blocks(high, low, self.scale, self.mode).to(sr.dtype)

    def hook(self, module: nn.Module, args: tuple[Any, ...], output: torch.Tensor) -> torch.Tensor:
        """Forward hook: project ``module``'s output onto its first input (see :func:`attach`)."""
        del module
        return self(output, args[0])

    def extra_repr(self) -> str:
        return f"scale={self.scale}, mode={self.mode!r}, space={self.space!r}"


def attach(net: nn.Module, mode: str, space: str = "linear") -> FluxProjection:
    """Make every forward pass of ``net`` end with the exact flux projection.

    A forward hook, not a wrapper: the state dict (and so the ``.safetensors`` model file) and the
    attributes inference relies on (``scale``, ``spatial_dims``, ``card``) stay those of ``net``; copies
    made for EMA or DDP keep the hook. Saved models do not carry it: :func:`sciSR.upscale` applies the
    same projection (:func:`sciSR.flux.enforce_flux`) in physical units.

    Parameters
    ----------
    net : torch.nn.Module
        A zoo network with ``scale`` (one factor per spatial axis).
    mode, space : str
        See :class:`FluxProjection`.

    Returns
    -------
    FluxProjection
        The attached layer.
    """
    projection = FluxProjection(net.scale, mode, space)
    net.register_forward_hook(projection.hook)
    return projection
