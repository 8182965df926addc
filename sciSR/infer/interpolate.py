"""Interpolation baselines on the FOV-preserving grid: nearest, linear, cubic B-spline and k-space zero-filling."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import numpy as np
from scipy import ndimage

from sciSR.consistency import ForwardModel, project
from sciSR.errors import SciSRError
from sciSR.paging import RELEASE_EVERY_BYTES, is_disk_backed, release_pages

# Name -> spline order. "zerofill" is no spline: its 3 is the order used where only a spline can
# resample (fusion of stacks onto another grid, sciSR.multi_input).
INTERPOLATORS = {"nearest": 0, "linear": 1, "cubic": 3, "zerofill": 3}
# Enough chunks per pass for responsive progress and cancel, few enough that scipy's per-call cost is nil.
CHUNKS_PER_PASS = 16
# scipy's spline prefilter along a very short axis is not an exact identity at zoom 1 (5e-4 at length 2,
# 1e-13 at 11), so a chunk never makes a short axis out of a long one.
MIN_CHUNK = 32
# The cubic B-spline prefilter is a recursive filter with pole z = √3 − 2 ≈ −0.268: a sample's influence
# falls as 0.268^n, below 1e-18 beyond 32 samples, so bands with 32 rows of context match the whole image.
SPLINE_MARGIN = 32


def _zoom_columns(x: np.ndarray, length: int, order: int) -> np.ndarray:
    """Resample every column of a 2D ``(n, n_columns)`` array along axis 0 to ``length`` rows (FOV kept)."""
    mode = "reflect" if order else "nearest"
    # With grid_mode scipy maps the outer voxel edges onto each other from the two lengths: any ratio works.
    zoom = length / x.shape[0]
    if x.shape[1] >= MIN_CHUNK:
        return ndimage.zoom(x, (zoom, 1.0), order=order, mode=mode, grid_mode=True, prefilter=order > 1)
    return np.stack([ndimage.zoom(x[:, c], zoom, order=order, mode=mode, grid_mode=True,
                                  prefilter=order > 1) for c in range(x.shape[1])], axis=1)


def interpolate(
    array: np.ndarray,
    scale: Sequence[int],
    method: str = "cubic",
    *,
    progress: Callable[[float], None] | None = None,
    cancel_check: Callable[[], None] | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Upsample the leading (spatial) axes of ``array`` by integer factors.

    Parameters
    ----------
    array : numpy.ndarray
        ``(*spatial, [C])``; axes after ``len(scale)`` (channels) are not scaled. Must be finite
        (mask NaNs before).
    scale : sequence of int
        Factor per spatial axis.
    method : str
        ``"nearest"`` (order 0), ``"linear"`` (order 1), ``"cubic"``: the interpolating cubic
        B-spline (order 3 with prefilter), which passes through the samples, or ``"zerofill"``:
        k-space zero padding (:func:`zerofill`, whole array at once, no chunks).
    progress : callable, optional
        Called with the fraction done after each chunk.
    cancel_check : callable, optional
        Called before each chunk; raises to stop.
    out : numpy.ndarray, optional
        float32 array of the result's shape to write into (e.g. a ``numpy.memmap``); the last pass
        writes into it chunk by chunk when its layout allows (C order), else the result is copied in.

    Returns
    -------
    numpy.ndarray
        float32 ``(*spatial·scale, [C])`` (``out`` when given). New voxel ``i'`` samples the input at
        ``(i' + 0.5)/s − 0.5`` (scipy ``grid_mode=True``), the grid of :mod:`sciSR.geometry`; borders
        are mirrored about the voxel edge.

    Notes
    -----
    Tensor-product B-splines are separable, so the image is resampled one scaled axis at a time, each
    pass in chunks of the other axes' voxels. This equals the joint resample (to float rounding), bounds
    the temporary memory by one chunk, and gives progress and cancel points on single-channel volumes.
    The final pass runs along the last scaled axis: its chunks are blocks of whole rows of a C-ordered
    ``out``, so each chunk touches only its own pages of a memory-mapped result. A memory-mapped ``out``
    is filled in bands of input rows with :data:`SPLINE_MARGIN` rows of context, so that memory holds
    one band, not the whole intermediate result.
    """
    if method == "zerofill":
        if cancel_check is not None:
            cancel_check()
        result = zerofill(array, scale)
        if progress is not None:
            progress(1.0)
        if out is None:
            return result
        out[...] = result
        return out
    order = INTERPOLATORS[method]
    x = np.asarray(array, dtype=np.float32)
    if out is not None and is_disk_backed(out):
        band = max(4 * SPLINE_MARGIN, RELEASE_EVERY_BYTES // max(1, out[: int(scale[0])].nbytes))
        if x.shape[0] > 2 * band:
            return _interpolate_in_bands(x, scale, method, out, band, progress, cancel_check)
    shape = tuple(int(n) * int(f) for n, f in zip(x.shape, scale, strict=False))
    return _resample_passes(x, shape, order, out, progress, cancel_check)


def resample_grid(
    array: np.ndarray,
    shape: Sequence[int],
    method: str = "cubic",
    *,
    progress: Callable[[float], None] | None = None,
    cancel_check: Callable[[], None] | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Resample the leading (spatial) axes of ``array`` onto ``shape`` voxels, field of view kept.

    The non-integer sibling of :func:`interpolate`, for grids chosen by voxel size (``spacing=``): new
    voxel ``i'`` samples the input at ``(i' + 0.5)·n/n' − 0.5`` (docs/architecture.md §3), one axis at a time.

    Parameters
    ----------
    array : numpy.ndarray
        ``(*spatial, [C])`` finite values.
    shape : sequence of int
        New size of each spatial axis (≥ 1; smaller than the input samples without antialiasing, so
        callers only shrink an axis a little, e.g. from a network's integer grid to a nearby one).
    method : str
        ``"nearest"``, ``"linear"`` or ``"cubic"`` (interpolating cubic B-spline).
    progress, cancel_check
        As for :func:`interpolate`.
    out : numpy.ndarray, optional
        float32 ``(*shape, [C])`` (e.g. a ``numpy.memmap``) that the last pass writes into, so a large
        result is never held twice.

    Returns
    -------
    numpy.ndarray
        float32 ``(*shape, [C])``: ``out`` when given.

    Raises
    ------
    SciSRError
        ``"zerofill"``, whose k-space padding needs an integer factor, or an ``out`` of another shape.
    """
    if method == "zerofill" or method not in INTERPOLATORS:
        raise SciSRError(f"{method!r} cannot resample onto a non-integer grid; use cubic, linear or nearest")
    x = np.asarray(array, dtype=np.float32)
    shape = tuple(int(n) for n in shape)
    if out is not None and tuple(out.shape) != (*shape, *x.shape[len(shape):]):
        raise SciSRError(f"out has shape {tuple(out.shape)}; the result has {(*shape, *x.shape[len(shape):])}")
    return _resample_passes(x, shape, INTERPOLATORS[method], out, progress, cancel_check)


def _resample_passes(x: np.ndarray, shape: tuple[int, ...], order: int, out: np.ndarray | None,
                     progress: Callable[[float], None] | None, cancel_check: Callable[[], None] | None
                     ) -> np.ndarray:
    """Resample axis by axis (the axes whose length changes), in chunks of the other axes' voxels."""
    passes = [(axis, n) for axis, n in enumerate(shape) if n != x.shape[axis]]
    if not passes:
        if progress is not None:
            progress(1.0)
        if out is None:
            return x.copy()
        out[...] = x
        return out
    for n_pass, (axis, length) in enumerate(passes):
        # One scaled axis at a time, as (length, columns) with every other axis folded into the columns.
        moved = np.moveaxis(x, axis, 0)
        columns = moved.reshape(moved.shape[0], -1)
        n = columns.shape[1]
        target = _columns_view(out, axis) if out is not None and n_pass == len(passes) - 1 else None
        result = np.empty((length, n), dtype=np.float32) if target is None else target
        n_chunks = max(1, min(CHUNKS_PER_PASS, n // MIN_CHUNK))
        bounds = np.linspace(0, n, n_chunks + 1).astype(int)
        for k, (lo, hi) in enumerate(itertools.pairwise(bounds)):
            if cancel_check is not None:
                cancel_check()
            result[:, lo:hi] = _zoom_columns(columns[:, lo:hi], length, order)
            if target is not None:
                release_pages(target)
            if progress is not None:
                progress((n_pass + (k + 1) / n_chunks) / len(passes))
        x = np.moveaxis(result.reshape(result.shape[0], *moved.shape[1:]), 0, axis)
    if out is None:
        return x
    if not np.shares_memory(x, out):
        out[...] = x
    return out


def zerofill(array: np.ndarray, scale: Sequence[int]) -> np.ndarray:
    """k-space zero padding: the band-limited upsampling an MR scanner does by reconstructing a larger matrix.

    The input's DFT fills the central block of a larger, otherwise empty spectrum with the phase ramp and
    scale of :func:`sciSR.degrade.mri.kspace_downsample`, so ``kspace_downsample(zerofill(y), scale)``
    returns ``y`` (non-negative ``y``; float32 rounding): it is the data-consistency projection
    (:func:`sciSR.consistency.project`, kind ``"kspace"``, no window) of an all-zero estimate.

    Parameters
    ----------
    array : numpy.ndarray
        ``(*spatial, [C])`` finite values; axes after ``len(scale)`` (channels) are not scaled.
    scale : sequence of int
        Factor per spatial axis.

    Returns
    -------
    numpy.ndarray
        float32 ``(*spatial·scale, [C])``, real. Memory: the whole output as a complex128 spectrum
        (16 bytes per output voxel) plus float64 copies; it does not work in chunks.

    Raises
    ------
    SciSRError
        Non-finite input (a NaN would spread over the whole image through the Fourier transform).
    """
    x = np.asarray(array, dtype=np.float64)
    if not np.isfinite(x).all():
        raise SciSRError("zero-filling needs finite values: fill or mask NaN and infinite voxels first")
    factors = tuple(int(s) for s in scale)
    shape = tuple(n * s for n, s in zip(x.shape, factors, strict=False)) + x.shape[len(factors):]
    return project(np.zeros(shape), x, ForwardModel("kspace", factors)).astype(np.float32)


def _interpolate_in_bands(x: np.ndarray, scale: Sequence[int], method: str, out: np.ndarray, band: int,
                          progress: Callable[[float], None] | None,
                          cancel_check: Callable[[], None] | None) -> np.ndarray:
    """Interpolate ``band`` input rows at a time into ``out``; each band's written pages go back to the OS."""
    margin = SPLINE_MARGIN if INTERPOLATORS[method] > 1 else 2
    s0, n = int(scale[0]), x.shape[0]
    starts = range(0, n, band)
    for k, start in enumerate(starts):
        stop = min(n, start + band)
        lo, hi = max(0, start - margin), min(n, stop + margin)
        part = interpolate(x[lo:hi], scale, method, cancel_check=cancel_check)
        out[start * s0 : stop * s0] = part[(start - lo) * s0 : (stop - lo) * s0]
        release_pages(out)
        if progress is not None:
            progress((k + 1) / len(starts))
    return out


def _columns_view(out: np.ndarray, axis: int) -> np.ndarray | None:
    """``out`` as (length along ``axis``, columns) without a copy, or None if its layout does not allow it."""
    try:
        return np.moveaxis(out, axis, 0).reshape(out.shape[axis], -1, copy=False)
    except ValueError:
        return None
