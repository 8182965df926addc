"""Block binning and its adjoint (replication) on the FOV-preserving grid.

The core block operations that readers/writers (FITS error maps), the flux projection and the
degradations (:mod:`sciSR.degrade`, where binning is the simplest forward model) all share.

A block of ``s`` high-resolution voxels spans exactly one low-resolution voxel, so the LR voxel ``n``
is centred on HR position ``s·n + (s − 1)/2``, as :mod:`sciSR.geometry` requires.
"""

from __future__ import annotations

from collections.abc import Sequence

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
