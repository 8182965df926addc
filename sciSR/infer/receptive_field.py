"""How far an output voxel of a network looks into its input: the receptive-field radius per axis.

Tiled prediction is exact for a local network when every tile reaches at least the radius ``r`` beyond
the output it keeps (see :mod:`sciSR.infer.tiled`). The radius is measured once per model and cached
on it: the gradient of one central output block with respect to a random input is non-zero exactly on
the inputs that block depends on. A network can also declare it (``spec.receptive_field``, see
:func:`sciSR.models.spec_of`), and networks with global pooling (channel attention in RCAN/SAN,
``spec.global_pooling``) have no finite radius: they are flagged and given a cap, because no tiling
reproduces their whole-image output exactly.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn

from sciSR.errors import SciSRError
from sciSR.models.spec import ModelSpec, spec_of

GLOBAL_POOLING_RADIUS = 32
"""Radius (input voxels) used for a network with global pooling: its tiles blend over 2× this."""

MAX_PROBE_RADIUS = 512
"""A support still reaching the probe border at this radius is taken as global (input voxels)."""

_FIRST_PROBE_RADIUS = 8
_THIN_RADIUS = 4  # half-width of the probe across the measured axis; a conv path along the axis needs none
_TRIALS = 2  # independent random inputs: a ReLU can zero one path's gradient, rarely all paths twice
_CACHE_ATTR = "_scisr_receptive_field"
_ADAPTIVE_POOLS = (
    nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
    nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d,
)


class ReceptiveField(NamedTuple):
    """Receptive field of a network around one output voxel.

    Attributes
    ----------
    radius : tuple of int
        Per spatial axis, in INPUT voxels: the output voxels of input voxel ``i`` depend on input
        voxels ``i - radius .. i + radius`` only (for a global axis: the cap).
    global_pooling : bool
        True when some output depends on the whole input (global pooling / attention over the whole
        image); ``radius`` is then a cap and tiled prediction only approximates the whole-image one.
    """

    radius: tuple[int, ...]
    global_pooling: bool


def receptive_field_radius(
    model: nn.Module,
    spatial_dims: int,
    scale: Sequence[int],
    in_channels: int,
    *,
    global_cap: int = GLOBAL_POOLING_RADIUS,
    max_radius: int = MAX_PROBE_RADIUS,
) -> ReceptiveField:
    """Receptive-field radius of ``model`` per spatial axis, in input voxels.

    Parameters
    ----------
    model : torch.nn.Module
        Maps ``(N, in_channels, *spatial)`` to ``(N, C_out, *spatial·scale)``. Its spec
        (:func:`sciSR.models.spec_of`; a plain module declares these as attributes) may give
        ``receptive_field`` (the radius in input voxels per axis) to skip the measurement, and
        ``global_pooling`` (then a declared ``receptive_field`` is the cap).
    spatial_dims : int
        2 or 3.
    scale : sequence of int
        Upscaling factor per spatial axis.
    in_channels : int
        Input channels of the model.
    global_cap : int
        Radius returned on the axes of a network with global pooling, in input voxels.
    max_radius : int
        Largest radius probed before an axis is taken as global, in input voxels.

    Returns
    -------
    ReceptiveField
        ``radius`` (one int per axis) and ``global_pooling``. Cached on the model per
        ``(spatial_dims, scale, in_channels)``.

    Notes
    -----
    The measurement runs the model in eval mode on the device and dtype of its parameters. Along each
    axis it feeds a thin random input (``2g+1`` voxels along the axis, 9 across), takes the gradient of
    the output block of the central input voxel (all ``prod(scale)`` output voxels, weighted randomly so
    nothing cancels) and reads off the extent of the non-zero gradient; if that touches the probe's
    border the probe doubles, up to ``max_radius``. A network whose support reaches the border at every
    size, or that contains an adaptive (global) pooling layer, is flagged ``global_pooling``. The
    gradient of the farthest input runs through one chain of activations per path; two independent
    inputs make a ReLU-zeroed underestimate unlikely, and the cosine ramp of the tile weights makes a
    one-voxel underestimate negligible anyway.
    """
    scale = tuple(int(s) for s in scale)
    if len(scale) != spatial_dims:
        raise SciSRError(f"scale {scale} has {len(scale)} factors for a {spatial_dims}D model")
    key = (spatial_dims, scale, int(in_channels), int(global_cap), int(max_radius))
    cache = model.__dict__.setdefault(_CACHE_ATTR, {})
    if key in cache:
        return cache[key]

    spec = spec_of(model, spatial_dims=spatial_dims, scale=scale, in_channels=in_channels)
    declared = spec.receptive_field
    if spec.global_pooling or _has_adaptive_pooling(model):
        cap = global_cap if declared is None else declared
        result = ReceptiveField(_per_axis(cap, spatial_dims), True)
    elif declared is not None:
        result = ReceptiveField(_per_axis(declared, spatial_dims), False)
    else:
        radius = [_measure_axis(model, spatial_dims, scale, int(in_channels), a, max_radius)
                  for a in range(spatial_dims)]
        result = ReceptiveField(tuple(global_cap if r is None else r for r in radius),
                                any(r is None for r in radius))
        _record_in_card(model, scale, result)
    cache[key] = result
    return result


def _record_in_card(model: nn.Module, scale: tuple[int, ...], rf: ReceptiveField) -> None:
    """Declare a measured finite radius in the model's spec and card (``card["spec"]["receptive_field"]``).

    A model file saved from this model (:func:`sciSR.hub.save_model` writes ``model.spec``) then declares
    it, and every later load (a Dask worker, a new process) skips the measurement. Only for the model's own
    scale: the spec describes that one.
    """
    spec = getattr(model, "spec", None)
    if rf.global_pooling or not isinstance(spec, ModelSpec) or spec.scale != scale:
        return
    model.spec = dataclasses.replace(spec, receptive_field=rf.radius)
    card = getattr(model, "card", None)
    if isinstance(card, dict) and isinstance(card.get("spec"), dict):
        card["spec"] = {**card["spec"], "receptive_field": list(rf.radius)}


def _per_axis(value: int | Sequence[int], spatial_dims: int) -> tuple[int, ...]:
    values = (int(value),) * spatial_dims if isinstance(value, int) else tuple(int(v) for v in value)
    if len(values) != spatial_dims or min(values) < 0:
        raise SciSRError(f"receptive_field {value!r} must be a non-negative int or one per spatial axis "
                         f"({spatial_dims})")
    return values


def _has_adaptive_pooling(model: nn.Module) -> bool:
    # An adaptive pool has a fixed output size whatever the input: its outputs see the whole input.
    return any(isinstance(m, _ADAPTIVE_POOLS) for m in model.modules())


def _measure_axis(model: nn.Module, spatial_dims: int, scale: tuple[int, ...], in_channels: int,
                  axis: int, max_radius: int) -> int | None:
    """Radius along ``axis`` in input voxels, or None when the support spans every probe size."""
    g = min(_FIRST_PROBE_RADIUS, max_radius)
    while True:
        size = [2 * _THIN_RADIUS + 1] * spatial_dims
        size[axis] = 2 * g + 1
        lo, hi = _support(model, size, scale, in_channels, axis)
        if lo is None:
            return 0
        if lo > 0 and hi < 2 * g:
            return max(g - lo, hi - g)
        if g >= max_radius:
            return None
        g = min(2 * g, max_radius)


def _support(model: nn.Module, size: list[int], scale: tuple[int, ...], in_channels: int,
             axis: int) -> tuple[int | None, int | None]:
    """First and last input index along ``axis`` on which the central output block depends."""
    param = next((p for p in model.parameters() if p.is_floating_point()), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None else torch.float32
    centre = [n // 2 for n in size]
    block = (slice(None), slice(None),
             *(slice(c * s, (c + 1) * s) for c, s in zip(centre, scale, strict=True)))
    expected = tuple(n * s for n, s in zip(size, scale, strict=True))
    reached = torch.zeros(size[axis], dtype=torch.bool)
    was_training = model.training
    model.eval()
    try:
        # Callers may sit inside torch.inference_mode, where no gradient can be recorded.
        with torch.inference_mode(False), torch.enable_grad():
            for trial in range(_TRIALS):
                gen = torch.Generator().manual_seed(trial)
                x = torch.rand((1, in_channels, *size), generator=gen).to(device, dtype).requires_grad_(True)
                y = model(x)
                if tuple(y.shape[2:]) != expected:
                    raise SciSRError(f"the model maps a {tuple(size)} input to {tuple(y.shape[2:])}, not "
                                     f"{expected}: it does not produce scale {scale}")
                target = y[block].float()
                weights = torch.rand(target.shape, generator=gen).to(target.device) + 0.5
                (grad,) = torch.autograd.grad((target * weights).sum(), x)
                others = tuple(d for d in range(grad.ndim) if d != axis + 2)
                reached |= grad.abs().float().amax(dim=others).cpu() > 0
    finally:
        model.train(was_training)
    index = torch.nonzero(reached).flatten()
    if index.numel() == 0:
        return None, None
    return int(index[0]), int(index[-1])
