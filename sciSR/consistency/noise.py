"""White-noise level of an image, for the noise-weighted projections and test-time adaptation."""

from __future__ import annotations

import math

import numpy as np

# Median absolute deviation of a Gaussian, in standard deviations.
_MAD_PER_SIGMA = 0.6745


def estimate_noise_sigma(lr: np.ndarray, n_spatial: int) -> float:
    """Robust white-noise σ of an image: MAD of its mixed finite difference over the spatial axes.

    The mixed difference ``Δ₀Δ₁…`` of white noise σ has σ·√(2ᵏ); smooth structure mostly cancels, and
    the median ignores the edges it leaves (Donoho's estimator, on differences instead of wavelets).

    Parameters
    ----------
    lr : numpy.ndarray
        ``(*spatial, ...)``, each spatial size ≥ 2.
    n_spatial : int
        Number of leading spatial axes.

    Returns
    -------
    float
        σ in image units (0 for a noise-free piecewise-constant image).
    """
    d = np.asarray(lr, dtype=np.float64)
    for axis in range(n_spatial):
        d = np.diff(d, axis=axis)
    return float(np.median(np.abs(d)) / _MAD_PER_SIGMA / math.sqrt(2.0**n_spatial))
