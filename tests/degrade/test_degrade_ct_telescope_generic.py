"""CT, telescope and generic degradations against their physics."""

import numpy as np
import pytest

from sciSR.degrade import (
    bicubic_downsample,
    bin_array,
    convolve_psf,
    ct_downsample,
    load_psf,
    psf_kernel,
    telescope_downsample,
)
from sciSR.errors import SciSRError


def test_ct_keeps_hu_and_adds_noise_of_the_requested_sigma():
    hu = np.full((128, 128), 40.0, np.float32)
    hu[:, :64] = -1000.0
    lr = ct_downsample(hu, (2, 2), fwhm=2.0, noise_std=12.0, rng=np.random.default_rng(0))
    assert lr.shape == (64, 64)
    assert lr[:, 40:].mean() == pytest.approx(40.0, abs=1.0)
    assert lr[:, :24].mean() == pytest.approx(-1000.0, abs=1.0)
    assert lr[:, 40:].std() == pytest.approx(12.0, rel=0.05)


def test_telescope_binning_conserves_flux_exactly():
    rng = np.random.default_rng(3)
    counts = rng.random((64, 96)) * 100
    assert bin_array(counts, (4, 2), "sum").sum() == pytest.approx(counts.sum(), rel=1e-12)
    lr = telescope_downsample(counts.astype(np.float32), (4, 2))
    assert lr.sum() == pytest.approx(counts.sum(), rel=1e-6)


@pytest.mark.parametrize("kind", ["gaussian", "moffat"])
def test_psf_is_normalised_centred_with_its_fwhm(kind):
    kernel = psf_kernel(kind, 4.0, ndim=2, beta=3.0)
    assert kernel.sum() == pytest.approx(1.0)
    centre = kernel.shape[0] // 2
    np.testing.assert_allclose(kernel, kernel[::-1, ::-1])
    profile = kernel[centre]
    # Half maximum between the pixels at ±2 (FWHM 4): linear interpolation of the pixel-integrated profile.
    half = profile[centre] / 2
    right = np.interp(half, profile[centre:][::-1], np.arange(profile[centre:].size)[::-1])
    assert 2 * right == pytest.approx(4.0, rel=0.06)


def test_psf_convolution_conserves_the_flux_of_a_star():
    img = np.zeros((80, 80))
    img[40, 37] = 1000.0
    blurred = convolve_psf(img, psf_kernel("moffat", 3.0, ndim=2))
    assert blurred.sum() == pytest.approx(1000.0, rel=1e-3)
    lr = telescope_downsample(img.astype(np.float32), (2, 2), psf_kernel("moffat", 3.0, ndim=2))
    assert lr.sum() == pytest.approx(1000.0, rel=1e-3)


def test_poisson_and_read_noise_in_image_units():
    flat = np.full((256, 256), 25.0, np.float32)  # 25 counts per HR pixel → 100 per 2×2 LR pixel
    lr = telescope_downsample(flat, (2, 2), gain=2.0, read_noise=3.0, rng=np.random.default_rng(0))
    assert lr.mean() == pytest.approx(100.0, rel=0.01)
    # Variance = signal/gain (Poisson in electrons, back in counts) + read noise².
    assert lr.var() == pytest.approx(100.0 / 2.0 + 9.0, rel=0.05)


def test_user_psf_must_be_odd_and_positive(tmp_path):
    with pytest.raises(SciSRError, match="odd size"):
        load_psf(np.ones((4, 5)), 2)
    np.save(tmp_path / "psf.npy", np.ones((3, 3)))
    np.testing.assert_allclose(load_psf(tmp_path / "psf.npy", 2), np.full((3, 3), 1 / 9))


def test_bicubic_antialiasing_removes_frequencies_above_lr_nyquist():
    x = np.arange(256)
    stripes = np.sin(2 * np.pi * x * 0.4)[None, :].repeat(8, 0).astype(np.float32)  # above LR Nyquist (0.125)
    aliased = bicubic_downsample(stripes, (1, 4), antialias=False)
    filtered = bicubic_downsample(stripes, (1, 4))
    assert filtered.std() < 0.05 < aliased.std()
    flat = np.full((16, 16), 7.0, np.float32)
    np.testing.assert_allclose(bicubic_downsample(flat, (4, 4)), 7.0, rtol=1e-6)
