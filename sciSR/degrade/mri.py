"""MRI degradations: thick slices through-plane, k-space truncation in-plane, Rician noise.

Arrays are ``(*spatial, ...)``: the first ``len(scale)`` axes are spatial, trailing axes (channels) are
kept. Every output sits on the FOV-preserving grid: LR voxel ``n`` is centred on HR ``s·n + (s − 1)/2``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.fft

from sciSR.degrade.kernels import boxcar_profile, downsample_axis, gaussian_profile, per_axis
from sciSR.degrade.noise import RandomLike, rician_magnitude
from sciSR.errors import SciSRError

PROFILES = ("gaussian", "boxcar")
WINDOWS = (None, "hamming", "tukey")
TUKEY_ALPHA = 0.5
"""Taper fraction of the ``"tukey"`` window: the outer half of the kept lines rolls off by a cosine."""


def thick_slice(
    x: np.ndarray,
    scale: Sequence[int],
    profile: str = "gaussian",
    gap: float | Sequence[float] = 0.0,
    noise_std: float = 0.0,
    rng: RandomLike | None = None,
) -> np.ndarray:
    """Simulate thick slices: slice-profile blur along each axis with a factor > 1, then decimate.

    Parameters
    ----------
    x : numpy.ndarray
        ``(*spatial, ...)`` high-resolution magnitudes; each scaled size a multiple of its factor.
    scale : sequence of int
        Factor per spatial axis, e.g. ``(1, 1, 4)``: the new slice spacing is ``s`` HR voxels.
    profile : str
        ``"gaussian"`` (FWHM = slice thickness) or ``"boxcar"`` (width = slice thickness).
    gap : float or sequence of float
        Gap between slices in HR voxels (per axis or one for all); the slice thickness is ``s − gap``.
        Negative values give overlapping slices.
    noise_std : float
        Rician noise σ in image units (0: none).
    rng : numpy random generator, optional
        Needed when ``noise_std > 0``.

    Returns
    -------
    numpy.ndarray
        ``(*spatial / scale, ...)`` float32; LR slice ``n`` centred on HR ``s·n + (s − 1)/2``.
    """
    if profile not in PROFILES:
        raise SciSRError(f"slice profile must be one of {PROFILES}, got {profile!r}")
    gaps = per_axis(gap, len(scale), "gap")
    out = np.asarray(x, dtype=np.float32)
    for axis, (s, g) in enumerate(zip(scale, gaps, strict=True)):
        if s == 1:
            continue
        thickness = s - g
        if thickness <= 0:
            raise SciSRError(f"slice gap {g} leaves no slice thickness for factor {s} on axis {axis}")
        make = gaussian_profile if profile == "gaussian" else boxcar_profile
        out = downsample_axis(out, axis, s, *make(thickness))
    return out if noise_std <= 0 else rician_magnitude(out.astype(np.complex64), noise_std, rng).astype(np.float32)


def kspace_window(k: np.ndarray, m: int, window: str | None) -> np.ndarray:
    """Weight of the signed frequencies ``k`` of an ``m``-line acquisition under ``window`` (None: all 1)."""
    if window == "hamming":
        return 0.54 + 0.46 * np.cos(2 * np.pi * k / m)
    if window == "tukey":
        flat = (1 - TUKEY_ALPHA) * m / 2
        # The cosine reaches zero one line beyond the kept ones: every kept line keeps some weight, so the
        # consistency projection can still invert it.
        ramp = np.clip((np.abs(k) - flat) / (TUKEY_ALPHA * m / 2 + 1), 0.0, 1.0)
        return 0.5 * (1 + np.cos(np.pi * ramp))
    return np.ones(k.shape)


def kspace_truncate(x: np.ndarray, scale: Sequence[int], window: str | None = None,
                    partial: float = 1.0) -> np.ndarray:
    """Keep the central ``N/s`` k-space lines per scaled axis, on the FOV-preserving grid.

    Plain cropping of the DFT samples the band-limited image at HR positions ``s·n``; a phase ramp
    ``exp(2πi·k·(s − 1)/(2N))`` moves the samples to ``s·n + (s − 1)/2`` without changing any
    magnitude. The result is scaled by ``M/N`` so means (the DC term per voxel) are kept.

    Parameters
    ----------
    x : numpy.ndarray
        ``(*spatial, ...)`` real or complex image.
    scale : sequence of int
        Factor per spatial axis.
    window : str, optional
        None: sharp truncation (Gibbs ringing, as a scanner without filtering); ``"hamming"``:
        ``0.54 + 0.46·cos(2πk/M)`` over the kept lines (less ringing, softer edges); ``"tukey"``: flat over
        the inner half of the kept lines, cosine roll-off over the outer half that reaches zero one line
        past the last kept one (:data:`TUKEY_ALPHA`).
    partial : float
        Partial Fourier along the first scaled axis (the phase-encoding direction): the fraction of its
        kept lines acquired, 0.5 < ``partial`` ≤ 1; the missing lines at negative frequencies are
        zero-filled, as a scanner without homodyne reconstruction does (blur and phase along that axis).

    Returns
    -------
    numpy.ndarray
        complex64 ``(*spatial / scale, ...)``. Its DFT times ``N/M`` equals the kept HR k-space
        coefficients times the phase ramp (and window): magnitudes are kept exactly.
    """
    if window not in WINDOWS:
        raise SciSRError(f"k-space window must be one of {WINDOWS}, got {window!r}")
    if not 0.5 < partial <= 1.0:
        raise SciSRError(f"partial Fourier fraction must be in (0.5, 1], got {partial}")
    z = np.asarray(x).astype(np.complex64)
    first = next((a for a, s in enumerate(scale) if s > 1), None)
    for axis, s in enumerate(scale):
        if s == 1:
            continue
        n = z.shape[axis]
        if n % s:
            raise SciSRError(f"axis {axis} has {n} voxels, not a multiple of the factor {s}")
        z = _keep_lines(z, axis, n // s, window, partial if axis == first else 1.0)
    return z.astype(np.complex64, copy=False)


def _keep_lines(z: np.ndarray, axis: int, m: int, window: str | None, partial: float) -> np.ndarray:
    """The central ``m`` k-space lines of ``z`` along ``axis``, on the FOV grid of ``m`` samples, any ratio.

    Sample ``j`` lies at input position ``(j + 0.5)·n/m − 0.5`` (the phase ramp); values are scaled by
    ``m/n`` so means are kept.
    """
    n = z.shape[axis]
    k = np.rint(np.fft.fftfreq(m) * m).astype(np.int64)  # signed frequencies in LR FFT order
    factor = np.exp(2j * np.pi * k * (n / m - 1) / (2 * n)) * kspace_window(k, m, window)
    if partial < 1.0:
        factor = factor * (k >= (m + 1) // 2 - round(partial * m))  # the top round(partial·m) lines
    shape = [1] * z.ndim
    shape[axis] = m
    kept = np.take(scipy.fft.fft(z, axis=axis), np.mod(k, n), axis=axis)
    return scipy.fft.ifft(kept * factor.astype(np.complex64).reshape(shape), axis=axis) * np.float32(m / n)


def kspace_resample(x: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """The same object imaged with fewer k-space lines: a magnitude image of ``shape`` voxels, any ratio.

    The non-integer sibling of :func:`kspace_truncate` (sharp truncation, no window or noise): each
    leading axis keeps its central ``shape[axis]`` lines on the FOV-preserving grid, so the result is what
    a scanner with that matrix and the same field of view would reconstruct. Self-supervised SR makes its
    smaller training images ("fathers") with it.

    Parameters
    ----------
    x : numpy.ndarray
        ``(*spatial, ...)`` magnitudes.
    shape : sequence of int
        New size of each leading spatial axis, each ≤ the old one.

    Returns
    -------
    numpy.ndarray
        float32 magnitudes ``(*shape, ...)``.
    """
    z = np.asarray(x).astype(np.complex64)
    for axis, m in enumerate(shape):
        if not 1 <= m <= z.shape[axis]:
            raise SciSRError(f"axis {axis} has {z.shape[axis]} voxels; cannot keep {m} k-space lines")
        if m < z.shape[axis]:
            z = _keep_lines(z, axis, int(m), None, 1.0)
    return np.abs(z).astype(np.float32)


def kspace_downsample(
    x: np.ndarray,
    scale: Sequence[int],
    window: str | None = None,
    noise_std: float = 0.0,
    rng: RandomLike | None = None,
    partial: float = 1.0,
) -> np.ndarray:
    """In-plane MRI resolution loss: k-space truncation, then a Rician magnitude image.

    Parameters
    ----------
    x : numpy.ndarray
        ``(*spatial, ...)`` high-resolution magnitudes.
    scale : sequence of int
        Factor per spatial axis, e.g. ``(2, 2)`` or ``(2, 2, 1)``.
    window : str, optional
        See :func:`kspace_truncate`; None rings (Gibbs) at edges.
    noise_std : float
        Rician σ in image units.
    rng : numpy random generator, optional
        Needed when ``noise_std > 0``.
    partial : float
        Partial Fourier fraction of the first scaled axis (see :func:`kspace_truncate`).

    Returns
    -------
    numpy.ndarray
        float32 magnitudes ``(*spatial / scale, ...)``.
    """
    return rician_magnitude(kspace_truncate(x, scale, window, partial), noise_std, rng).astype(np.float32)
