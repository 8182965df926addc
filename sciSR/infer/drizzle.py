"""Drizzle: the classical combination of dithered sky exposures onto a finer grid.

Each input pixel is shrunk by ``pixfrac``, mapped through its frame's WCS onto the output grid and its
value shared among the output pixels it overlaps, in proportion to the overlap area (Fruchter & Hook
2002, PASP 114, 144; the spacetelescope ``drizzle`` package ≥ 3, the ``astro`` extra). The output grid is
the first frame's grid upscaled field-of-view preserving (docs/architecture.md §3), exactly as
:func:`sciSR.upscale` would make it from that frame alone.

Units (docs/architecture.md §4.3):

- count-like ``BUNIT`` per exposure (counts, electrons, ADU, DN, photons): each frame is turned into a
  rate with its ``EXPTIME``, the rates are averaged with ``EXPTIME`` weights and the result is given back
  as counts per OUTPUT pixel for the mean exposure time of the frames (= the counts of the frames
  averaged), so its total equals a frame's total where the frames cover the same field;
- count-like rates (``counts/s``, ``Jy/pixel``): averaged with ``EXPTIME`` weights, divided by
  ``sy·sx`` (an output pixel holds that fraction of an input pixel's content);
- surface brightness (``MJy/sr``, ``Jy/beam``, missing BUNIT): averaged with ``EXPTIME`` weights; values
  keep their scale.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from sciSR.errors import SciSRError
from sciSR.flux import flux_mode_for_units, rescale_flux_keywords
from sciSR.geometry import normalize_scale, upscale_fits_grid_keywords, upscale_spacing, upscale_wcs, upscaled_shape
from sciSR.image import SciImage

KERNELS = ("square", "point", "turbo", "gaussian", "lanczos2", "lanczos3")
# Per-exposure integrals (no "/s"): the ones EXPTIME turns into rates. Rates and Jy/pixel are excluded.
_PER_EXPOSURE = re.compile(r"^(counts?|cts|adu|dn|data number|electrons?|e-?|photons?)(\s*/\s*pix(el)?)?$",
                           re.IGNORECASE)


def drizzle_frames(frames: Sequence[SciImage], factors: int | tuple[int, int], *, pixfrac: float = 1.0,
                   kernel: str = "square") -> SciImage:
    """Drizzle ≥ 2 dithered exposures with celestial WCS onto the first frame's grid × ``factors``.

    Parameters
    ----------
    frames : sequence of SciImage
        2D sky frames ``(H_i, W_i)``, each with a celestial WCS, the same ``BUNIT`` (``meta["units"]``),
        and optionally ``EXPTIME`` (``meta["exptime"]`` or the ``EXPTIME`` card of
        ``meta["fits_header"]``, seconds; all frames or none). NaN pixels and ``meta["mask"]`` are left out.
    factors : int or tuple of int
        ``(sy, sx)`` upscaling of the first frame's grid (an int: both axes).
    pixfrac : float
        Linear size of the drop relative to an input pixel, in ``(0, 1]``. Smaller drops sharpen the
        result but need more, well spread dithers to cover every output pixel.
    kernel : str
        One of :data:`KERNELS`. ``"square"`` (default) and ``"point"`` conserve flux exactly; the others
        smooth with a kernel of their nominal size in input pixels.

    Returns
    -------
    SciImage
        ``(H_0·sy, W_0·sx)`` float32 in the frames' units (see the module docstring), WCS
        ``upscale_wcs(frames[0].wcs, factors)``; output pixels no valid input pixel reached are NaN and
        masked (``meta["mask"]``). ``meta["weight"]`` is the ``(H_0·sy, W_0·sx)`` float32 weight map in
        drizzle's WHT convention: the exposure time (seconds; 1 per frame without EXPTIME) times the
        fraction of each valid drop that lands in the output pixel, summed over drops and frames (an
        output pixel inside N frames of the first frame's pixel size, pixfrac 1: ``ΣEXPTIME/(sy·sx)``).
        The same map is the image extension ``WHT`` of a FITS output (``meta["fits_extensions"]``, with
        the output WCS; BUNIT ``s``, or none without EXPTIME), as drizzle products carry it.
        ``meta["exptime"]`` is the mean exposure time the counts refer to. The first frame's metadata is
        kept except its mask and its per-file companions; ``meta["provenance"]`` ends with
        ``{"step": "upscale", "model": "drizzle", "scale", "flux", "frames", "exptime", "pixfrac", "kernel",
        "sources"}``.

    Raises
    ------
    SciSRError
        Fewer than 2 frames, non-2D frames, a frame without celestial WCS, one that does not overlap the
        first frame, mixed BUNIT or EXPTIME presence, a non-positive EXPTIME, a bad ``pixfrac``/``kernel``.
    """
    from astropy.wcs.utils import proj_plane_pixel_area

    try:
        from drizzle.resample import Drizzle
    except ImportError:
        raise SciSRError("drizzle needs the drizzle package: pip install scisr[astro]") from None
    frames = list(frames)
    first = frames[0] if frames else None
    source = None if first is None else first.meta.get("source")
    if len(frames) < 2:
        raise SciSRError(f"drizzle combines at least 2 dithered frames, got {len(frames)}: upscale a single "
                         "frame with an interpolator or a model instead", source)
    if kernel not in KERNELS:
        raise SciSRError(f"drizzle kernel must be one of {KERNELS}, got {kernel!r}", source)
    if not 0.0 < pixfrac <= 1.0:
        raise SciSRError(f"drizzle pixfrac must be in (0, 1], got {pixfrac}", source)
    check_sky_frames(frames, "drizzle")
    sy, sx = normalize_scale(factors, 2)
    units = first.meta.get("units")
    mode = flux_mode_for_units(units)
    exptimes, t_out, rescale = exposure_scales(frames, mode, "drizzle")

    out_shape = upscaled_shape(first.array.shape, (sy, sx))
    out_wcs = upscale_wcs(first.wcs, (sy, sx))
    out_area = proj_plane_pixel_area(out_wcs.celestial)
    driz = Drizzle(kernel=kernel, out_shape=out_shape, disable_ctx=True)
    for k, (frame, t, r) in enumerate(zip(frames, exptimes, rescale, strict=True)):
        pixmap = _pixmap(frame, out_wcs, out_shape, k)
        valid = _valid(frame)
        # Output pixel area in this frame's pixels (1/(sy·sx) on the first frame's pixel size; frames of
        # another pixel size have their own; taken at the reference point where distortion varies it).
        area = out_area / proj_plane_pixel_area(frame.wcs.celestial)
        # Drizzle averages the values of the drops that cover an output pixel; iscale turns that average
        # into the output's units: per-exposure counts → rate × mean exposure, and integrals (counts, rates,
        # Jy/pixel) per input pixel → per output pixel.
        iscale = r * (area if mode == "conserve" else 1.0)
        driz.add_image(np.where(valid, frame.array, 0.0).astype(np.float32), exptime=t, pixmap=pixmap,
                       iscale=iscale, pixel_scale_ratio=math.sqrt(area), weight_map=valid.astype(np.float32),
                       wht_scale=t, pixfrac=pixfrac, in_units="cps")
    weight = np.asarray(driz.out_wht, np.float32)
    # Overlaps below 1e-6 of the largest weight are round-off of drizzle's polygon clipping at a drop's
    # edge (a boundary exactly on a pixel edge), not coverage.
    empty = ~(weight > 1e-6 * float(weight.max(initial=0.0)))
    weight[empty] = 0.0
    array = np.where(empty, np.nan, driz.out_img).astype(np.float32)
    step = {"step": "upscale", "model": "drizzle", "scale": [sy, sx], "flux": mode, "frames": len(frames),
            "exptime": exptimes, "pixfrac": pixfrac, "kernel": kernel,
            "sources": [f.meta.get("source") for f in frames]}
    return combined_frames(frames, array, (sy, sx), mode, t_out, weight, empty, step)


def check_sky_frames(frames: Sequence[SciImage], what: str) -> None:
    """One-line refusals before any work on dithered frames: 2D, celestial WCS, one BUNIT.

    Parameters
    ----------
    frames : sequence of SciImage
        The frames to combine.
    what : str
        The method named in the messages (``"drizzle"``, ``"multi-frame fusion"``).

    Raises
    ------
    SciSRError
        Naming the first offending frame and its file.
    """
    units = frames[0].meta.get("units")
    for k, frame in enumerate(frames):
        src = frame.meta.get("source")
        if frame.array.ndim != 2 or frame.channel_axis is not None:
            raise SciSRError(f"{what} needs 2D frames; frame {k} has shape {frame.array.shape}", src)
        if frame.wcs is None or not frame.wcs.has_celestial or frame.wcs.naxis != 2:
            raise SciSRError(f"{what} needs a 2-axis celestial WCS on every frame; frame {k} has none", src)
        if (frame.meta.get("units") or "").strip().lower() != (units or "").strip().lower():
            raise SciSRError(f"{what} needs one BUNIT for all frames; frame {k} has {frame.meta.get('units')!r}, "
                             f"frame 0 has {units!r}", src)


def exposure_scales(frames: Sequence[SciImage], mode: str, what: str) -> tuple[list[float], float, list[float]]:
    """Exposure times of the frames and the factor that puts each on the output's exposure.

    Parameters
    ----------
    frames : sequence of SciImage
        Frames with ``EXPTIME`` (``meta["exptime"]`` or the FITS header; all or none).
    mode : str
        The flux mode of their units (:func:`sciSR.flux.flux_mode_for_units`).
    what : str
        The method named in the messages.

    Returns
    -------
    exptimes : list of float
        Seconds per frame (1 each when no frame has EXPTIME).
    t_out : float
        Their mean: the exposure the combined counts refer to.
    rescale : list of float
        ``t_out / t_k`` for per-exposure count units (counts, electrons, ADU, ...), else 1.
    """
    found = []
    for frame in frames:
        header = frame.meta.get("fits_header")
        found.append(frame.meta.get("exptime", header.get("EXPTIME") if header is not None else None))
    if all(v is None for v in found):
        exptimes = [1.0] * len(frames)
    else:
        for k, value in enumerate(found):
            src = frames[k].meta.get("source")
            if value is None:
                raise SciSRError(f"frame {k} has no EXPTIME while others have one: weights would be undefined", src)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise SciSRError(f"frame {k} has EXPTIME {value!r}; {what} needs a positive exposure time", src)
        exptimes = [float(v) for v in found]
    t_out = float(np.mean(exptimes))
    units = (frames[0].meta.get("units") or "").strip()
    per_exposure = mode == "conserve" and bool(_PER_EXPOSURE.match(units))
    return exptimes, t_out, [t_out / t if per_exposure else 1.0 for t in exptimes]


def combined_frames(frames: Sequence[SciImage], array: np.ndarray, factors: tuple[int, int], mode: str,
                    t_out: float, weight: np.ndarray, empty: np.ndarray, step: dict[str, Any]) -> SciImage:
    """The result of combining dithered frames on the first frame's grid × ``factors``.

    Parameters
    ----------
    frames : sequence of SciImage
        The inputs; the first one's grid, WCS and metadata carry over.
    array : numpy.ndarray
        ``(H_0·sy, W_0·sx)`` combined values in the output's units.
    factors : tuple of int
        ``(sy, sx)``.
    mode : str
        The flux mode applied.
    t_out : float
        Exposure time (s) the values refer to.
    weight : numpy.ndarray
        WHT map ``(H_0·sy, W_0·sx)`` (exposure seconds per output pixel).
    empty : numpy.ndarray
        bool, True where no frame reached; becomes ``meta["mask"]``.
    step : dict
        The provenance step.

    Returns
    -------
    SciImage
        With WCS ``upscale_wcs(frames[0].wcs, factors)``, ``meta["weight"]`` and the FITS image extension
        ``WHT`` (the output's WCS; BUNIT ``s``, or none without EXPTIME).
    """
    first = frames[0]
    out_wcs = upscale_wcs(first.wcs, factors)
    spacing = upscale_spacing(first.spacing, factors)
    meta = _meta(list(frames), factors, mode, t_out, weight, empty, step)
    header = first.meta.get("fits_header")
    timed = first.meta.get("exptime", header.get("EXPTIME") if header is not None else None) is not None
    meta["fits_extensions"] = {"WHT": SciImage(array=weight, wcs=out_wcs, spacing=spacing, domain=first.domain,
                                               meta={"units": "s" if timed else None, "grid_factors": (1, 1)})}
    return SciImage(array=array, wcs=out_wcs, spacing=spacing, domain=first.domain, meta=meta)


def _valid(frame: SciImage) -> np.ndarray:
    valid = np.isfinite(frame.array)
    mask = frame.meta.get("mask")
    if mask is not None and np.shape(mask) == frame.array.shape:
        valid &= ~np.asarray(mask, bool)
    return valid


def _pixmap(frame: SciImage, out_wcs: Any, out_shape: tuple[int, ...], k: int) -> np.ndarray:
    """``(H, W, 2)`` output-grid ``(x, y)`` of each input pixel centre (0-based), through both WCSs."""
    yy, xx = np.indices(frame.array.shape, dtype=np.float64)
    world = frame.wcs.celestial.all_pix2world(xx, yy, 0)
    ox, oy = out_wcs.celestial.all_world2pix(*world, 0)
    inside = (ox > -0.5) & (ox < out_shape[1] - 0.5) & (oy > -0.5) & (oy < out_shape[0] - 0.5) & _valid(frame)
    if not inside.any():
        raise SciSRError(f"frame {k} does not overlap the first frame's field", frame.meta.get("source"))
    return np.dstack([ox, oy])


def _meta(frames: list[SciImage], factors: tuple[int, int], mode: str, t_out: float, weight: np.ndarray,
          empty: np.ndarray, step: dict[str, Any]) -> dict[str, Any]:
    """The first frame's metadata moved to the output grid, with weight, mask and provenance."""
    first = frames[0]
    # The mask and companions (ERR/DQ HDUs, other HDUs of the file) belong to the first frame's grid only.
    meta = {k: v for k, v in first.meta.items() if k not in ("mask", "fits_companions", "other_hdus")}
    if first.meta.get("fits_header") is not None:
        header = first.meta["fits_header"].copy()
        upscale_fits_grid_keywords(header, factors)
        rescale_flux_keywords(header, mode, factors)
        if "EXPTIME" in header:
            header["EXPTIME"] = t_out
        header["NCOMBINE"] = (len(frames), f"dithered frames combined ({step['model']})")
        meta["fits_header"] = header
    previous = first.meta.get("grid_factors") or (1, 1)
    meta["grid_factors"] = tuple(int(p) * int(f) for p, f in zip(previous, factors, strict=True))
    meta["flux_mode"] = mode
    meta["exptime"] = t_out
    meta["weight"] = weight
    meta["mask"] = empty
    meta["provenance"] = [*first.meta.get("provenance", []), step]
    return meta
