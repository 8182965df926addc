"""The k-space degradation family of issue 19: Tukey window, zero-filled partial Fourier, relative noise."""

import numpy as np
import pytest
import torch

from sciSR.degrade.monai_transforms import RandKSpaceDownsample, create_degradation
from sciSR.degrade.mri import kspace_downsample, kspace_truncate
from sciSR.errors import SciSRError


def _phantom(shape=(64, 48)) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    disc = ((yy - 30.3) ** 2 / 18**2 + (xx - 23.6) ** 2 / 14**2 < 1).astype(np.float32)
    return 100.0 * disc + 40.0 * ((yy - 25) ** 2 + (xx - 20) ** 2 < 25)


def test_tukey_rings_less_than_sharp_and_blurs_less_than_hamming():
    hr = _phantom()
    sharp, hamming, tukey = (kspace_downsample(hr, (2, 2), w) for w in (None, "hamming", "tukey"))
    # Overshoot above the disc's plateau (Gibbs) and the edge's steepness order the three windows.
    assert sharp.max() > tukey.max() > hamming.max() - 1e-3
    steep = [np.abs(np.diff(lr, axis=1)).max() for lr in (sharp, tukey, hamming)]
    assert steep[0] > steep[1] > steep[2]


def test_partial_fourier_keeps_the_means_and_loses_resolution_along_the_first_axis_only():
    hr = _phantom()
    full = kspace_truncate(hr, (2, 2))
    part = kspace_truncate(hr, (2, 2), partial=0.625)
    np.testing.assert_allclose(part.mean(), full.mean(), rtol=1e-5)  # the DC line is always acquired
    spectrum = np.abs(np.fft.fft2(part) - np.fft.fft2(full))
    ky = np.rint(np.fft.fftfreq(32) * 32)
    # Only the missing negative phase-encoding lines differ: top round(0.625·32) = 20 lines kept, k ≥ −4.
    assert spectrum[ky >= -4].max() < 1e-3 * np.abs(np.fft.fft2(full)).max()
    assert spectrum[ky < -4].max() > 0
    magnitude = kspace_downsample(hr, (2, 2), partial=0.625)
    assert magnitude.shape == (32, 24) and np.isfinite(magnitude).all()
    for bad in (0.5, 1.2):
        with pytest.raises(SciSRError, match="partial Fourier"):
            kspace_truncate(hr, (2, 2), partial=bad)


def test_random_family_draws_windows_partial_fourier_and_relative_noise():
    t = RandKSpaceDownsample((2, 2), window_prob=0.3, tukey_prob=0.3, partial_prob=0.5, noise_rel=(0.03, 0.03))
    t.set_random_state(0)
    seen = set()
    for _ in range(60):
        t.randomize()
        seen.add((t._window, t._partial < 1.0))
    assert {w for w, _ in seen} == {None, "hamming", "tukey"} and {p for _, p in seen} == {True, False}
    # σ is a fraction of the image's 99th percentile: ten times the image, ten times the noise.
    hr = _phantom()
    quiet = RandKSpaceDownsample((2, 2), window_prob=0.0, noise_rel=(0.03, 0.03))
    residuals = []
    for scale in (1.0, 10.0):
        quiet.set_random_state(1)
        noisy = quiet(torch.from_numpy(scale * hr[None]))[0].numpy()
        clean = kspace_downsample(scale * hr, (2, 2))
        residuals.append(np.std((noisy - clean)[clean < 1]))  # background: Rician ≈ Rayleigh there
    assert residuals[1] / residuals[0] == pytest.approx(10.0, rel=0.05)
    assert create_degradation("kspace", (2, 2), tukey_prob=0.5, partial_prob=0.1, noise_rel=[0, 0.03])
    for bad in (dict(window_prob=0.7, tukey_prob=0.4), dict(partial_prob=1.5), dict(noise_rel=(0.03, 0.01)),
                dict(noise_prob=-0.1)):
        with pytest.raises(SciSRError):
            RandKSpaceDownsample((2, 2), **bad)


def test_noise_prob_leaves_that_share_of_draws_noise_free():
    hr = _phantom()
    clean = kspace_downsample(hr, (2, 2))
    t = RandKSpaceDownsample((2, 2), window_prob=0.0, noise_rel=(0.03, 0.03), noise_prob=0.6)
    t.set_random_state(0)
    noise_free = [np.allclose(t(torch.from_numpy(hr[None]))[0].numpy(), clean, atol=1e-5) for _ in range(200)]
    assert np.mean(noise_free) == pytest.approx(0.4, abs=0.1)
    # The default draws noise every time, from the same random stream as before the option existed.
    always = RandKSpaceDownsample((2, 2), window_prob=0.0, noise_rel=(0.03, 0.03))
    always.set_random_state(0)
    assert not any(np.allclose(always(torch.from_numpy(hr[None]))[0].numpy(), clean, atol=1e-5) for _ in range(20))
    assert create_degradation("kspace", (2, 2), noise_rel=[0, 0.03], noise_prob=0.6)


def test_array_form_truncates_the_drawn_truth_and_hands_it_out():
    hr = _phantom()[None]  # (C, y, x)
    t = RandKSpaceDownsample((2, 2), window_prob=0.0, smooth_prob=1.0, smooth_sigma=(1.0, 1.0))
    t.set_random_state(0)
    lr = t(hr)
    target = t.target(hr)
    from scipy import ndimage

    np.testing.assert_allclose(target[0], ndimage.gaussian_filter(hr[0], 1.0, mode="wrap"), atol=1e-4)
    # The pair is exact: the LR is the truncation of the smoothed target, not of the sharp patch.
    np.testing.assert_allclose(lr[0], kspace_downsample(target[0], (2, 2)), atol=1e-3)
    assert np.abs(lr[0] - kspace_downsample(hr[0], (2, 2))).max() > 0.05 * np.abs(hr).max()
    plain = RandKSpaceDownsample((2, 2), window_prob=0.0)
    plain(hr)
    assert plain.target(hr) is hr


def test_smooth_prob_smooths_the_truth_and_its_truncation_alike():
    from sciSR.degrade.monai_transforms import RandKSpaceDownsampled

    hr = _phantom()[None]  # (C, y, x)
    t = RandKSpaceDownsampled("hr", (2, 2), window_prob=0.0, smooth_prob=1.0, smooth_sigma=(1.0, 1.0),
                              output_keys="lr")
    t.set_random_state(0)
    d = t({"hr": hr})
    from scipy import ndimage

    truth = ndimage.gaussian_filter(hr[0], 1.0, mode="wrap")
    np.testing.assert_allclose(d["hr"][0], truth, atol=1e-4)
    np.testing.assert_allclose(d["lr"][0], kspace_downsample(truth, (2, 2)), atol=1e-3)
    assert np.abs(np.diff(d["hr"][0], axis=1)).max() < 0.5 * np.abs(np.diff(hr[0], axis=1)).max()
    # Without the option the truth is the patch itself, and the draws are those of before the option existed.
    plain = RandKSpaceDownsampled("hr", (2, 2), window_prob=0.5, noise_rel=(0.0, 0.03), output_keys="lr")
    bare = RandKSpaceDownsample((2, 2), window_prob=0.5, noise_rel=(0.0, 0.03))
    plain.set_random_state(3)
    bare.set_random_state(3)
    for _ in range(5):
        d = plain({"hr": hr})
        assert d["hr"] is hr  # untouched, not even copied
        np.testing.assert_array_equal(d["lr"], bare(hr))
    # A third of the draws smooth with smooth_prob=1/3.
    third = RandKSpaceDownsample((2, 2), window_prob=0.0, smooth_prob=1 / 3)
    third.set_random_state(0)
    smoothed = []
    for _ in range(150):
        third.randomize()
        smoothed.append(not np.array_equal(third.truth(hr[0][..., None]), hr[0][..., None]))
    assert np.mean(smoothed) == pytest.approx(1 / 3, abs=0.1)
    with pytest.raises(SciSRError):
        RandKSpaceDownsample((2, 2), smooth_prob=1.5)
    with pytest.raises(SciSRError):
        RandKSpaceDownsample((2, 2), smooth_sigma=(1.0, 0.5))
