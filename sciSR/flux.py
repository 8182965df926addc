"""Flux bookkeeping for sky images: which quantity an upscale must conserve, and the exact projection.

A count-like pixel (counts, ADU, electrons, Jy/pixel) holds an integral over its area: after upscaling
each ``s_y × s_x`` block of output pixels must SUM to the input pixel. A surface-brightness pixel
(Jy/beam, MJy/sr, erg/s/cm²/Å/arcsec²) holds an average: each block must have the input as its MEAN.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from sciSR.errors import SciSRError

FLUX_MODES = ("conserve", "mean", "none")

_COUNT_LIKE = re.compile(
    r"^(counts?|cts|adu|dn|data number|electrons?|e-?|photons?)(\s*/\s*(s|sec|second|pix(el)?))*$"
    r"|^(m|u|n)?jy\s*/\s*pix(el)?$",
    re.IGNORECASE,
)
_SURFACE = re.compile(r"/\s*(beam|sr|arcsec\*?\*?2|arcsec2|arcsec\^2|deg\*?\*?2|sq\.?\s*arcsec)", re.IGNORECASE)
_LOG = re.compile(r"\bmag", re.IGNORECASE)


def flux_mode_for_units(bunit: str | None) -> str:
    """Choose how flux is conserved from a FITS ``BUNIT``.

    Parameters
    ----------
    bunit : str or None
        The unit string.

    Returns
    -------
    str
        ``"conserve"`` for count-like units, ``"mean"`` for surface brightness; ``"mean"`` with a
        warning for logarithmic units (magnitudes) and missing units.
    """
    unit = (bunit or "").strip()
    if unit and _LOG.search(unit):
        warnings.warn(
            f"BUNIT {unit!r} is logarithmic: block means of the stored values are kept", stacklevel=2
        )
        return "mean"
    if unit and _COUNT_LIKE.match(unit.replace(" ", "") if "/" in unit else unit):
        return "conserve"
    if unit and _SURFACE.search(unit):
        return "mean"
    warnings.warn(
        f"BUNIT {unit or 'missing'!r} does not say whether pixels are integrals or averages: "
        "keeping block means (pass flux='conserve' for count-like data)",
        stacklevel=2,
    )
    return "mean"


def project_blocks(sr: Any, lr: Any, scale: Sequence[int], mode: str, valid: Any = None) -> Any:
    """The exact flux projection, written once for numpy arrays and torch tensors alike.

    Parameters
    ----------
    sr : numpy.ndarray or torch.Tensor
        ``(*lead, *spatial·scale)`` values per output pixel; ``lead`` axes (batch, channel) are kept.
    lr : numpy.ndarray or torch.Tensor
        ``(*lead, *spatial)`` input values, same kind and dtype as ``sr``.
    scale : sequence of int
        Factor per trailing spatial axis.
    mode : str
        ``"conserve"``: ``SR += U(LR − D_sum(SR)) / ∏s``; ``"mean"``: ``SR += U(LR − D_mean(SR))``.
        Both formulas are one update ``U(LR·w − D_sum(SR)) / ∏s`` with ``w = 1`` or ``∏s``.
    valid : numpy.ndarray or torch.Tensor, optional
        ``(*lead, *spatial)`` 0/1 (same kind as ``lr``); blocks with 0 are left as they are.

    Returns
    -------
    numpy.ndarray or torch.Tensor
        Like ``sr``: every valid block sums (``"conserve"``) or averages (``"mean"``) to ``lr``.

    Notes
    -----
    Only ``reshape``, ``sum(axis=...)``, broadcasting and arithmetic are used, which numpy and torch
    share, so the training layer (:class:`sciSR.models.flux_projection.FluxProjection`) and
    :func:`enforce_flux` are the same computation (and differentiable under torch).
    """
    if mode not in ("conserve", "mean"):
        raise SciSRError(f"the flux projection is 'conserve' or 'mean', got {mode!r}")
    factors = [int(f) for f in scale]
    k = len(factors)
    lead = tuple(sr.shape[: sr.ndim - k])
    spatial = tuple(lr.shape[lr.ndim - k:])
    if tuple(lr.shape[: lr.ndim - k]) != lead or tuple(sr.shape[sr.ndim - k:]) != tuple(
        n * f for n, f in zip(spatial, factors, strict=True)
    ):
        raise SciSRError(f"SR shape {tuple(sr.shape)} is not LR shape {tuple(lr.shape)} "
                         f"times the scale {tuple(factors)}")
    interleaved = [d for n, f in zip(spatial, factors, strict=True) for d in (n, f)]
    collapsed = [d for n in spatial for d in (n, 1)]
    n_sub = math.prod(factors)
    blocks = sr.reshape(*lead, *interleaved)
    block_sum = blocks.sum(axis=tuple(len(lead) + 2 * a + 1 for a in range(k)))
    target = lr if mode == "conserve" else lr * n_sub
    residual = (target - block_sum) / n_sub
    if valid is not None:
        residual = residual * valid
    return (blocks + residual.reshape(*lead, *collapsed)).reshape(sr.shape)


def enforce_flux(
    sr: np.ndarray, lr: np.ndarray, scale: Sequence[int], mode: str, mask: np.ndarray | None = None
) -> np.ndarray:
    """Project ``sr`` so its blocks reproduce ``lr`` exactly (sums or means).

    Parameters
    ----------
    sr : numpy.ndarray
        ``(*spatial·scale)`` upscaled values (already per output pixel: count-like data divided by
        ``prod(scale)``).
    lr : numpy.ndarray
        ``(*spatial)`` input values.
    scale : sequence of int
        Factor per axis.
    mode : str
        ``"conserve"``: ``SR += U(LR − D_sum(SR)) / prod(s)``; ``"mean"``: ``SR += U(LR − D_mean(SR))``;
        ``"none"``: return ``sr`` unchanged. Computed in float64 by :func:`project_blocks`.
    mask : numpy.ndarray, optional
        ``(*spatial)`` bool, True where ``lr`` is invalid; those blocks are left as they are.

    Returns
    -------
    numpy.ndarray
        float32 array like ``sr``.
    """
    if mode not in FLUX_MODES:
        raise SciSRError(f"flux must be one of {FLUX_MODES}, got {mode!r}")
    if mode == "none":
        return sr
    valid = None if mask is None else (~np.asarray(mask, dtype=bool)).astype(np.float64)
    out = project_blocks(sr.astype(np.float64), lr.astype(np.float64), scale, mode, valid)
    return out.astype(np.float32)


FLUX_KEYWORDS = ("SATURATE", "SATLEVEL", "SKYLEVEL", "SKY", "BACKGND")


def rescale_flux_keywords(header: Any, mode: str, scale: Sequence[int]) -> list[str]:
    """Divide per-pixel level keywords by ``prod(scale)`` when block sums are conserved.

    In ``"conserve"`` mode a pixel's content is split over ``prod(scale)`` sub-pixels, so levels
    quoted per pixel (saturation, sky) shrink by the same factor; in ``"mean"`` mode they are unchanged.

    Parameters
    ----------
    header : astropy.io.fits.Header
        Header of the upscaled image, changed in place.
    mode : str
        Flux mode used by the upscale.
    scale : sequence of int
        Factor per axis.

    Returns
    -------
    list of str
        The keywords that were changed.
    """
    if mode != "conserve":
        return []
    n = float(np.prod(scale))
    changed = []
    for key in FLUX_KEYWORDS:
        if key in header and isinstance(header[key], int | float) and not isinstance(header[key], bool):
            header[key] = header[key] / n
            changed.append(key)
    return changed
