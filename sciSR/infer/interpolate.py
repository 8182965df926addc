"""Interpolation baselines on the FOV-preserving grid: nearest, linear and cubic B-spline."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy import ndimage

INTERPOLATORS = {"nearest": 0, "linear": 1, "cubic": 3}


def interpolate(
    array: np.ndarray,
    scale: Sequence[int],
    method: str = "cubic",
    *,
    progress: Callable[[float], None] | None = None,
    cancel_check: Callable[[], None] | None = None,
) -> np.ndarray:
    """Upsample the leading (spatial) axes of ``array`` by integer factors.

    Parameters
    ----------
    array : numpy.ndarray
        ``(*spatial, [C])``; axes after ``len(scale)`` (channels) are not scaled but processed one by
        one. Must be finite (mask NaNs before).
    scale : sequence of int
        Factor per spatial axis.
    method : str
        ``"nearest"`` (order 0), ``"linear"`` (order 1) or ``"cubic"``: the interpolating cubic
        B-spline (order 3 with prefilter), which passes through the samples.
    progress : callable, optional
        Called with the fraction done after each channel.
    cancel_check : callable, optional
        Called before each channel; raises to stop.

    Returns
    -------
    numpy.ndarray
        float32 ``(*spatial·scale, [C])``. New voxel ``i'`` samples the input at
        ``(i' + 0.5)/s − 0.5`` (scipy ``grid_mode=True``), the grid of :mod:`sciSR.geometry`; borders
        are mirrored about the voxel edge.
    """
    order = INTERPOLATORS[method]
    n_spatial = len(scale)
    trailing = array.shape[n_spatial:]
    flat = array.reshape(*array.shape[:n_spatial], -1).astype(np.float32, copy=False)
    out = np.empty(
        (*(n * s for n, s in zip(array.shape[:n_spatial], scale, strict=True)), flat.shape[-1]),
        dtype=np.float32,
    )
    # Channels one at a time bounds memory and gives progress/cancel points.
    for c in range(flat.shape[-1]):
        if cancel_check is not None:
            cancel_check()
        out[..., c] = ndimage.zoom(
            flat[..., c],
            tuple(float(s) for s in scale),
            order=order,
            mode="reflect" if order else "nearest",
            grid_mode=True,
            prefilter=order > 1,
        )
        if progress is not None:
            progress((c + 1) / flat.shape[-1])
    return out.reshape(out.shape[:n_spatial] + trailing)
