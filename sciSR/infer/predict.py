"""Apply a network to a whole image: channel handling, plane-by-plane 2D on volumes, tiling."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from torch import nn

from sciSR.errors import SciSRError
from sciSR.infer.tiled import predict_tiled


def plan_axes(model_dims: int, model_scale: Sequence[int], image_scale: Sequence[int] | None,
              spatial_ndim: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Which image axes the model runs over, and the full per-axis image scale.

    Parameters
    ----------
    model_dims : int
        2 or 3.
    model_scale : sequence of int
        The factors the model produces, one per model axis.
    image_scale : sequence of int or None
        Requested factor per image spatial axis; None means the model's own (a 2D model on a volume
        then runs on the planes of the first two axes).
    spatial_ndim : int
        Spatial axes of the image.

    Returns
    -------
    model_axes : tuple of int
        Image axes fed to the model, in order.
    scale : tuple of int
        Factor per image spatial axis.

    Raises
    ------
    SciSRError
        A 3D model on a 2D image, or a scale the model cannot produce (never a silent resample).
    """
    model_scale = tuple(model_scale)
    if model_dims > spatial_ndim:
        raise SciSRError(f"a {model_dims}D model cannot run on a {spatial_ndim}D image")
    if image_scale is None:
        return tuple(range(model_dims)), model_scale + (1,) * (spatial_ndim - model_dims)
    image_scale = tuple(image_scale)
    if model_dims == spatial_ndim:
        if image_scale != model_scale:
            raise SciSRError(f"the model produces scale {model_scale}, not the requested {image_scale}")
        return tuple(range(model_dims)), image_scale
    # A 2D model on a volume: the plane must contain every scaled axis, with the model's factors.
    scaled = [a for a, s in enumerate(image_scale) if s > 1]
    pairs = [(a, b) for a in range(spatial_ndim) for b in range(a + 1, spatial_ndim)]
    # Planes in the volume's order first; then transposed ones, so that a through-plane model (scale (1, 4))
    # also reaches thick slices on axis 0 (the model axes are moved into place whatever their order).
    candidates = [axes for axes in pairs + [(b, a) for a, b in pairs] if set(scaled) <= set(axes)]
    for axes in candidates:
        if tuple(image_scale[a] for a in axes) == model_scale:
            return axes, image_scale
    raise SciSRError(
        f"the 2D model produces scale {model_scale}; no plane of the volume gets the requested {image_scale}")


def predict_array(
    model: nn.Module,
    array: np.ndarray,
    spatial_ndim: int,
    scale: Sequence[int] | None = None,
    *,
    tile: int | Sequence[int] | None = None,
    device: str = "auto",
    progress: Callable[[float], None] | None = None,
    cancel=None,
    out: np.ndarray | None = None,
    transform: Callable[[np.ndarray], np.ndarray] | None = None,
    precision: str = "fp32",
    compile_model: bool | None = None,
) -> tuple[np.ndarray, tuple[int, ...]]:
    """Run ``model`` over a normalised image of any supported layout.

    Parameters
    ----------
    model : nn.Module
        With ``scale``, ``spatial_dims``, ``in_channels`` (see :func:`sciSR.models.create_model`).
    array : numpy.ndarray
        float32 ``(*spatial, [C])``; a trailing channel axis exists when ``array.ndim > spatial_ndim``.
    spatial_ndim : int
        Number of spatial axes.
    scale : sequence of int, optional
        Requested factor per spatial axis (see :func:`plan_axes`).
    tile, device, progress, cancel, transform, precision, compile_model
        Passed to :func:`sciSR.infer.tiled.predict_tiled`; ``tile`` is in input voxels of the model axes,
        ``precision`` is ``"fp32"``, ``"bf16"`` or ``"fp16"`` (resolved, see
        :func:`sciSR.infer.precision.resolve_precision`). The compile decision weighs all slabs (planes,
        channels) of the image, not just one.
    out : numpy.ndarray, optional
        float32 array of the output shape to write into (e.g. a ``numpy.memmap`` for results larger
        than RAM); returned as ``out``.

    Returns
    -------
    out : numpy.ndarray
        float32 ``(*spatial·scale, [C])``.
    scale : tuple of int
        The factor applied per spatial axis.
    """
    dims = int(model.spatial_dims)
    model_axes, full_scale = plan_axes(dims, model.scale, scale, spatial_ndim)
    has_channels = array.ndim > spatial_ndim
    x = array if has_channels else array[..., np.newaxis]
    n_channels = x.shape[-1]
    in_channels = int(model.in_channels)
    if in_channels not in (n_channels, 1):
        raise SciSRError(f"the model takes {in_channels} channel(s); the image has {n_channels}")
    groups = [slice(None)] if in_channels == n_channels else [slice(c, c + 1) for c in range(n_channels)]

    other_axes = [a for a in range(spatial_ndim) if a not in model_axes]
    # (C, *model axes) slabs: move the model axes to the front, other spatial axes after, channels last.
    order = list(model_axes) + other_axes + [spatial_ndim]
    moved = np.transpose(x, order)
    rest_shape = moved.shape[dims:-1]
    out_model_shape = tuple(moved.shape[i] * full_scale[a] for i, a in enumerate(model_axes))
    # A multi-input bundle (stacks or a packed reference, sciSR.fusion) returns fewer channels than it takes.
    n_out = int(getattr(model, "out_channels", n_channels)) if len(groups) == 1 else n_channels
    expected = out_model_shape + rest_shape + (n_out,)
    if out is None:
        target_array = np.empty(expected, dtype=np.float32)
    else:
        wanted = tuple(np.array(expected)[np.argsort(order)][: out.ndim])
        if tuple(out.shape) != wanted:
            raise SciSRError(f"out has shape {tuple(out.shape)}; the result has shape {wanted}")
        target_array = np.transpose(out if has_channels else out[..., np.newaxis], order)
    positions = list(np.ndindex(*rest_shape)) if rest_shape else [()]
    total = len(positions) * len(groups)
    done = 0
    for pos in positions:
        for group in groups:
            slab = moved[(Ellipsis, *pos, group)] if pos else moved[..., group]
            slab = np.ascontiguousarray(np.moveaxis(slab, -1, 0))

            def report(fraction: float, _done: int = done) -> None:
                if progress is not None:
                    progress((_done + fraction) / total)

            target = (Ellipsis, *pos, group) if pos else (Ellipsis, group)
            # The prediction goes straight into its place in the result (no window-sized copy).
            predict_tiled(model, slab, tuple(full_scale[a] for a in model_axes), tile=tile, device=device,
                          progress=report, cancel=cancel, out=np.moveaxis(target_array[target], -1, 0),
                          transform=transform, precision=precision, compile_model=compile_model,
                          expected_calls=total - done)
            done += 1
    if out is not None:
        return out, full_scale
    result = np.transpose(target_array, np.argsort(order))
    return (result if has_channels else result[..., 0]), full_scale
