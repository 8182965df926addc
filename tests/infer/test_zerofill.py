"""The "zerofill" interpolator: k-space zero padding with the phase convention of kspace_downsample."""

import numpy as np
import pytest

import sciSR
from sciSR.degrade.mri import kspace_downsample
from sciSR.errors import SciSRError
from sciSR.infer.interpolate import INTERPOLATORS, interpolate, zerofill

SHAPES = [((12, 12), (2, 2)), ((11, 9), (3, 2)), ((10, 7), (1, 2)), ((5, 6, 4), (1, 1, 4)), ((6, 5, 4, 2), (2, 3, 1))]


@pytest.mark.parametrize("shape,scale", SHAPES)
def test_kspace_downsample_undoes_zerofill(shape, scale):
    y = np.random.default_rng(0).random(shape) + 0.5
    up = zerofill(y, scale)
    assert up.dtype == np.float32
    assert up.shape == tuple(n * s for n, s in zip(shape, scale, strict=False)) + shape[len(scale):]
    np.testing.assert_allclose(kspace_downsample(up, scale), y, atol=1e-5)


@pytest.mark.parametrize("n,s", [(36, 2), (45, 3), (48, 4)])
def test_band_limited_signal_is_recovered_exactly(n, s):
    # Only frequencies strictly inside the kept band (no Nyquist line): zero padding loses nothing, and a
    # wrong half-voxel phase ramp would shift the result.
    rng = np.random.default_rng(1)
    j = np.arange(n)
    bands = range(1, (n // s - 1) // 2)
    truth = 3.0 + sum(rng.random() * np.cos(2 * np.pi * f * j / n + rng.random() * 6) for f in bands)
    truth = truth[:, None] * np.ones((1, 4))
    np.testing.assert_allclose(zerofill(kspace_downsample(truth, (s, 1)), (s, 1)), truth, atol=1e-4)


def test_samples_the_band_limited_interpolant_on_the_fov_grid():
    np.testing.assert_allclose(zerofill(np.full((6, 8), 7.0), (2, 2)), 7.0, atol=1e-5)

    def image(i, j):
        return 2 + np.cos(2 * np.pi * 3 * i / 16 + 0.4) * np.sin(2 * np.pi * 2 * j / 12)

    lr = image(*np.meshgrid(np.arange(16.0), np.arange(12.0), indexing="ij"))
    # New voxel i' sits at LR coordinate (i' + 0.5)/s − 0.5 (docs/architecture.md §3).
    i, j = np.meshgrid((np.arange(32) + 0.5) / 2 - 0.5, (np.arange(36) + 0.5) / 3 - 0.5, indexing="ij")
    np.testing.assert_allclose(zerofill(lr, (2, 3)), image(i, j), atol=1e-5)


def test_interpolate_and_upscale_accept_zerofill():
    assert "zerofill" in INTERPOLATORS and "zerofill" in sciSR.list_models()
    x = np.random.default_rng(2).random((8, 10)).astype(np.float32)
    seen: list[float] = []
    out = np.empty((16, 30), dtype=np.float32)
    assert interpolate(x, (2, 3), "zerofill", progress=seen.append, out=out) is out
    np.testing.assert_array_equal(out, zerofill(x, (2, 3)))
    assert seen == [1.0]
    np.testing.assert_array_equal(sciSR.upscale(x, "zerofill", (2, 3)), out)

    def stop() -> None:
        raise sciSR.Cancelled("stop")

    with pytest.raises(sciSR.Cancelled):
        interpolate(x, (2, 2), "zerofill", cancel_check=stop)


def test_non_finite_input_is_refused():
    x = np.ones((8, 8))
    x[2, 3] = np.nan
    with pytest.raises(SciSRError, match="finite"):
        zerofill(x, (2, 2))
