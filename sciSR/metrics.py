"""Image-quality metrics on numpy arrays: PSNR (MONAI's) and SSIM (MONAI's definition, in float64).

Both compare a result to the high-resolution reference over the reference's data range, so values are
comparable across CT (HU), MRI and sky images.
"""

from __future__ import annotations

import numpy as np
import scipy.ndimage
import torch

SSIM_WINDOW = 11
"""Side of the SSIM window (voxels)."""
SSIM_SIGMA = 1.5
"""Standard deviation of its Gaussian weights (voxels)."""


def _filled(sr: np.ndarray, hr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both arrays as float64 with every voxel that is not finite in either set to the reference's mean."""
    if sr.shape != hr.shape:
        raise ValueError(f"shapes differ: {sr.shape} vs {hr.shape}")
    valid = np.isfinite(hr) & np.isfinite(sr)
    fill = float(np.nanmean(hr)) if valid.any() else 0.0
    return np.where(valid, sr, fill).astype(np.float64), np.where(valid, hr, fill).astype(np.float64)


def _pair(sr: np.ndarray, hr: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    a, b = _filled(sr, hr)
    return torch.from_numpy(a.astype(np.float32))[None, None], torch.from_numpy(b.astype(np.float32))[None, None]


def data_range(hr: np.ndarray) -> float:
    """Range of the finite reference values (≥ a tiny positive number)."""
    finite = hr[np.isfinite(hr)]
    return max(float(finite.max() - finite.min()), 1e-12) if finite.size else 1.0


def psnr(sr: np.ndarray, hr: np.ndarray, value_range: float | None = None) -> float:
    """Peak signal-to-noise ratio in dB.

    Parameters
    ----------
    sr, hr : numpy.ndarray
        Same shape, 2D or 3D (NaNs in either are ignored).
    value_range : float, optional
        Peak value span; default the reference's finite range.
    """
    from monai.metrics import PSNRMetric

    a, b = _pair(sr, hr)
    return float(PSNRMetric(max_val=value_range or data_range(hr))(a, b).item())


def ssim(sr: np.ndarray, hr: np.ndarray, value_range: float | None = None) -> float:
    """Structural similarity (Gaussian window 11, σ 1.5) in [−1, 1].

    Parameters
    ----------
    sr, hr : numpy.ndarray
        Same shape, 2D or 3D, each spatial size ≥ 11.
    value_range : float, optional
        Data range; default the reference's finite range.

    Notes
    -----
    The formula and window are those of MONAI's ``SSIMMetric`` (constants ``(0.01·L)²`` and ``(0.03·L)²``,
    the mean over the voxels the whole window covers), but the local moments are taken in float64 about
    the reference's mean: MONAI works in float32, where ``E[x²] − E[x]²`` loses the variance of a patch
    whose range is small next to its mean (a flat CT patch: values above 1 or far below −1).
    """
    a, b = _filled(sr, hr)
    value_range = value_range or data_range(hr)
    c1, c2 = (0.01 * value_range) ** 2, (0.03 * value_range) ** 2
    offset = float(b.mean())
    a, b = a - offset, b - offset
    radius = (SSIM_WINDOW - 1) // 2
    inner = tuple(slice(radius, n - radius) for n in b.shape)

    def local(x: np.ndarray) -> np.ndarray:
        # truncate·σ + 0.5 rounds to the window's radius: the same 11 normalised taps per axis as MONAI's.
        return scipy.ndimage.gaussian_filter(x, SSIM_SIGMA, truncate=radius / SSIM_SIGMA, mode="constant")[inner]

    mu_a, mu_b = local(a), local(b)
    var_a, var_b = local(a * a) - mu_a**2, local(b * b) - mu_b**2
    cov = local(a * b) - mu_a * mu_b
    mu_a, mu_b = mu_a + offset, mu_b + offset
    luminance = (2 * mu_a * mu_b + c1) / (mu_a**2 + mu_b**2 + c1)
    return float(np.mean(luminance * (2 * cov + c2) / (var_a + var_b + c2)))
