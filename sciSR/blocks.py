"""Block binning and its adjoint (replication) on the FOV-preserving grid.

The core block operations that readers/writers (FITS error maps), the flux projection and the
degradations (:mod:`sciSR.degrade`, where binning is the simplest forward model) all share.

A block of ``s`` high-resolution voxels spans exactly one low-resolution voxel, so the LR voxel ``n``
is centred on HR position ``s·n + (s − 1)/2``, as :mod:`sciSR.geometry` requires.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from sciSR.errors import SciSRError


def bin_array(array: np.ndarray, scale: Sequence[int], reduce: str = "mean") -> np.ndarray:
    """Sum or average non-overlapping blocks over the leading ``len(scale)`` axes.

    Parameters
    ----------
    array : numpy.ndarray
        ``(*spatial, ...)``; trailing axes (channels) are kept.
    scale : sequence of int
        Block size per spatial axis. Each spatial size must be a multiple of its factor.
    reduce : str
        ``"mean"`` (intensities, surface brightness) or ``"sum"`` (counts: flux conserved).

    Returns
    -------
    numpy.ndarray
        ``(*spatial / scale, ...)``, float64 for ``"sum"`` precision, else the input float dtype.
    """
    if reduce not in ("mean", "sum"):
        raise SciSRError(f"reduce must be 'mean' or 'sum', got {reduce!r}")
    shape: list[int] = []
    for n, s in zip(array.shape, scale, strict=False):
        if n % s:
            raise SciSRError(f"size {array.shape[: len(scale)]} is not a multiple of the scale {tuple(scale)}")
        shape += [n // s, s]
    blocks = array.reshape(*shape, *array.shape[len(scale):])
    axes = tuple(range(1, 2 * len(scale), 2))
    return blocks.sum(axis=axes, dtype=np.float64) if reduce == "sum" else blocks.mean(axis=axes)


def replicate(array: np.ndarray, scale: Sequence[int]) -> np.ndarray:
    """Nearest-neighbour upsampling (the adjoint of a block sum): each voxel becomes a block.

    Parameters
    ----------
    array : numpy.ndarray
        ``(*spatial, ...)``.
    scale : sequence of int
        Factor per leading spatial axis.

    Returns
    -------
    numpy.ndarray
        ``(*spatial·scale, ...)``.
    """
    for axis, s in enumerate(scale):
        array = np.repeat(array, s, axis=axis)
    return array


def overlap_matrix(n_in: int, n_out: int) -> Any:
    """Sparse ``(n_out, n_in)`` matrix of pixel overlaps of two FOV-preserving grids along one axis.

    Entry ``(j, i)`` is the share of input pixel ``i`` that falls inside output pixel ``j`` (input pixel
    ``i`` spans ``[i, i + 1)``, output pixel ``j`` spans ``[j, j + 1)·n_in/n_out``, both in input pixels),
    so every column sums to one.
    """
    from scipy import sparse

    width = n_in / n_out
    rows, cols, vals = [], [], []
    for j in range(n_out):
        lo, hi = j * width, (j + 1) * width
        for i in range(int(np.floor(lo)), min(n_in, int(np.ceil(hi)))):
            share = min(hi, i + 1) - max(lo, i)
            if share > 1e-12:
                rows.append(j)
                cols.append(i)
                vals.append(share)
    return sparse.csr_matrix((vals, (rows, cols)), shape=(n_out, n_in))


def overlap_resample(array: np.ndarray, shape: Sequence[int], mode: str) -> np.ndarray:
    """Resample the leading axes onto ``shape`` by pixel overlap: exact flux, any ratio of grid sizes.

    Parameters
    ----------
    array : numpy.ndarray
        ``(*spatial, ...)`` finite values; trailing axes (channels) are kept.
    shape : sequence of int
        New size of each spatial axis (FOV kept, docs/architecture.md §3).
    mode : str
        ``"conserve"``: values are counts per pixel; an input pixel's counts are shared out by overlap,
        so the total (and the sum over any region made of whole pixels of both grids) is exact.
        ``"mean"``: values are per unit area (surface brightness); an output pixel is the area-weighted
        mean of the input pixels it covers, so a constant stays constant.

    Returns
    -------
    numpy.ndarray
        float64 ``(*shape, ...)``.
    """
    if mode not in ("conserve", "mean"):
        raise SciSRError(f"overlap resampling keeps 'conserve' or 'mean' flux, got {mode!r}")
    out = np.asarray(array, dtype=np.float64)
    for axis, n_out in enumerate(shape):
        n_in = out.shape[axis]
        if int(n_out) == n_in:
            continue
        weights = overlap_matrix(n_in, int(n_out))
        if mode == "mean":
            weights = weights * (n_out / n_in)
        moved = np.moveaxis(out, axis, 0)
        columns = weights @ moved.reshape(n_in, -1)
        out = np.moveaxis(np.asarray(columns).reshape(int(n_out), *moved.shape[1:]), 0, axis)
    return out
