"""Reversible per-domain intensity normalisation (docs/architecture.md §4).

A network sees values of order one; the user gets back exactly the units they gave. Each method
returns the normalised array and the parameters that :func:`denormalize` needs; nothing is clipped.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sciSR.errors import SciSRError

METHODS = ("none", "ct_window", "percentile", "asinh")
DEFAULT_FOR_DOMAIN = {"ct": "ct_window", "mri": "percentile", "sky": "asinh", "generic": "percentile"}


STATISTICS_SAMPLE = 2**22
"""Most values the robust statistics look at: larger images are sampled on a regular stride, which bounds
the memory of the percentiles/medians (each copies its input) for frames larger than RAM can hold twice."""


def _sample(array: np.ndarray) -> np.ndarray:
    """Finite values of ``array``, or of a regular-stride sample of at most :data:`STATISTICS_SAMPLE` values."""
    flat = np.asarray(array).reshape(-1)
    if flat.size > STATISTICS_SAMPLE:
        flat = flat[:: -(-flat.size // STATISTICS_SAMPLE)]
    return flat[np.isfinite(flat)] if flat.dtype.kind == "f" else flat


def fit_normalization(array: np.ndarray, method: str, **options: Any) -> dict[str, Any]:
    """Parameters that map ``array`` to network units.

    Parameters
    ----------
    array : numpy.ndarray
        Calibrated values (any shape); NaNs are ignored. Above :data:`STATISTICS_SAMPLE` values the
        statistics come from a regular-stride sample (percentiles and MAD change by sampling noise only).
    method : str
        ``"none"``; ``"ct_window"``: ``(HU − low)/(high − low)`` with ``low``/``high`` in HU (default
        −1024, 3071); ``"percentile"``: robust per-volume ``(x − p_low)/(p_high − p_low)`` (defaults 0.5,
        99.5); ``"asinh"``: ``asinh((x − background)/(k·σ))`` with background and σ from the median and
        MAD (default ``k = 3``).
    **options
        Overrides of the defaults above.

    Returns
    -------
    dict
        ``{"method": ..., <parameters>}``; JSON-serialisable.
    """
    if method not in METHODS:
        raise SciSRError(f"normalisation must be one of {METHODS}, got {method!r}")
    if method == "none":
        return {"method": "none"}
    if method == "ct_window":
        return {"method": method, "low": float(options.get("low", -1024.0)), "high": float(options.get("high", 3071.0))}
    values = _sample(array)
    if values.size == 0:
        raise SciSRError("cannot normalise an image without finite values")
    if method == "percentile":
        lo_q, hi_q = float(options.get("low_q", 0.5)), float(options.get("high_q", 99.5))
        low, high = (float(v) for v in np.percentile(values, [lo_q, hi_q]))
        if high <= low:
            high = low + max(abs(low), 1.0)
        return {"method": method, "low": low, "high": high}
    background = float(np.median(values))
    sigma = float(1.4826 * np.median(np.abs(values - background)))
    if sigma <= 0:
        sigma = float(values.std()) or 1.0
    return {"method": method, "background": background, "scale": float(options.get("k", 3.0)) * sigma}


def normalize(array: np.ndarray, params: dict[str, Any]) -> np.ndarray:
    """Apply parameters from :func:`fit_normalization`; float32 output, same shape."""
    x = np.asarray(array, dtype=np.float32)
    method = params["method"]
    if method == "none":
        return x
    if method in ("ct_window", "percentile"):
        return (x - np.float32(params["low"])) / np.float32(params["high"] - params["low"])
    return np.arcsinh((x - np.float32(params["background"])) / np.float32(params["scale"]))


def denormalize(array: np.ndarray, params: dict[str, Any]) -> np.ndarray:
    """Exact inverse of :func:`normalize` (up to float32 rounding)."""
    y = np.asarray(array, dtype=np.float32)
    method = params["method"]
    if method == "none":
        return y
    if method in ("ct_window", "percentile"):
        return y * np.float32(params["high"] - params["low"]) + np.float32(params["low"])
    return np.sinh(y) * np.float32(params["scale"]) + np.float32(params["background"])
