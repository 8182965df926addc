"""Flux modes from BUNIT and the exact block projection (docs/architecture.md §4)."""

import numpy as np
import pytest

from sciSR.flux import enforce_flux, flux_mode_for_units


@pytest.mark.parametrize("unit", ["counts", "COUNTS", "ADU", "electrons", "e-/s", "DN", "Jy/pixel", "count/s"])
def test_count_like_units_conserve(unit):
    assert flux_mode_for_units(unit) == "conserve"


@pytest.mark.parametrize("unit", ["Jy/beam", "JY/BEAM", "MJy/sr", "erg/s/cm2/Angstrom/arcsec2"])
def test_surface_brightness_keeps_means(unit):
    assert flux_mode_for_units(unit) == "mean"


@pytest.mark.parametrize("unit", [None, "", "mag", "mag/arcsec2"])
def test_missing_or_log_units_warn_and_keep_means(unit):
    with pytest.warns(UserWarning, match="BUNIT"):
        assert flux_mode_for_units(unit) == "mean"


@pytest.mark.parametrize("scale", [(2, 2), (2, 3), (4, 1)])
def test_projection_makes_block_sums_and_means_exact(scale):
    rng = np.random.default_rng(0)
    lr = rng.gamma(2.0, 50.0, (9, 7))
    sr = rng.random((9 * scale[0], 7 * scale[1])).astype(np.float32)
    blocks = lambda a: a.reshape(9, scale[0], 7, scale[1])  # noqa: E731
    summed = enforce_flux(sr, lr, scale, "conserve")
    assert np.abs(blocks(summed).sum(axis=(1, 3)) - lr).max() <= 1e-6 * np.abs(lr).max()
    meaned = enforce_flux(sr, lr, scale, "mean")
    assert np.abs(blocks(meaned).mean(axis=(1, 3)) - lr).max() <= 1e-6 * np.abs(lr).max()


def test_masked_blocks_are_left_alone():
    lr = np.ones((4, 4))
    mask = np.zeros((4, 4), bool)
    mask[1, 2] = True
    sr = np.zeros((8, 8), np.float32)
    out = enforce_flux(sr, lr, (2, 2), "conserve", mask)
    assert np.all(out[2:4, 4:6] == 0)
    assert out[:2, :2].sum() == pytest.approx(1.0)


def test_per_pixel_levels_shrink_only_when_sums_are_conserved():
    from astropy.io import fits

    from sciSR.flux import rescale_flux_keywords

    header = fits.Header({"SATURATE": 60000.0, "OBJECT": "M13"})
    assert rescale_flux_keywords(header.copy(), "mean", (2, 2)) == []
    assert rescale_flux_keywords(header, "conserve", (2, 3)) == ["SATURATE"]
    assert header["SATURATE"] == pytest.approx(10000.0) and header["OBJECT"] == "M13"
