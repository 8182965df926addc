"""Generic degradation: antialiased bicubic downsampling (MATLAB ``imresize`` / PIL), optional noise."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sciSR.degrade.kernels import cubic_profile, downsample_axis, sample_axis
from sciSR.degrade.noise import RandomLike, gaussian_noise


def bicubic_downsample(
    x: np.ndarray,
    scale: Sequence[int],
    antialias: bool = True,
    noise_std: float = 0.0,
    rng: RandomLike | None = None,
) -> np.ndarray:
    """Bicubic (Keys, ``a = −0.5``) downsampling per scaled axis on the FOV-preserving grid.

    Parameters
    ----------
    x : numpy.ndarray
        ``(*spatial, ...)``; each scaled size a multiple of its factor.
    scale : sequence of int
        Factor per spatial axis.
    antialias : bool
        Stretch the kernel by the factor (what image libraries do when shrinking); False samples the
        bicubic interpolant and aliases.
    noise_std : float
        Additive Gaussian σ in image units.
    rng : numpy random generator, optional
        Needed when ``noise_std > 0``.

    Returns
    -------
    numpy.ndarray
        float32 ``(*spatial / scale, ...)``; LR pixel ``n`` centred on HR ``s·n + (s − 1)/2``.
    """
    out = np.asarray(x, dtype=np.float32)
    for axis, s in enumerate(scale):
        if s > 1:
            out = downsample_axis(out, axis, s, *cubic_profile(s, antialias=antialias))
    return gaussian_noise(out, noise_std, rng)


def bicubic_resample(x: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Antialiased bicubic shrink of the leading axes onto ``shape`` voxels, any ratio, field of view kept.

    The non-integer sibling of :func:`bicubic_downsample` (kernel stretched by ``n/m``; sample ``j`` centred
    on input position ``(j + 0.5)·n/m − 0.5``). Means are kept.

    Parameters
    ----------
    x : numpy.ndarray
        ``(*spatial, ...)`` values.
    shape : sequence of int
        New size of each leading spatial axis, each ≤ the old one.

    Returns
    -------
    numpy.ndarray
        float32 ``(*shape, ...)``.
    """
    out = np.asarray(x, dtype=np.float32)
    for axis, m in enumerate(shape):
        n = out.shape[axis]
        if m < n:
            out = sample_axis(out, axis, int(m), *cubic_profile(n / m))
    return out
