"""Normalisation is reversible and never clips (docs/architecture.md §4)."""

import numpy as np
import pytest

from sciSR.errors import SciSRError
from sciSR.intensity import denormalize, fit_normalization, normalize


@pytest.mark.parametrize("method", ["none", "ct_window", "percentile", "asinh"])
def test_round_trip_is_exact_and_unclipped(method):
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(-1000, 5, 500), rng.normal(40, 20, 500), [4000.0, -3000.0]]).astype(np.float32)
    params = fit_normalization(x, method)
    y = normalize(x, params)
    back = denormalize(y, params)
    np.testing.assert_allclose(back, x, rtol=1e-5, atol=1e-3)
    assert back.max() == pytest.approx(4000.0, rel=1e-5)


def test_percentile_maps_robust_range_to_unit():
    x = np.linspace(0, 100, 10001)
    params = fit_normalization(x, "percentile", low_q=1, high_q=99)
    y = normalize(x, params)
    assert np.percentile(y, 1) == pytest.approx(0, abs=1e-6) and np.percentile(y, 99) == pytest.approx(1, abs=1e-6)


def test_asinh_is_linear_near_background_and_compresses_stars():
    rng = np.random.default_rng(1)
    sky = rng.normal(100.0, 2.0, 10000)
    params = fit_normalization(sky, "asinh")
    assert params["background"] == pytest.approx(100.0, abs=0.2)
    assert params["scale"] == pytest.approx(6.0, rel=0.05)
    assert normalize(np.array([1e6]), params)[0] < 15


def test_unknown_method_and_empty_image():
    with pytest.raises(SciSRError, match="normalisation"):
        fit_normalization(np.zeros(3), "zscore")
    with pytest.raises(SciSRError, match="finite"):
        fit_normalization(np.full(3, np.nan), "percentile")
