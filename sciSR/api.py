"""Public API: read, write, upscale. Composes io → model → infer → geometry; nothing reaches up."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from sciSR import geometry, io
from sciSR.errors import SciSRError
from sciSR.flux import FLUX_MODES, enforce_flux, flux_mode_for_units
from sciSR.image import SciImage
from sciSR.infer.interpolate import INTERPOLATORS, interpolate
from sciSR.progress import ProgressLike, cancel_checker, progress_callback


def read(path: str | os.PathLike, *, series: str | int | None = None, domain: str | None = None, **options) -> SciImage:
    """Read an image file or a DICOM series folder.

    Parameters
    ----------
    path : str or os.PathLike
        DICOM file or folder, NIfTI (``.nii``, ``.nii.gz``), FITS (``.fits``, ``.fz``, ...), PNG or TIFF.
        The format comes from the suffix, else from the file's content.
    series : str or int, optional
        DICOM only: SeriesInstanceUID, SeriesNumber or SeriesDescription when a folder holds several.
    domain : str, optional
        Override the domain (``"mri"``, ``"ct"``, ``"sky"``, ``"generic"``).
    **options
        Format options, e.g. ``hdu=`` (EXTNAME or index) for FITS.

    Returns
    -------
    SciImage
        Calibrated values with geometry. Voxels are never reordered or flipped.
    """
    return io.read(path, series=series, domain=domain, **options)


def write(img: SciImage, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write ``img``; the format comes from the suffix (no suffix: a DICOM series folder).

    The output is written to a temporary name and renamed, so a failure leaves nothing behind. An
    existing output is refused unless ``overwrite=True``; the input file is never replaced.

    Returns
    -------
    pathlib.Path
        The written file or folder.
    """
    return io.write(img, path, overwrite=overwrite)


def _scale_for(img: SciImage, scale: int | Sequence[int] | None) -> tuple[int, ...]:
    if scale is None:
        raise SciSRError("interpolation needs a scale (e.g. scale=2 or scale=(1, 1, 4))")
    if (
        not np.isscalar(scale)
        and img.channel_axis is not None
        and len(tuple(scale)) == img.array.ndim
    ):
        raise SciSRError(
            f"scale {tuple(scale)} includes the channel axis ({img.meta.get('channel_name', 'channels')}); "
            f"give one factor per spatial axis ({img.spatial_ndim})"
        )
    return geometry.normalize_scale(scale, img.spatial_ndim)


def _regrid(img: SciImage, array: np.ndarray, scale: tuple[int, ...], model_name: str, **extra: Any) -> SciImage:
    """The SciImage of the upscaled grid: same FOV, new affine / WCS / spacing / grid keywords."""
    meta = dict(img.meta)
    if img.meta.get("fits_header") is not None and img.spatial_ndim == 2:
        header = img.meta["fits_header"].copy()
        geometry.upscale_fits_grid_keywords(header, scale)
        meta["fits_header"] = header
    meta["provenance"] = [*img.meta.get("provenance", []), {"step": "upscale", "model": model_name,
                                                             "scale": list(scale), **extra}]
    return SciImage(
        array=array,
        affine=None if img.affine is None else geometry.upscale_affine(img.affine, scale),
        wcs=None if img.wcs is None else geometry.upscale_wcs(img.wcs, scale),
        spacing=geometry.upscale_spacing(img.spacing, scale),
        domain=img.domain,
        meta=meta,
    )


def _replicate_mask(mask: np.ndarray, scale: tuple[int, ...]) -> np.ndarray:
    for axis, s in enumerate(scale):
        mask = np.repeat(mask, s, axis=axis)
    return mask


def upscale(
    img: SciImage | np.ndarray,
    model: Any,
    scale: int | Sequence[int] | None = None,
    *,
    tile: int | Sequence[int] | None = None,
    device: str = "auto",
    flux: str | None = None,
    progress: ProgressLike = False,
    cancel: threading.Event | None = None,
) -> SciImage | np.ndarray:
    """Super-resolve an image on the field-of-view-preserving grid.

    Parameters
    ----------
    img : SciImage or numpy.ndarray
        Input; a numpy array is treated as all-spatial and a numpy array is returned.
    model : str or nn.Module
        ``"nearest"``, ``"linear"`` or ``"cubic"`` (interpolating cubic B-spline) baselines.
    scale : int or sequence of int
        One factor per spatial array axis, e.g. ``(1, 1, 4)`` through-plane; channel axes are never
        scaled. Required for interpolation.
    tile : int or sequence of int, optional
        Tile size in input voxels for learned models (None: automatic).
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"`` for learned models.
    flux : str, optional
        Sky images: ``"conserve"`` (block sums equal the input), ``"mean"`` (block means) or ``"none"``;
        None chooses from BUNIT (see :func:`sciSR.flux.flux_mode_for_units`); other domains: ``"none"``.
    progress : bool or callable
        ``True`` for a progress bar on a terminal, or ``f(fraction_done)``.
    cancel : threading.Event, optional
        When set, :class:`sciSR.Cancelled` is raised and nothing is returned.

    Returns
    -------
    SciImage or numpy.ndarray
        Shape ``spatial·scale`` (channels unchanged); affine, WCS (with SIP), spacing and FITS grid
        keywords updated so every world coordinate stays on the same anatomy or star.
    """
    as_array = not isinstance(img, SciImage)
    image = SciImage.from_array(np.asarray(img)) if as_array else img
    if not (isinstance(model, str) and model in INTERPOLATORS):
        raise SciSRError(f"unknown model {model!r}; available: {', '.join(INTERPOLATORS)}")
    factors = _scale_for(image, scale)
    check = cancel_checker(cancel)
    check()

    mode = flux if flux is not None else (
        flux_mode_for_units(image.meta.get("units")) if image.domain == "sky" else "none"
    )
    if mode not in FLUX_MODES:
        raise SciSRError(f"flux must be one of {FLUX_MODES}, got {mode!r}")
    values = image.array.astype(np.float32, copy=False)
    mask = image.meta.get("mask")
    if mask is None and np.issubdtype(values.dtype, np.floating):
        invalid = ~np.isfinite(values)
        mask = invalid if invalid.any() else None
    if mask is not None:
        if mask.all():
            raise SciSRError("every pixel is masked (NaN); nothing to upscale", image.meta.get("source"))
        # Masked pixels must not leak into neighbours: fill them from the nearest valid pixel first.
        index = ndimage.distance_transform_edt(mask, return_distances=False, return_indices=True)
        values = values[tuple(index)]

    with progress_callback(progress) as report:
        out = interpolate(values, factors, model, progress=report, cancel_check=check)
    if mode != "none":
        if image.channel_axis is not None:
            raise SciSRError("flux conservation needs a single-channel image", image.meta.get("source"))
        if mode == "conserve":
            out /= float(np.prod(factors))
        out = enforce_flux(out, values, factors, mode, mask)
    out_meta_mask = None if mask is None else _replicate_mask(mask, factors)
    if out_meta_mask is not None:
        out[out_meta_mask] = np.nan
    check()
    result = _regrid(image, out, factors, model, **({"flux": mode} if mode != "none" else {}))
    if out_meta_mask is not None:
        result.meta["mask"] = out_meta_mask
    return result.array if as_array else result
