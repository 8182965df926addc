"""Noise models in the image's own units (seeded by the caller's random generator)."""

from __future__ import annotations

import numpy as np

from sciSR.errors import SciSRError

RandomLike = np.random.RandomState | np.random.Generator


def _need(rng: RandomLike | None) -> RandomLike:
    if rng is None:
        raise SciSRError("noise needs a random generator (rng)")
    return rng


def gaussian_noise(x: np.ndarray, std: float, rng: RandomLike | None) -> np.ndarray:
    """``x + N(0, std²)``; ``std`` in the units of ``x`` (e.g. HU)."""
    if std <= 0:
        return x
    return (x + _need(rng).normal(0.0, std, size=x.shape)).astype(x.dtype, copy=False)


def rician_magnitude(z: np.ndarray, std: float, rng: RandomLike | None) -> np.ndarray:
    """Magnitude image of a complex image with complex Gaussian noise: ``|z + σ(n₁ + i n₂)|``.

    Magnitude MR images are Rician: Gaussian where the signal is high, Rayleigh (biased up) in the
    background. ``std`` is σ of each of the real and imaginary parts, in image units.

    Returns
    -------
    numpy.ndarray
        Real, same shape as ``z``, float32 for complex64 input.
    """
    if std > 0:
        rng = _need(rng)
        z = z + (rng.normal(0.0, std, size=z.shape) + 1j * rng.normal(0.0, std, size=z.shape)).astype(z.dtype)
    return np.abs(z)


def poisson_read_noise(x: np.ndarray, gain: float | None, read_noise: float, rng: RandomLike | None) -> np.ndarray:
    """Photon (Poisson) noise plus Gaussian read noise, in image units (e.g. ADU).

    Parameters
    ----------
    x : numpy.ndarray
        Expected signal in image units, sky included (negative values count as zero photons).
    gain : float, optional
        Electrons per image unit (e⁻/ADU); the Poisson draw is on ``x·gain`` electrons (None: no
        photon noise).
    read_noise : float
        Read-noise σ in image units.
    rng : numpy random generator

    Returns
    -------
    numpy.ndarray
        Same shape and dtype as ``x``.
    """
    if gain is None and read_noise <= 0:
        return x
    rng = _need(rng)
    noisy = x if gain is None else rng.poisson(np.clip(x, 0.0, None).astype(np.float64) * gain) / gain
    if read_noise > 0:
        noisy = noisy + rng.normal(0.0, read_noise, size=x.shape)
    return noisy.astype(x.dtype, copy=False)
