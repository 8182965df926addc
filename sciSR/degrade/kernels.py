"""FOV-true kernel resampling: the one primitive behind every blur-then-decimate degradation.

Low-resolution sample ``n`` along an axis downscaled by ``s`` is centred on high-resolution position
``c_n = s·n + (s − 1)/2`` (docs/architecture.md §4), so ``LR[n] = Σ_j w(j − c_n) · HR[j]`` with the weights of a
profile centred there. Because ``c_n`` moves by exactly ``s`` per LR sample, the offsets ``j − c_n`` are
the same for every ``n``: one short list of taps serves the whole axis. A boxcar of width ``s`` is the
block mean of :func:`sciSR.degrade.bin_array`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from sciSR.errors import SciSRError

FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))

Profile = Callable[[np.ndarray], np.ndarray]


def per_axis(value: float | Sequence[float], n: int, name: str) -> tuple[float, ...]:
    """One float per spatial axis from a scalar or a sequence of length ``n``."""
    values = (float(value),) * n if np.isscalar(value) else tuple(float(v) for v in value)
    if len(values) != n:
        raise SciSRError(f"{name} needs one value per spatial axis ({n}), got {len(values)}")
    return values


def gaussian_profile(fwhm: float) -> tuple[Profile, float]:
    """Gaussian sampled at voxel centres.

    Parameters
    ----------
    fwhm : float
        Full width at half maximum, in high-resolution voxels (> 0).

    Returns
    -------
    profile : callable
        ``w(d)`` for offsets ``d`` in voxels (unnormalised).
    radius : float
        Support half-width in voxels (4 σ).
    """
    if fwhm <= 0:
        raise SciSRError(f"profile FWHM must be positive, got {fwhm}")
    sigma = fwhm / FWHM_PER_SIGMA
    return (lambda d: np.exp(-0.5 * (d / sigma) ** 2)), max(4.0 * sigma, 0.5)


def boxcar_profile(width: float) -> tuple[Profile, float]:
    """Boxcar of ``width`` voxels, integrated over each voxel (exact for fractional widths).

    The weight of a voxel is the length of ``[d − ½, d + ½] ∩ [−width/2, width/2]``, so a width equal
    to the factor gives the block mean exactly.
    """
    if width <= 0:
        raise SciSRError(f"boxcar width must be positive, got {width}")
    half = width / 2.0
    return (lambda d: np.clip(np.minimum(d + 0.5, half) - np.maximum(d - 0.5, -half), 0.0, None)), half + 0.5


def cubic_profile(factor: float, a: float = -0.5, antialias: bool = True) -> tuple[Profile, float]:
    """Keys cubic convolution kernel (``a = −0.5``: MATLAB ``imresize`` / PIL bicubic).

    With ``antialias`` the kernel is stretched by the factor (support ``4·s`` voxels), as an
    antialiased image resize does; without it, it samples the plain bicubic interpolant.
    """
    stretch = float(factor) if antialias else 1.0

    def profile(d: np.ndarray) -> np.ndarray:
        x = np.abs(d / stretch)
        inner = ((a + 2) * x - (a + 3)) * x * x + 1
        outer = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
        return np.where(x <= 1, inner, np.where(x < 2, outer, 0.0))

    return profile, 2.0 * stretch


def mirror_index(index: np.ndarray, n: int) -> np.ndarray:
    """Fold indices into ``[0, n)`` by mirroring about the outer voxel edges (``d c b a | a b c d``).

    The same border rule as ``scipy.ndimage`` ``mode="reflect"`` and the interpolation baselines.
    """
    period = np.mod(index, 2 * n)
    return np.where(period >= n, 2 * n - 1 - period, period)


def downsample_axis(x: np.ndarray, axis: int, factor: int, profile: Profile, radius: float) -> np.ndarray:
    """Blur with a centred profile and decimate by ``factor`` along one axis, on the FOV grid.

    Parameters
    ----------
    x : numpy.ndarray
        Any shape; ``x.shape[axis]`` must be a multiple of ``factor``.
    axis : int
        Axis to downsample.
    factor : int
        Integer factor ``s`` (1 returns ``x`` unchanged).
    profile : callable
        ``w(d)``, weight of a voxel at offset ``d`` (voxels) from the LR sample centre.
    radius : float
        Offsets beyond ``radius`` have zero weight.

    Returns
    -------
    numpy.ndarray
        ``x.shape`` with ``shape[axis] // factor``; sample ``n`` is centred on ``s·n + (s − 1)/2``;
        weights sum to one (means are kept); borders mirrored. Float32 in, float32 out.
    """
    n = x.shape[axis]
    if factor == 1:
        return x
    if n % factor:
        raise SciSRError(f"axis {axis} has {n} voxels, not a multiple of the factor {factor}")
    # Integer factors are the special case of sample_axis whose centres fall on s·n + (s − 1)/2.
    return sample_axis(x, axis, n // factor, profile, radius)


def sample_axis(x: np.ndarray, axis: int, length: int, profile: Profile, radius: float) -> np.ndarray:
    """Blur with a centred profile and sample ``length`` points along one axis, on the FOV grid, any ratio.

    The non-integer sibling of :func:`downsample_axis`: sample ``m`` is centred on input position
    ``(m + 0.5)·n/length − 0.5`` (docs/architecture.md §3), weights taken from ``profile`` at each input
    voxel's offset from that centre and normalised to one; borders mirrored.

    Parameters
    ----------
    x : numpy.ndarray
        Any shape.
    axis : int
        Axis to sample.
    length : int
        Number of samples (≤ ``x.shape[axis]``).
    profile : callable
        ``w(d)``, weight of a voxel at offset ``d`` (input voxels) from the sample centre.
    radius : float
        Offsets beyond ``radius`` have zero weight.

    Returns
    -------
    numpy.ndarray
        ``x.shape`` with ``shape[axis] = length``, float32 (or wider when ``x`` is).
    """
    n = x.shape[axis]
    centres = (np.arange(length) + 0.5) * (n / length) - 0.5
    first = np.floor(centres - radius).astype(int)
    taps = np.arange(int(np.ceil(2 * radius)) + 2)
    index = first[:, None] + taps[None, :]  # (length, taps)
    offsets = index - centres[:, None]
    weights = np.where(np.abs(offsets) <= radius, profile(offsets), 0.0)
    weights = weights / weights.sum(axis=1, keepdims=True)
    dtype = np.result_type(x.dtype, np.float32)
    moved = np.moveaxis(np.asarray(x), axis, 0)
    out = np.zeros((length, *moved.shape[1:]), dtype=dtype)
    for k in range(index.shape[1]):
        w = weights[:, k].astype(dtype).reshape(-1, *([1] * (moved.ndim - 1)))
        out += w * moved[mirror_index(index[:, k], n)]
    return np.moveaxis(out, 0, axis)
