"""White-noise level of an image, for the noise-weighted projections, the self-check and test-time adaptation."""

from __future__ import annotations

import math

import numpy as np

# Median absolute deviation of a Gaussian, in standard deviations.
_MAD_PER_SIGMA = 0.6745


def estimate_noise_sigma(lr: np.ndarray, n_spatial: int) -> float:
    """Robust white-noise σ of an image: MAD of its mixed finite difference over the spatial axes.

    The mixed difference ``Δ₀Δ₁…`` of white noise σ has σ·√(2ᵏ); smooth structure mostly cancels, and
    the median ignores the edges it leaves (Donoho's estimator, on differences instead of wavelets).
    Spatial axes of size 1 (a 2D slice held as ``(n, m, 1)``) are left out of the difference; NaN samples
    (masked) are ignored.

    Parameters
    ----------
    lr : numpy.ndarray
        ``(*spatial, ...)``.
    n_spatial : int
        Number of leading spatial axes.

    Returns
    -------
    float
        σ in image units (0 for a noise-free piecewise-constant image, or one with no axis of size ≥ 2).
    """
    d = np.asarray(lr, dtype=np.float64)
    axes = [a for a in range(n_spatial) if d.shape[a] >= 2]
    for axis in axes:
        d = np.diff(d, axis=axis)
    d = np.abs(d[np.isfinite(d)])
    if not axes or d.size == 0:
        return 0.0
    return float(np.median(d) / _MAD_PER_SIGMA / math.sqrt(2.0 ** len(axes)))


def match_noise(lr: np.ndarray, hr: np.ndarray, n_spatial: int, seed: int, *, target: float | None = None
                ) -> tuple[np.ndarray, float]:
    """``lr`` with white Gaussian noise added up to the noise level of ``hr``, and the σ added.

    Degrading an image averages its noise away, so a copy made from the input is cleaner than the input:
    a network adapted on it would learn to keep noise rather than remove it (ZSSR adds noise to its LR
    copies for the same reason), and a self-check on it would judge the projection on a cleaner image
    than the one it is applied to. Both levels are :func:`estimate_noise_sigma`'s robust estimates; a
    noise-free image gets nothing added.

    Parameters
    ----------
    lr : numpy.ndarray
        ``(*spatial, ...)`` the degraded copy.
    hr : numpy.ndarray
        ``(*spatial, ...)`` the image it was made from.
    n_spatial : int
        Number of leading spatial axes.
    seed : int
        Seed of the noise draw.
    target : float, optional
        ``hr``'s σ when the caller has already estimated it (:func:`estimate_noise_sigma`).

    Returns
    -------
    lr : numpy.ndarray
        float32, noise added.
    sigma : float
        The σ added, in image units (0: none).
    """
    target = estimate_noise_sigma(hr, n_spatial) if target is None else target
    present = estimate_noise_sigma(lr, n_spatial)
    sigma = math.sqrt(max(target**2 - present**2, 0.0))
    if sigma == 0.0:
        return lr, 0.0
    noise = np.random.default_rng(seed).normal(0.0, sigma, lr.shape).astype(np.float32)
    return lr + noise, round(sigma, 6)


def without_rician_floor(magnitude: np.ndarray, sigma: float) -> np.ndarray:
    """A magnitude image with its Rician noise floor removed: ``√max(M² − 2σ², 0)``.

    Where a magnitude MR image holds no signal its noise is Rayleigh, of mean 1.25 σ rather than 0, and
    it is biased up wherever the signal is within a few σ (``E[M²] = A² + 2σ²``, Gudbjartsson & Patz,
    MRM 1995). A network trained on Rician inputs against noise-free truths removes that floor; a data-
    consistency projection onto the input puts it back, since it is as low in frequency as the
    background it covers. Subtracting ``2σ²`` from the squared magnitude removes the bias of the second
    moment; well above the noise it changes a value by about ``σ²/M``.

    Parameters
    ----------
    magnitude : numpy.ndarray
        Non-negative magnitude image, any shape.
    sigma : float
        σ of each of the real and imaginary parts of the complex noise, in image units.

    Returns
    -------
    numpy.ndarray
        float64, the shape of ``magnitude``.
    """
    m = np.asarray(magnitude, dtype=np.float64)
    return np.sqrt(np.maximum(m * m - 2.0 * sigma * sigma, 0.0))


RECORRUPT_ALPHA = 0.5
"""Share of the extra noise draw added to the self-check's input copy (its reference gets −1/α of it)."""


def recorrupted_pair(x: np.ndarray, n_spatial: int, seed: int, alpha: float = RECORRUPT_ALPHA
                     ) -> tuple[np.ndarray, np.ndarray, float]:
    """Two copies of a noisy ``x`` whose noises are independent: one to degrade, one to score against.

    Scored against ``x`` itself, a self-check rewards whatever keeps the noise its degraded copy inherits
    from ``x`` (a data-consistency projection does): copy and reference share that noise. With white noise
    σ in ``x`` and a fresh draw ``z`` of the same σ, ``x + α·z`` and ``x − z/α`` carry noises whose
    covariance is σ² − σ² = 0 (Recorrupted-to-Recorrupted, Pang et al., CVPR 2021). Every estimate's mean
    squared error against the second then exceeds its error against the noise-free image by the same
    σ²·(1 + 1/α²), so comparisons of estimates are unbiased. A noise-free ``x`` is returned twice.

    Parameters
    ----------
    x : numpy.ndarray
        ``(*spatial, ...)``.
    n_spatial : int
        Number of leading spatial axes.
    seed : int
        Seed of the draw.
    alpha : float
        The split; small keeps the copy's noise near the input's (1.12 σ at 0.5), at the price of a noisier
        reference (2.24 σ).

    Returns
    -------
    source : numpy.ndarray
        float32, ``x + α·z``.
    reference : numpy.ndarray
        float32, ``x − z/α``.
    sigma : float
        σ of ``z``, :func:`estimate_noise_sigma` of ``x`` (0: nothing drawn).
    """
    sigma = estimate_noise_sigma(x, n_spatial)
    x = np.asarray(x, dtype=np.float32)
    if sigma == 0.0:
        return x, x, 0.0
    z = np.random.default_rng(seed).normal(0.0, sigma, x.shape).astype(np.float32)
    return x + np.float32(alpha) * z, x - z / np.float32(alpha), sigma
