"""Interpolation baselines sit on the FOV-preserving grid of sciSR.geometry."""

import numpy as np
import pytest
from scipy import ndimage

from sciSR.geometry import source_coordinates
from sciSR.infer.interpolate import interpolate


@pytest.mark.parametrize("method,order", [("nearest", 0), ("linear", 1), ("cubic", 3)])
def test_samples_at_geometry_source_coordinates(method, order):
    rng = np.random.default_rng(0)
    x = rng.random((7, 5, 4))
    scale = (2, 3, 1)
    out = interpolate(x, scale, method)
    coords = np.meshgrid(*[source_coordinates(n * s, s) for n, s in zip(x.shape, scale, strict=True)], indexing="ij")
    expected = ndimage.map_coordinates(x, coords, order=order, mode="reflect" if order else "nearest")
    assert out.shape == (14, 15, 4)
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_cubic_passes_through_samples_at_odd_scale():
    x = np.random.default_rng(1).random((9, 8))
    out = interpolate(x, (3, 3), "cubic")
    # For odd s, new voxel s·n + (s-1)/2 is centred on old voxel n.
    np.testing.assert_allclose(out[1::3, 1::3], x, atol=1e-5)


def test_channels_are_not_scaled():
    x = np.random.default_rng(2).random((6, 6, 3)).astype(np.float32)
    out = interpolate(x, (2, 2), "linear")
    assert out.shape == (12, 12, 3)
    np.testing.assert_allclose(out[..., 1], interpolate(x[..., 1], (2, 2), "linear"), atol=1e-6)


def test_separable_chunked_passes_equal_one_joint_resample_and_report_progress():
    x = np.random.default_rng(3).random((40, 23, 9))
    seen = []
    out = interpolate(x, (2, 1, 3), "cubic", progress=seen.append)
    joint = ndimage.zoom(x, (2, 1, 3), order=3, mode="reflect", grid_mode=True)
    np.testing.assert_allclose(out, joint, atol=1e-5)
    assert len(seen) == 6 + 16 and seen == sorted(seen) and seen[-1] == pytest.approx(1.0)


@pytest.mark.parametrize("scale", [(2, 3), (1, 2), (3, 1)])
def test_out_receives_the_result_in_place(tmp_path, scale):
    x = np.random.default_rng(4).random((37, 41)).astype(np.float32)
    expected = interpolate(x, scale, "cubic")
    out = np.memmap(tmp_path / "out.f32", dtype=np.float32, mode="w+", shape=expected.shape)
    assert interpolate(x, scale, "cubic", out=out) is out
    np.testing.assert_array_equal(np.asarray(out), expected)


def test_cancel_stops_between_chunks():
    calls = []

    def check():
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("stop")

    with pytest.raises(RuntimeError, match="stop"):
        interpolate(np.zeros((64, 64)), (2, 2), "cubic", cancel_check=check)
    assert len(calls) == 3


def test_nearest_is_block_replication():
    x = np.arange(12.0).reshape(3, 4)
    np.testing.assert_array_equal(interpolate(x, (2, 3), "nearest"), np.repeat(np.repeat(x, 2, 0), 3, 1))


@pytest.mark.parametrize(("method", "scale"), [("cubic", (2, 3)), ("linear", (3, 2)), ("cubic", (1, 2))])
def test_memory_mapped_out_is_filled_in_bands_that_match_the_whole_image(tmp_path, monkeypatch, method, scale):
    from sciSR.infer import interpolate as module
    from sciSR.paging import disk_array

    x = np.random.default_rng(5).random((400, 37)).astype(np.float32)
    whole = interpolate(x, scale, method)
    # Bands of 128 input rows (4 × the margin): four bands, three interior seams.
    monkeypatch.setattr(module, "RELEASE_EVERY_BYTES", 1)
    seen = []
    with disk_array(whole.shape, folder=tmp_path) as out:
        interpolate(x, scale, method, out=out, progress=seen.append)
        np.testing.assert_allclose(np.asarray(out), whole, rtol=0, atol=1e-6)
    assert len(seen) == 4 and seen[-1] == pytest.approx(1.0)
