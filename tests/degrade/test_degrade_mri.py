"""MRI degradations against their physics: k-space truncation, slice profiles, Rician noise."""

import numpy as np
import pytest
import scipy.fft

from sciSR.degrade import (
    bicubic_downsample,
    bicubic_resample,
    kspace_downsample,
    kspace_resample,
    kspace_truncate,
    thick_slice,
)
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


def test_kspace_resample_images_a_band_limited_object_on_the_fov_grid_at_any_ratio():
    # A positive object made of frequencies every matrix keeps: fewer k-space lines sample it exactly at
    # the FOV-grid positions (j + 0.5)·n/m − 0.5, whatever the ratio n/m.
    n = (60, 48)

    def image(p0: np.ndarray, p1: np.ndarray) -> np.ndarray:
        return (3.0 + np.cos(2 * np.pi * 3 * p0 / n[0] + 0.4) + 0.5 * np.sin(2 * np.pi * 5 * p1 / n[1])
                * np.cos(2 * np.pi * 2 * p0 / n[0]))

    x = image(*np.meshgrid(np.arange(n[0]), np.arange(n[1]), indexing="ij")).astype(np.float32)
    for m in [(42, 34), (30, 24), (60, 37)]:
        centres = [(np.arange(k) + 0.5) * (size / k) - 0.5 for k, size in zip(m, n, strict=True)]
        expected = image(*np.meshgrid(*centres, indexing="ij"))
        np.testing.assert_allclose(kspace_resample(x, m), expected, atol=1e-4)
    # At an integer ratio it is the magnitude of the truncation the degradations use.
    np.testing.assert_allclose(kspace_resample(x, (30, 24)), np.abs(kspace_truncate(x, (2, 2))), atol=1e-5)
    with pytest.raises(SciSRError, match="cannot keep 61 k-space lines"):
        kspace_resample(x, (61, 48))


def test_bicubic_resample_is_the_antialiased_shrink_at_any_ratio():
    x = np.random.default_rng(3).random((40, 36, 2)).astype(np.float32)
    np.testing.assert_allclose(bicubic_resample(x, (20, 12)), bicubic_downsample(x, (2, 3)), atol=1e-6)
    shrunk = bicubic_resample(x, (29, 36))
    assert shrunk.shape == (29, 36, 2)
    np.testing.assert_array_equal(shrunk[..., 1], bicubic_resample(x[..., 1], (29, 36)))
    np.testing.assert_allclose(bicubic_resample(np.full((40, 36), 2.5, np.float32), (29, 25)), 2.5, rtol=1e-6)


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
