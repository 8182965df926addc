"""Image-quality metrics on numpy arrays: PSNR and SSIM (MONAI's implementations).

Both compare a result to the high-resolution reference over the reference's data range, so values are
comparable across CT (HU), MRI and sky images.
"""

from __future__ import annotations

import numpy as np
import torch


def _pair(sr: np.ndarray, hr: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    if sr.shape != hr.shape:
        raise ValueError(f"shapes differ: {sr.shape} vs {hr.shape}")
    valid = np.isfinite(hr) & np.isfinite(sr)
    fill = float(np.nanmean(hr)) if valid.any() else 0.0
    a = torch.from_numpy(np.where(valid, sr, fill).astype(np.float32))[None, None]
    b = torch.from_numpy(np.where(valid, hr, fill).astype(np.float32))[None, None]
    return a, b


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
    """
    from monai.metrics import SSIMMetric

    a, b = _pair(sr, hr)
    metric = SSIMMetric(spatial_dims=sr.ndim, data_range=value_range or data_range(hr))
    return float(metric(a, b).mean().item())
