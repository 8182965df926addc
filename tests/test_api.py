"""Public API contract (docs/architecture.md §2) on generated images."""

import threading

import numpy as np
import pytest

import sciSR
from sciSR.geometry import upscale_affine


def test_upscale_numpy_returns_numpy():
    out = sciSR.upscale(np.random.rand(5, 7).astype(np.float32), "cubic", 2)
    assert isinstance(out, np.ndarray) and out.shape == (10, 14)


def test_upscale_volume_through_plane_updates_affine_and_spacing():
    affine = np.array([[-0.4, 0, 0, 90], [0, 0.4, 0, -120], [0, 0, 3.0, 10], [0, 0, 0, 1]])
    img = sciSR.SciImage.from_array(np.random.rand(6, 5, 4), affine=affine, domain="mri")
    out = sciSR.upscale(img, "linear", (1, 1, 4))
    assert out.array.shape == (6, 5, 16)
    np.testing.assert_allclose(out.affine, upscale_affine(affine, (1, 1, 4)))
    assert out.spacing == pytest.approx((0.4, 0.4, 0.75))
    # The outer edge of the first slice (index -0.5) stays in place.
    edge_old = affine @ [0, 0, -0.5, 1]
    edge_new = out.affine @ [0, 0, -0.5, 1]
    np.testing.assert_allclose(edge_old, edge_new, atol=1e-9)
    assert out.meta["provenance"][-1] == {"step": "upscale", "model": "linear", "scale": [1, 1, 4]}


def test_channel_axis_is_never_scaled():
    img = sciSR.SciImage.from_array(np.random.rand(4, 4, 3), meta={"channel_axis": 2, "channel_name": "rgb"})
    assert sciSR.upscale(img, "nearest", 2).array.shape == (8, 8, 3)
    with pytest.raises(sciSR.SciSRError, match="channel axis"):
        sciSR.upscale(img, "nearest", (2, 2, 2))


@pytest.mark.parametrize("scale", [0, (2,), (2, -1), 1.5, None])
def test_bad_scales_are_clear_errors(scale):
    img = sciSR.SciImage.from_array(np.zeros((4, 4)))
    with pytest.raises(sciSR.SciSRError) as err:
        sciSR.upscale(img, "cubic", scale)
    assert "\n" not in str(err.value) and "scale" in str(err.value)


def test_unknown_model_is_a_clear_error():
    with pytest.raises(sciSR.SciSRError, match="unknown model"):
        sciSR.upscale(np.zeros((4, 4)), "bogus", 2)


def test_progress_callable_and_cancel():
    seen = []
    sciSR.upscale(np.zeros((4, 4)), "cubic", 2, progress=seen.append)
    assert seen and seen[-1] == 1.0
    event = threading.Event()
    event.set()
    with pytest.raises(sciSR.Cancelled):
        sciSR.upscale(np.zeros((4, 4)), "cubic", 2, cancel=event)


def test_sky_nan_pixels_stay_masked_and_do_not_leak():
    frame = np.full((8, 8), 10.0, np.float32)
    frame[3, 4] = np.nan
    img = sciSR.SciImage.from_array(frame, domain="sky", meta={"units": "counts"})
    out = sciSR.upscale(img, "cubic", 2)
    assert np.isnan(out.array[6:8, 8:10]).all()
    assert np.isfinite(out.array).sum() == 64 * 4 - 4
    # Count-like units: each 2×2 block sums to its input pixel, neighbours of the hole included.
    blocks = np.nan_to_num(out.array).reshape(8, 2, 8, 2).sum(axis=(1, 3))
    np.testing.assert_allclose(blocks[np.isfinite(frame)], 10.0, rtol=1e-6)
    assert out.meta["provenance"][-1]["flux"] == "conserve"
    assert out.meta["mask"].shape == (16, 16)


def test_an_all_valid_mask_is_not_carried_onto_the_new_grid():
    frame = np.ones((6, 6), np.float32)
    img = sciSR.SciImage.from_array(frame, domain="sky", meta={"units": "Jy/beam", "mask": np.zeros((6, 6), bool)})
    out = sciSR.upscale(img, "linear", 2)
    assert "mask" not in out.meta and np.isfinite(out.array).all()
