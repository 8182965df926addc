"""The one place for "upscale the grid" math.

Upscaling an axis of ``n`` voxels to ``n'`` keeps the outer edges of the first and last voxel fixed (the
field of view is preserved); its factor is ``s = n'/n``, an integer for ``scale=`` and any real ratio for
``spacing=`` (:func:`grid_for_spacing`). An old index ``i`` and a new index ``i'`` of the same point are
related by ``i = (i' + 0.5) / s - 0.5``. Everything here — affines, spacing, astropy WCS with SIP, FITS
grid keywords, napari layer offsets, interpolation sample positions — follows from that one formula.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from sciSR.errors import SciSRError

ScaleLike = int | Sequence[int]
GridScale = Sequence[float]
"""Factor per axis, ``n'/n``: integers for ``scale=``, any real ratio for a grid chosen by spacing."""


def normalize_scale(scale: ScaleLike, ndim: int) -> tuple[int, ...]:
    """Turn an int or per-axis sequence into one positive integer factor per spatial axis.

    Parameters
    ----------
    scale : int or sequence of int
        One factor for all spatial axes, or one per spatial axis.
    ndim : int
        Number of spatial axes.

    Returns
    -------
    tuple of int
        ``ndim`` factors, each ≥ 1.

    Raises
    ------
    SciSRError
        If the length does not match ``ndim`` or a factor is not a positive integer.
    """
    factors = (scale,) * ndim if np.isscalar(scale) else tuple(scale)
    if len(factors) != ndim:
        raise SciSRError(
            f"scale {tuple(factors)} has {len(factors)} factors but the image has {ndim} spatial axes "
            "(channel axes are never scaled)"
        )
    out = []
    for f in factors:
        if isinstance(f, bool) or not float(f).is_integer() or int(f) < 1:
            raise SciSRError(f"scale factors must be positive integers, got {tuple(factors)}")
        out.append(int(f))
    return tuple(out)


def upscaled_shape(shape: Sequence[int], scale: Sequence[int]) -> tuple[int, ...]:
    """Shape of the upscaled grid: ``shape[a] * scale[a]`` per spatial axis."""
    return tuple(int(n) * int(s) for n, s in zip(shape, scale, strict=True))


def grid_for_spacing(shape: Sequence[int], spacing: Sequence[float], target: Sequence[float]) -> tuple[int, ...]:
    """Voxels per axis of the FOV-preserving grid closest to the voxel size ``target``.

    Parameters
    ----------
    shape : sequence of int
        Input spatial shape ``n``.
    spacing : sequence of float
        Input voxel size per axis (mm, or deg on the sky).
    target : sequence of float
        Wanted voxel size per axis, same units (> 0).

    Returns
    -------
    tuple of int
        ``n' = round(n·spacing/target)`` (at least 1). The field of view ``n·spacing`` is kept, so the
        new voxel size is ``n·spacing/n'``, the closest to ``target`` a whole number of voxels allows.
    """
    return tuple(max(1, round(int(n) * float(d) / float(t))) for n, d, t in zip(shape, spacing, target, strict=True))


def grid_scale(shape: Sequence[int], new_shape: Sequence[int]) -> tuple[float, ...]:
    """Factor ``n'/n`` per axis of a grid of ``new_shape`` over one of ``shape`` (ints where exact)."""
    ratios = [int(m) / int(n) for n, m in zip(shape, new_shape, strict=True)]
    return tuple(int(r) if float(r).is_integer() else r for r in ratios)


def upscaled_index(old: np.ndarray | float, factor: float, *, inverse: bool = False) -> np.ndarray | float:
    """New (upscaled) index of an old index along one axis: ``i' = (i + 0.5)·s − 0.5`` (any position).

    Parameters
    ----------
    old : array_like or float
        Continuous index on the input grid (or on the new grid when ``inverse``).
    factor : float
        Upscaling factor ``n'/n`` along this axis.
    inverse : bool
        Map a new index back to the input grid: ``i = (i' + 0.5)/s − 0.5``.
    """
    if inverse:
        return (old + 0.5) / factor - 0.5
    return (old + 0.5) * factor - 0.5


def source_coordinates(n_new: int, factor: float) -> np.ndarray:
    """Old (input) index of every new voxel centre along one axis.

    Parameters
    ----------
    n_new : int
        Number of voxels on the new grid.
    factor : float
        Upscaling factor ``n'/n`` along this axis.

    Returns
    -------
    numpy.ndarray
        ``(n_new,)`` float64, ``(i' + 0.5) / s - 0.5``.
    """
    return upscaled_index(np.arange(n_new, dtype=np.float64), factor, inverse=True)


def _pad3(scale: Sequence[float]) -> np.ndarray:
    if len(scale) > 3:
        raise SciSRError(f"an affine has 3 spatial axes, got {len(scale)} scale factors")
    return np.array(list(scale) + [1] * (3 - len(scale)), dtype=np.float64)


def upscale_affine(affine: np.ndarray, scale: GridScale) -> np.ndarray:
    """Affine of the upscaled grid with the field of view preserved.

    Parameters
    ----------
    affine : numpy.ndarray
        ``(4, 4)`` voxel index → world (RAS+ mm) of the input.
    scale : sequence of float
        Factor ``n'/n`` per spatial array axis (1 to 3 entries; missing trailing axes are not scaled).

    Returns
    -------
    numpy.ndarray
        ``(4, 4)`` float64: ``affine @ T`` where ``T`` maps new indices to old ones,
        ``diag(1/s) `` plus a translation of ``(1/s - 1) / 2`` old voxels per axis.
    """
    s = _pad3(scale)
    new_to_old = np.eye(4)
    new_to_old[:3, :3] = np.diag(1.0 / s)
    new_to_old[:3, 3] = (1.0 / s - 1.0) / 2.0
    return np.asarray(affine, dtype=np.float64) @ new_to_old


def upscale_spacing(spacing: Sequence[float], scale: GridScale) -> tuple[float, ...]:
    """Voxel size after upscaling: ``spacing / scale`` per axis (``scale`` = ``n'/n``)."""
    return tuple(float(d) / float(s) for d, s in zip(spacing, scale, strict=True))


def upscale_translate(spacing: Sequence[float], scale: GridScale) -> tuple[float, ...]:
    """Offset of the first new voxel centre from the first old one, in world units per axis.

    This is what a viewer layer (napari ``translate``) must add so the output overlays the input:
    ``(1/s - 1) / 2`` of the old spacing.
    """
    return tuple(float(d) * (1.0 / float(s) - 1.0) / 2.0 for d, s in zip(spacing, scale, strict=True))


def upscale_wcs(wcs: Any, scale: GridScale) -> Any:
    """An astropy WCS for the upscaled pixel grid, field of view preserved.

    Parameters
    ----------
    wcs : astropy.wcs.WCS
        WCS of the input image (FITS order: WCS axis 1 is the last numpy axis).
    scale : sequence of float
        Factor ``n'/n`` per numpy array axis, e.g. ``(sy, sx)`` for a 2D frame ``array[y, x]``.

    Returns
    -------
    astropy.wcs.WCS
        A new WCS: ``CRPIX' = (CRPIX - 0.5)·s + 0.5``; CD (or PC) columns ÷ s; with equal factors
        and no CD the CDELT is divided instead; SIP ``A'_pq = A_pq·sx^(1-p)·sy^(-q)``,
        ``B'_pq = B_pq·sx^(-p)·sy^(1-q)`` (same for AP/BP); ``pixel_shape`` updated.

    Raises
    ------
    SciSRError
        For table-lookup distortions (CPDIS/D2IM), which cannot be rescaled exactly.
    """
    from astropy.wcs import WCS, Sip

    naxis = wcs.wcs.naxis
    if len(scale) != naxis:
        raise SciSRError(f"scale has {len(scale)} factors but the WCS has {naxis} axes")
    if getattr(wcs, "cpdis1", None) is not None or getattr(wcs, "cpdis2", None) is not None or (
        getattr(wcs, "det2im1", None) is not None or getattr(wcs, "det2im2", None) is not None
    ):
        raise SciSRError("table-lookup distortions (CPDIS/D2IM) cannot be rescaled; remove them first")
    # WCS axis k (0-based) is numpy axis naxis-1-k.
    f = np.array([float(scale[naxis - 1 - k]) for k in range(naxis)], dtype=np.float64)

    new = WCS(naxis=naxis)
    new.wcs = copy.deepcopy(wcs.wcs)
    new.wcs.crpix = (np.asarray(wcs.wcs.crpix) - 0.5) * f + 0.5
    if wcs.wcs.has_cd():
        new.wcs.cd = np.asarray(wcs.wcs.cd) / f[np.newaxis, :]
    elif np.all(f == f[0]):
        new.wcs.cdelt = np.asarray(wcs.wcs.cdelt) / f[0]
    else:
        new.wcs.pc = np.asarray(wcs.wcs.get_pc()) / f[np.newaxis, :]
    if wcs.sip is not None:
        fx, fy = f[0], f[1]
        sip = wcs.sip

        def rescale(coeffs: np.ndarray | None, ex: int, ey: int) -> np.ndarray | None:
            if coeffs is None:
                return None
            p, q = np.indices(coeffs.shape, dtype=np.float64)
            return coeffs * fx ** (ex - p) * fy ** (ey - q)

        new.sip = Sip(
            rescale(sip.a, 1, 0),
            rescale(sip.b, 0, 1),
            rescale(sip.ap, 1, 0),
            rescale(sip.bp, 0, 1),
            new.wcs.crpix,
        )
    if wcs.pixel_shape is not None:
        new.pixel_shape = tuple(round(int(n) * fk) for n, fk in zip(wcs.pixel_shape, f, strict=True))
    new.wcs.set()
    return new


_SECTION = re.compile(r"^\s*\[\s*(\d+)\s*:\s*(\d+)\s*,\s*(\d+)\s*:\s*(\d+)\s*\]\s*$")
SECTION_KEYWORDS = ("DATASEC", "TRIMSEC", "BIASSEC", "CCDSEC", "DETSEC")


def upscale_fits_grid_keywords(header: Any, scale: GridScale) -> list[str]:
    """Update FITS keywords tied to the pixel grid, in place, for a 2D image.

    Parameters
    ----------
    header : astropy.io.fits.Header
        Header of a 2D image HDU (``array[y, x]``).
    scale : sequence of float
        ``(sy, sx)``, each ``n'/n``.

    Returns
    -------
    list of str
        The keywords that were changed.

    Notes
    -----
    1-based FITS pixel ``x`` maps to ``x' = (x - 0.5)·s + 0.5``. So ``LTV' = s·LTV + 0.5 - 0.5·s`` and
    ``LTM_i_j' = s_i·LTM_i_j``; sections ``[x1:x2,y1:y2]`` cover ``[(x1-1)·sx+1 : x2·sx, ...]`` (edges
    rounded to whole pixels for a non-integer ``s``);
    ``PIXAR`` (sr or arcsec² per pixel) ÷ ``sx·sy``; ``PIXSCALE`` ÷ s when isotropic, else replaced by
    ``PIXSCAL1``/``PIXSCAL2``; existing ``PIXSCAL1``/``PIXSCAL2`` ÷ their axis factor.
    """
    sy, sx = float(scale[0]), float(scale[1])
    by_axis = {1: sx, 2: sy}
    changed: list[str] = []
    for i, s in by_axis.items():
        key = f"LTV{i}"
        if key in header:
            header[key] = s * float(header[key]) + 0.5 - 0.5 * s
            changed.append(key)
        for j in (1, 2):
            key = f"LTM{i}_{j}"
            if key in header:
                header[key] = s * float(header[key])
                changed.append(key)
    for key in SECTION_KEYWORDS:
        if key in header and isinstance(header[key], str):
            m = _SECTION.match(header[key])
            if m:
                x1, x2, y1, y2 = (int(v) for v in m.groups())
                header[key] = (f"[{round((x1 - 1) * sx) + 1}:{round(x2 * sx)},"
                               f"{round((y1 - 1) * sy) + 1}:{round(y2 * sy)}]")
                changed.append(key)
    if "PIXAR" in header:
        header["PIXAR"] = float(header["PIXAR"]) / (sx * sy)
        changed.append("PIXAR")
    if "PIXSCALE" in header:
        if sx == sy:
            header["PIXSCALE"] = float(header["PIXSCALE"]) / sx
        else:
            # One number cannot describe different x and y scales: give one per axis instead.
            old = float(header.pop("PIXSCALE"))
            header["PIXSCAL1"] = old / sx
            header["PIXSCAL2"] = old / sy
        changed.append("PIXSCALE")
    for i, s in by_axis.items():
        if f"PIXSCAL{i}" in header and "PIXSCALE" not in changed:
            header[f"PIXSCAL{i}"] = float(header[f"PIXSCAL{i}"]) / s
            changed.append(f"PIXSCAL{i}")
    return changed


def downscale_affine(affine: np.ndarray, scale: Sequence[int], offset: Sequence[float] | None = None) -> np.ndarray:
    """Affine of a grid ``s`` times coarser whose voxel ``n`` is centred on fine voxel ``s·n + (s − 1)/2``.

    The inverse of :func:`upscale_affine` (the degradations of :mod:`sciSR.degrade` sample there), with an
    optional sub-slice ``offset`` for stacks acquired shifted by a fraction of a slice.

    Parameters
    ----------
    affine : numpy.ndarray
        ``(4, 4)`` fine voxel index → world.
    scale : sequence of int
        Factor per spatial array axis (1 to 3 entries).
    offset : sequence of float, optional
        Extra shift of the coarse grid per axis, in FINE voxels (default 0).

    Returns
    -------
    numpy.ndarray
        ``(4, 4)`` float64: ``affine @ T``, ``T = diag(s)`` plus a translation of ``(s − 1)/2 + offset``
        fine voxels per axis.
    """
    s = _pad3(scale)
    shift = np.zeros(3) if offset is None else np.array(list(offset) + [0.0] * (3 - len(offset)), np.float64)
    coarse_to_fine = np.eye(4)
    coarse_to_fine[:3, :3] = np.diag(s)
    coarse_to_fine[:3, 3] = (s - 1.0) / 2.0 + shift
    return np.asarray(affine, dtype=np.float64) @ coarse_to_fine


def target_in_source_coordinates(target_affine: np.ndarray, target_shape: Sequence[int], source_affine: np.ndarray,
                                 rows: slice | None = None) -> np.ndarray:
    """Continuous voxel coordinates in a source grid of every voxel centre of a target grid.

    Pure affine math in world coordinates: ``source_affine⁻¹ @ target_affine @ (i, j, k, 1)``, so grids
    with different orientations, voxel sizes and fields of view meet on the same anatomy.

    Parameters
    ----------
    target_affine, source_affine : numpy.ndarray
        ``(4, 4)`` voxel index → world (RAS+ mm) of the target and source grids.
    target_shape : sequence of int
        Target spatial shape, 2 or 3 axes (a 2D grid is the plane ``k = 0`` of its affine).
    rows : slice, optional
        Only these indices along the first target axis (to bound memory on large grids).

    Returns
    -------
    numpy.ndarray
        ``(3, *rows_shape)`` float64 source coordinates ``(i, j, k)`` per target voxel; for 2D grids the
        third row is the out-of-plane coordinate (0 when the planes coincide).
    """
    shape = [int(n) for n in target_shape]
    if len(shape) not in (2, 3):
        raise SciSRError(f"target grid must have 2 or 3 axes, got shape {tuple(shape)}")
    first = range(shape[0])[rows] if rows is not None else range(shape[0])
    axes = [np.asarray(first, dtype=np.float64), *(np.arange(n, dtype=np.float64) for n in shape[1:])]
    axes += [np.zeros(1)] * (3 - len(shape))
    target_to_source = np.linalg.solve(np.asarray(source_affine, np.float64), np.asarray(target_affine, np.float64))
    grids = np.meshgrid(*axes, indexing="ij", sparse=True)
    coords = np.stack([sum(target_to_source[r, c] * grids[c] for c in range(3)) + target_to_source[r, 3]
                       for r in range(3)])
    return coords.reshape(3, len(first), *shape[1:])


def wcs_target_in_source_coordinates(target_wcs: Any, target_shape: Sequence[int], source_wcs: Any,
                                     rows: slice | None = None) -> np.ndarray:
    """Continuous pixel coordinates in a source frame of every pixel centre of a target frame, by sky position.

    Each target pixel centre goes to the sky through the target's celestial WCS (distortions included,
    ``all_pix2world``) and back into the source's pixels (``all_world2pix``), so frames with different
    pointings, rotations and pixel scales meet on the same stars.

    Parameters
    ----------
    target_wcs, source_wcs : astropy.wcs.WCS
        Celestial WCSs of the two frames (0-based pixels, ``(x, y)`` = (column, row)).
    target_shape : sequence of int
        ``(rows, columns)`` of the target frame.
    rows : slice, optional
        Only these target rows (to bound memory on large frames).

    Returns
    -------
    numpy.ndarray
        ``(2, n_rows, columns)`` float64 source ``(row, column)`` coordinates per target pixel.
    """
    shape = [int(n) for n in target_shape]
    if len(shape) != 2:
        raise SciSRError(f"sky frames are 2D; got target shape {tuple(shape)}")
    first = np.arange(shape[0], dtype=np.float64)[rows if rows is not None else slice(None)]
    yy, xx = np.meshgrid(first, np.arange(shape[1], dtype=np.float64), indexing="ij")
    world = target_wcs.celestial.all_pix2world(xx, yy, 0)
    sx, sy = source_wcs.celestial.all_world2pix(*world, 0)
    return np.stack([np.asarray(sy, np.float64), np.asarray(sx, np.float64)])


def fusion_output_grid(affine: np.ndarray, shape: Sequence[int], scale: Sequence[int]
                       ) -> tuple[np.ndarray, tuple[int, ...]]:
    """The output grid of a multi-stack fusion: the first stack's grid upscaled by ``scale`` (FOV kept).

    Parameters
    ----------
    affine : numpy.ndarray
        ``(4, 4)`` voxel → world of the first stack.
    shape : sequence of int
        Its spatial shape.
    scale : sequence of int
        Factor per spatial axis.

    Returns
    -------
    affine : numpy.ndarray
        ``(4, 4)`` of the output grid (:func:`upscale_affine`).
    shape : tuple of int
        Output spatial shape (:func:`upscaled_shape`).
    """
    return upscale_affine(affine, scale), upscaled_shape(shape, scale)
