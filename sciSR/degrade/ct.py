"""CT in-plane degradation: reconstruction blur, detector-pixel averaging, noise in HU.

Arrays are ``(*spatial, ...)`` with trailing axes (channels) kept; values in HU.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from sciSR.blocks import bin_array
from sciSR.degrade.kernels import FWHM_PER_SIGMA, per_axis
from sciSR.degrade.noise import RandomLike, gaussian_noise


def ct_downsample(
    x: np.ndarray,
    scale: Sequence[int],
    fwhm: float | Sequence[float] = 1.0,
    noise_std: float = 0.0,
    rng: RandomLike | None = None,
) -> np.ndarray:
    """Gaussian blur along the scaled axes, block mean, then white Gaussian noise in HU.

    The Gaussian stands for the reconstruction kernel and focal spot; the block mean for the larger
    detector pixel. Both are centred, so LR pixel ``n`` sits on HR ``s·n + (s − 1)/2``.

    Parameters
    ----------
    x : numpy.ndarray
        ``(*spatial, ...)`` in HU; each scaled size a multiple of its factor.
    scale : sequence of int
        Factor per spatial axis, e.g. ``(2, 2)`` or ``(2, 2, 1)``.
    fwhm : float or sequence of float
        Extra blur FWHM in HR voxels along each scaled axis (0: block mean only).
    noise_std : float
        Noise σ in HU.
    rng : numpy random generator, optional
        Needed when ``noise_std > 0``.

    Returns
    -------
    numpy.ndarray
        float32 ``(*spatial / scale, ...)`` in HU.
    """
    widths = per_axis(fwhm, len(scale), "fwhm")
    out = np.asarray(x, dtype=np.float32)
    for axis, (s, w) in enumerate(zip(scale, widths, strict=True)):
        if s > 1 and w > 0:
            out = ndimage.gaussian_filter1d(out, w / FWHM_PER_SIGMA, axis=axis, mode="reflect")
    return gaussian_noise(bin_array(out, scale, "mean").astype(np.float32, copy=False), noise_std, rng)
