"""Resample an image onto another grid by world coordinates (its affine, or a sky frame's celestial WCS),
with a field-of-view mask.

This is the sampling half of multi-stack fusion and reference-guided SR: stacks with different
orientations and voxel sizes, dithered sky frames, or a reference with its own grid, are brought onto one
target grid. The
grid math (which source coordinate each target voxel sees) lives in :mod:`sciSR.geometry`; here it is
only evaluated, slab by slab, with ``scipy.ndimage.map_coordinates``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy import ndimage

from sciSR.errors import SciSRError
from sciSR.geometry import target_in_source_coordinates, wcs_target_in_source_coordinates
from sciSR.image import SciImage

ORDERS = (0, 1, 3)
# Target voxels per map_coordinates call: bounds the float64 coordinate arrays to ~50 MB.
SLAB_VOXELS = 2_000_000


def _as_affine3(affine: np.ndarray) -> np.ndarray:
    affine = np.asarray(affine, dtype=np.float64)
    if affine.shape != (4, 4):
        raise SciSRError(f"an affine must be (4, 4), got {affine.shape}")
    return affine


def resample_array(
    array: np.ndarray,
    source_affine: np.ndarray,
    target_affine: np.ndarray,
    target_shape: Sequence[int],
    *,
    order: int = 3,
    fill: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Sample ``array`` (on ``source_affine``) at every voxel centre of the target grid.

    Parameters
    ----------
    array : numpy.ndarray
        ``(*spatial, [C])`` source values with 2 or 3 spatial axes (``len(target_shape)`` of them);
        a trailing channel axis, if any, is resampled channel by channel.
    source_affine, target_affine : numpy.ndarray
        ``(4, 4)`` voxel index → world (same units, e.g. RAS+ mm). 2D grids are the plane ``k = 0``.
    target_shape : sequence of int
        Spatial shape of the target grid.
    order : int
        0 (nearest), 1 (linear) or 3 (interpolating cubic B-spline, prefiltered once).
    fill : float
        Value outside the source's field of view.

    Returns
    -------
    values : numpy.ndarray
        float32 ``(*target_shape, [C])``.
    inside : numpy.ndarray
        bool ``target_shape``: True where the target voxel centre lies inside the source's field of view
        (within the outer voxel edges, ``−0.5 ≤ coordinate ≤ n − 0.5`` on every axis; for 2D grids also
        within half a voxel of the source plane). Between the outermost voxel centre and its edge the
        source is mirrored about the edge, as the interpolation baselines do.
    """
    source_affine, target_affine = _as_affine3(source_affine), _as_affine3(target_affine)
    return _sample(array, target_shape, lambda rows: target_in_source_coordinates(target_affine, target_shape,
                                                                               source_affine, rows),
                   order=order, fill=fill)


def resample_to_wcs(
    array: np.ndarray,
    source_wcs: Any,
    target_wcs: Any,
    target_shape: Sequence[int],
    *,
    order: int = 3,
    fill: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Sample a 2D sky frame at every pixel centre of a target frame, by sky position (celestial WCSs).

    The interpolation counterpart of drizzle's overlap-area resampling: values are interpolated (no area
    factor), so a frame in counts per input pixel stays in counts per input pixel.

    Parameters
    ----------
    array : numpy.ndarray
        ``(H, W)`` source values.
    source_wcs, target_wcs : astropy.wcs.WCS
        Celestial WCSs of the source and target frames.
    target_shape : sequence of int
        ``(rows, columns)`` of the target frame.
    order, fill :
        As for :func:`resample_array`.

    Returns
    -------
    values : numpy.ndarray
        float32 ``target_shape``.
    inside : numpy.ndarray
        bool ``target_shape``: True where the target pixel centre falls within the source's outer pixel edges.
    """
    return _sample(array, target_shape, lambda rows: wcs_target_in_source_coordinates(target_wcs, target_shape,
                                                                                   source_wcs, rows),
                   order=order, fill=fill)


def _sample(array: np.ndarray, target_shape: Sequence[int], coordinates: Callable[[slice], np.ndarray], *,
            order: int, fill: float) -> tuple[np.ndarray, np.ndarray]:
    """Interpolate ``array`` at ``coordinates(rows)`` (source voxel coordinates of target rows), slab by slab."""
    if order not in ORDERS:
        raise SciSRError(f"resampling order must be one of {ORDERS}, got {order}")
    shape = tuple(int(n) for n in target_shape)
    ndim = len(shape)
    x = np.asarray(array)
    if x.ndim not in (ndim, ndim + 1):
        raise SciSRError(f"source array {x.shape} does not have {ndim} spatial axes (plus one channel axis at most)")
    channels = x.ndim > ndim
    x = x if channels else x[..., np.newaxis]
    src_shape = x.shape[:ndim]
    # Spline coefficients once per channel, so every slab samples the same continuous image.
    coeffs = [ndimage.spline_filter(x[..., c].astype(np.float64), order=order, mode="reflect") if order > 1
              else x[..., c].astype(np.float64) for c in range(x.shape[-1])]
    out = np.empty((*shape, x.shape[-1]), dtype=np.float32)
    inside = np.empty(shape, dtype=bool)
    per_row = max(1, int(np.prod(shape[1:])))
    step = max(1, SLAB_VOXELS // per_row)
    for start in range(0, shape[0], step):
        rows = slice(start, min(start + step, shape[0]))
        coords = coordinates(rows)
        ok = np.ones(coords.shape[1:], dtype=bool)
        for a in range(ndim):
            ok &= (coords[a] >= -0.5) & (coords[a] <= src_shape[a] - 0.5)
        if coords.shape[0] > ndim:  # a 2D grid inside a 3D world: within half a voxel of the source plane
            ok &= np.abs(coords[ndim]) <= 0.5
        inside[rows] = ok
        for c, coef in enumerate(coeffs):
            values = ndimage.map_coordinates(coef, coords[:ndim], order=order, mode="reflect", prefilter=False)
            out[rows, ..., c] = np.where(ok, values, fill)
    return (out if channels else out[..., 0]), inside


def resample_to_grid(img: SciImage, affine: np.ndarray, shape: Sequence[int], order: int = 3,
                     fill: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Resample a :class:`~sciSR.image.SciImage` onto the grid ``(affine, shape)`` by world coordinates.

    Parameters
    ----------
    img : SciImage
        Source with an affine (voxel → RAS+ mm); a channel axis (last) is kept.
    affine : numpy.ndarray
        ``(4, 4)`` voxel → RAS+ mm of the target grid.
    shape : sequence of int
        Target spatial shape (as many axes as the image has spatial axes).
    order : int
        0, 1 or 3 (see :func:`resample_array`).
    fill : float
        Value outside the image's field of view.

    Returns
    -------
    values : numpy.ndarray
        float32 ``(*shape, [C])``.
    inside : numpy.ndarray
        bool ``shape``, True where the image has data.

    Raises
    ------
    SciSRError
        The image has no affine, or its spatial axes do not match ``shape``.
    """
    source = img.meta.get("source")
    if img.affine is None:
        raise SciSRError("resampling by world coordinates needs an image with an affine (voxel → mm)", source)
    if img.spatial_ndim != len(tuple(shape)):
        raise SciSRError(f"the image has {img.spatial_ndim} spatial axes; the target grid {tuple(shape)} has "
                         f"{len(tuple(shape))}", source)
    values = img.array
    if not np.isfinite(values).all():
        raise SciSRError("the image has NaN/inf voxels; mask or fill them before resampling", source)
    return resample_array(values, img.affine, affine, shape, order=order, fill=fill)
