"""MONAI array + dictionary transforms: types kept, seeded random versions, clear option errors."""

import numpy as np
import pytest
import torch

from sciSR.blocks import bin_array
from sciSR.degrade import (
    DEGRADATIONS,
    BinDownsampled,
    KSpaceDownsample,
    RandBicubicDownsample,
    RandCTDownsampled,
    RandKSpaceDownsample,
    RandTelescopeDownsample,
    RandThickSlice,
    ThickSlice,
    create_degradation,
)
from sciSR.errors import SciSRError

OPTIONS = {
    "bin": {},
    "thick_slice": {"gap": [0, 1], "noise_std": [0, 0.1]},
    "kspace": {"noise_std": [0, 0.1]},
    "ct": {"fwhm": [1, 3], "noise_std": [0, 10]},
    "telescope": {"psf": "moffat", "fwhm": [1, 3], "gain": 10.0, "read_noise": [0, 1]},
    "bicubic": {"noise_std": [0, 0.1]},
}


@pytest.mark.parametrize("name", sorted(DEGRADATIONS))
def test_channel_first_numpy_and_torch(name):
    x = np.random.default_rng(0).random((2, 16, 24, 8)).astype(np.float32) * 100
    t = create_degradation(name, (2, 4, 1), **OPTIONS[name])
    out = t(x)
    assert isinstance(out, np.ndarray) and out.shape == (2, 8, 6, 8) and out.dtype == np.float32
    out_t = t(torch.from_numpy(x))
    assert isinstance(out_t, torch.Tensor) and tuple(out_t.shape) == (2, 8, 6, 8)


@pytest.mark.parametrize("name", [n for n in DEGRADATIONS if n != "bin"])
def test_random_versions_are_seedable(name):
    x = np.random.default_rng(0).random((1, 32, 32)).astype(np.float32) * 100
    t = create_degradation(name, 2, **OPTIONS[name])
    a = t.set_random_state(7)(x)
    b = t.set_random_state(7)(x)
    c = t.set_random_state(8)(x)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_dictionary_versions_write_output_keys_and_share_draws():
    x = np.random.default_rng(0).random((1, 32, 32)).astype(np.float32) * 100
    d = RandCTDownsampled(keys=("a", "b"), scale=2, fwhm=[1, 3], output_keys=("la", "lb")).set_random_state(3)
    out = d({"a": x, "b": x})
    assert set(out) == {"a", "b", "la", "lb"} and out["la"].shape == (1, 16, 16)
    np.testing.assert_array_equal(out["la"], out["lb"])  # no noise: same parameters, same result
    assert BinDownsampled("a", 2, "sum")({"a": x})["a"].sum() == pytest.approx(x.sum(), rel=1e-5)
    assert BinDownsampled("a", 2, "sum").flux_reduce == "sum"


def test_fixed_transforms_match_functions():
    x = np.random.default_rng(0).random((1, 32, 32, 16)).astype(np.float32)
    assert ThickSlice((1, 1, 4))(x).shape == (1, 32, 32, 4)
    np.testing.assert_allclose(KSpaceDownsample((2, 2, 1))(x), RandKSpaceDownsample((2, 2, 1), window_prob=0)(x),
                               rtol=1e-6)
    assert RandTelescopeDownsample(2).flux_reduce == "sum"


def test_option_errors_name_the_option():
    with pytest.raises(SciSRError, match="unknown option 'sigma' for degradation 'ct'"):
        create_degradation("ct", 2, sigma=1)
    with pytest.raises(SciSRError, match="unknown degradation 'blur'"):
        create_degradation("blur", 2)
    with pytest.raises(SciSRError, match="low ≤ high"):
        create_degradation("ct", 2, noise_std=[5, 1])


def test_telescope_gain_range_varies_the_photon_noise():
    """A gain range draws the signal-to-noise ratio per call: fewer electrons per count, more relative noise."""
    flat = torch.full((1, 64, 64), 100.0)
    spread = []
    for gain in (0.25, 8.0):
        t = RandTelescopeDownsample(2, psf=None, gain=(gain, gain))
        t.set_random_state(0)
        spread.append(float(t(flat).std()))
    # Poisson: σ of a block sum of 400 counts is sqrt(400/g) counts.
    assert spread[0] / spread[1] == pytest.approx(np.sqrt(8.0 / 0.25), rel=0.15)
    with pytest.raises(SciSRError, match="gain must be positive"):
        RandTelescopeDownsample(2, gain=(0.0, 1.0))
    assert RandTelescopeDownsample(2, gain=None)(flat).std() == 0


def test_thick_slice_profile_mix():
    """boxcar_prob draws a boxcar profile for that share of the calls, the given profile otherwise."""
    t = RandThickSlice((1, 4), profile="gaussian", boxcar_prob=0.4)
    t.set_random_state(0)
    drawn = []
    for _ in range(200):
        t.randomize()
        drawn.append(t.profile)
    assert set(drawn) == {"gaussian", "boxcar"} and 0.3 < drawn.count("boxcar") / 200 < 0.5
    fixed = RandThickSlice((1, 4))
    fixed.set_random_state(0)
    fixed.randomize()
    assert fixed.profile == "gaussian"
    with pytest.raises(SciSRError, match="boxcar_prob"):
        RandThickSlice((1, 4), boxcar_prob=1.5)


def test_bicubic_box_mix():
    """box_prob swaps the bicubic kernel for an exact block mean in that share of the calls."""
    x = np.random.default_rng(0).random((1, 16, 16)).astype(np.float32)
    always = RandBicubicDownsample((2, 2), box_prob=1.0)
    always.set_random_state(0)
    np.testing.assert_allclose(always(x)[0], bin_array(x[0], (2, 2), "mean"), atol=1e-6)
    never = RandBicubicDownsample((2, 2))
    never.set_random_state(0)
    assert np.abs(never(x)[0] - bin_array(x[0], (2, 2), "mean")).max() > 1e-3
    mixed = RandBicubicDownsample((2, 2), box_prob=0.4)
    mixed.set_random_state(0)
    drawn = []
    for _ in range(200):
        mixed.randomize()
        drawn.append(mixed._box)
    assert 0.3 < sum(drawn) / 200 < 0.5
    with pytest.raises(SciSRError, match="box_prob"):
        RandBicubicDownsample((2, 2), box_prob=-0.1)
