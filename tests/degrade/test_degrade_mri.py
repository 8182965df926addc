"""MRI degradations against their physics: k-space truncation, slice profiles, Rician noise."""

import numpy as np
import pytest
import scipy.fft

from sciSR.degrade import kspace_downsample, kspace_truncate, thick_slice
from sciSR.degrade.kernels import FWHM_PER_SIGMA
from sciSR.errors import SciSRError


@pytest.mark.parametrize("shape, scale", [((64, 48), (2, 3)), ((20, 24, 30), (1, 2, 3)), ((63,), (3,))])
def test_kspace_truncation_keeps_retained_coefficients_exactly(shape, scale):
    x = np.random.default_rng(1).random(shape).astype(np.float32)
    lr = kspace_truncate(x, scale)
    axes = tuple(range(len(shape)))
    hr_k = scipy.fft.fftn(x.astype(np.complex128), axes=axes)
    lr_k = scipy.fft.fftn(lr.astype(np.complex128), axes=axes) * np.prod(np.array(shape) / np.array(lr.shape))
    kept = np.ix_(*[np.mod(np.rint(np.fft.fftfreq(m) * m).astype(int), n)
                    for n, m in zip(shape, lr.shape, strict=True)])
    np.testing.assert_allclose(np.abs(lr_k), np.abs(hr_k[kept]), rtol=1e-4, atol=1e-3)
    # Only the phase changes, by the half-pixel ramp exp(2πi k (s−1)/(2N)) per axis.
    ramp = np.ones(lr.shape, dtype=np.complex128)
    for axis, (n, m, s) in enumerate(zip(shape, lr.shape, scale, strict=True)):
        k = np.rint(np.fft.fftfreq(m) * m)
        view = [1] * len(shape)
        view[axis] = m
        ramp = ramp * np.exp(2j * np.pi * k * (s - 1) / (2 * n)).reshape(view)
    np.testing.assert_allclose(lr_k, hr_k[kept] * ramp, rtol=1e-4, atol=1e-3)


def test_kspace_keeps_the_mean_and_rings_at_edges_unless_windowed():
    x = np.zeros((128,), np.float32)
    x[40:90] = 1.0
    # The DC coefficient is kept, so the complex image keeps the mean exactly.
    assert kspace_truncate(x[:, None], (4, 1)).real.mean() == pytest.approx(x.mean(), rel=1e-5)
    sharp = kspace_downsample(x[:, None], (4, 1))[:, 0]
    soft = kspace_downsample(x[:, None], (4, 1), window="hamming")[:, 0]
    assert sharp.max() > 1.05  # Gibbs overshoot
    assert soft.max() < sharp.max() and soft.max() < 1.02


def test_rician_noise_floor_in_background():
    sigma = 5.0
    lr = kspace_downsample(np.zeros((128, 128), np.float32), (2, 2), noise_std=sigma, rng=np.random.default_rng(0))
    # Pure noise magnitude is Rayleigh: mean σ·sqrt(π/2), never negative.
    assert lr.min() >= 0
    assert lr.mean() == pytest.approx(sigma * np.sqrt(np.pi / 2), rel=0.03)


def line_spread(profile, scale, gap=0.0, n=120, probe=10):
    """Response of LR slice ``probe`` to a single bright HR slice at every HR position."""
    response = []
    for j in range(n):
        x = np.zeros((n,), np.float32)
        x[j] = 1.0
        response.append(thick_slice(x, (scale,), profile, gap=gap)[probe])
    return np.array(response)


@pytest.mark.parametrize("scale, gap", [(4, 0.0), (5, 0.0), (4, 1.5)])
def test_gaussian_slice_profile_has_the_requested_fwhm(scale, gap):
    lsf = line_spread("gaussian", scale, gap)
    pos = np.arange(lsf.size)
    centre = (lsf * pos).sum() / lsf.sum()
    assert centre == pytest.approx(scale * 10 + (scale - 1) / 2, abs=1e-6)
    sigma = np.sqrt((lsf * (pos - centre) ** 2).sum() / lsf.sum())
    assert FWHM_PER_SIGMA * sigma == pytest.approx(scale - gap, rel=0.01)


@pytest.mark.parametrize("scale, gap", [(4, 0.0), (6, 2.0)])
def test_boxcar_slice_profile_width(scale, gap):
    lsf = line_spread("boxcar", scale, gap)
    assert np.count_nonzero(lsf >= lsf.max() / 2) == scale - gap
    assert lsf.sum() == pytest.approx(1.0, rel=1e-6)


def test_bad_gap_and_shape_are_clear_errors():
    with pytest.raises(SciSRError, match="no slice thickness"):
        thick_slice(np.zeros((8, 8), np.float32), (1, 4), gap=4)
    with pytest.raises(SciSRError, match="not a multiple"):
        kspace_truncate(np.zeros((10,), np.float32), (4,))
