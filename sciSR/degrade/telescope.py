"""Telescope degradation: PSF convolution, pixel binning by summation, photon and read noise.

Arrays are ``(*spatial, ...)`` (FITS order ``[y, x]`` for images) with trailing axes kept; values in
the image's units (counts, ADU, e⁻). Flux is conserved by the PSF (normalised to sum 1) and the binning.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from scipy import signal

from sciSR.blocks import bin_array
from sciSR.degrade.noise import RandomLike, poisson_read_noise
from sciSR.errors import SciSRError
from sciSR.io import read

PSF_KINDS = ("gaussian", "moffat")


def psf_kernel(kind: str, fwhm: float, ndim: int = 2, beta: float = 4.765, oversample: int = 5) -> np.ndarray:
    """A radially symmetric PSF on the pixel grid, integrated over each pixel, normalised to sum 1.

    Parameters
    ----------
    kind : str
        ``"gaussian"`` or ``"moffat"`` (``(1 + (r/α)²)^−β``, ``FWHM = 2α·sqrt(2^{1/β} − 1)``).
    fwhm : float
        Full width at half maximum in pixels (> 0).
    ndim : int
        Number of spatial axes.
    beta : float
        Moffat power (4.765 is the atmospheric-turbulence value; 2.5 gives broader wings).
    oversample : int
        Sub-samples per pixel and axis used to integrate over the pixel.

    Returns
    -------
    numpy.ndarray
        ``(2r + 1,) * ndim`` float64, centred on the middle pixel, sum 1.
    """
    if kind not in PSF_KINDS:
        raise SciSRError(f"PSF must be one of {PSF_KINDS} or an image, got {kind!r}")
    if fwhm <= 0:
        raise SciSRError(f"PSF FWHM must be positive, got {fwhm}")
    # Moffat wings fall off slower than a Gaussian: a larger support keeps the truncated flux small.
    radius = int(np.ceil((2.0 if kind == "gaussian" else 4.0) * fwhm)) + 1
    sub = (np.arange(oversample) + 0.5) / oversample - 0.5
    coords = (np.arange(-radius, radius + 1)[:, None] + sub[None, :]).ravel()
    r2 = sum(np.meshgrid(*([coords**2] * ndim), indexing="ij", sparse=True))
    if kind == "gaussian":
        sigma = fwhm / (2.0 * np.sqrt(2.0 * np.log(2.0)))
        fine = np.exp(-0.5 * r2 / sigma**2)
    else:
        alpha = fwhm / (2.0 * np.sqrt(2.0 ** (1.0 / beta) - 1.0))
        fine = (1.0 + r2 / alpha**2) ** (-beta)
    kernel = bin_array(fine, (oversample,) * ndim, "sum")
    return kernel / kernel.sum()


def load_psf(psf: np.ndarray | str | os.PathLike, ndim: int) -> np.ndarray:
    """Check and normalise a user PSF image (array, ``.npy`` or any file :func:`sciSR.read` takes).

    The PSF must be sampled on the high-resolution pixel grid with odd sizes, its centre on the
    middle pixel (an even size would shift the image by half a pixel).
    """
    if isinstance(psf, str | os.PathLike):
        array = np.load(psf, allow_pickle=False) if os.fspath(psf).endswith(".npy") else read(psf).array
    else:
        array = np.asarray(psf)
    array = np.asarray(array, dtype=np.float64)
    if array.ndim != ndim or any(n % 2 == 0 for n in array.shape):
        raise SciSRError(f"PSF image must have {ndim} axes of odd size (centre on the middle pixel), "
                         f"got shape {array.shape}")
    total = array.sum()
    if not np.isfinite(total) or total <= 0:
        raise SciSRError("PSF image must be finite with a positive sum")
    return array / total


def convolve_psf(x: np.ndarray, psf: np.ndarray) -> np.ndarray:
    """Convolve the leading ``psf.ndim`` axes with ``psf``, borders mirrored (no flux lost at edges)."""
    ndim = psf.ndim
    pad = [(n // 2, n // 2) for n in psf.shape] + [(0, 0)] * (x.ndim - ndim)
    padded = np.pad(x, pad, mode="symmetric")
    kernel = psf.reshape(psf.shape + (1,) * (x.ndim - ndim))
    return signal.fftconvolve(padded, kernel, mode="valid", axes=tuple(range(ndim)))


def telescope_downsample(
    x: np.ndarray,
    scale: Sequence[int],
    psf: np.ndarray | None = None,
    gain: float | None = None,
    read_noise: float = 0.0,
    rng: RandomLike | None = None,
) -> np.ndarray:
    """PSF blur, block sum (flux conserved), then Poisson + read noise.

    Parameters
    ----------
    x : numpy.ndarray
        ``(*spatial, ...)`` expected counts per HR pixel (sky included), each scaled size a multiple
        of its factor.
    scale : sequence of int
        Binning factor per spatial axis.
    psf : numpy.ndarray, optional
        Kernel from :func:`psf_kernel` / :func:`load_psf` on the HR grid (None: no blur).
    gain : float, optional
        Electrons per image unit for the Poisson draw (None: no photon noise).
    read_noise : float
        Read-noise σ per LR pixel, in image units.
    rng : numpy random generator, optional
        Needed for noise.

    Returns
    -------
    numpy.ndarray
        float32 ``(*spatial / scale, ...)``; each LR pixel is the sum of its ``∏s`` HR pixels
        (before noise), so LR pixel ``n`` is centred on HR ``s·n + (s − 1)/2``.
    """
    out = np.asarray(x, dtype=np.float64)
    if psf is not None:
        out = convolve_psf(out, psf)
    return poisson_read_noise(bin_array(out, scale, "sum"), gain, read_noise, rng).astype(np.float32)
