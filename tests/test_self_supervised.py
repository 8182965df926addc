"""Self-supervised SR (sciSR.self_supervised): SMORE-style volumes, ZSSR frames, budgets, errors."""

import itertools
import threading

import numpy as np
import pytest

import sciSR
from sciSR.consistency import ForwardModel, degrade, project
from sciSR.data.phantoms import generic_scene, knee_phantom, star_field
from sciSR.degrade import bin_array
from sciSR.degrade.generic import bicubic_downsample
from sciSR.degrade.mri import thick_slice
from sciSR.infer.orientations import FUSION_EXPONENT
from sciSR.metrics import data_range, psnr

# Small networks keep every test within a few seconds on 2 shared CPU cores.
TINY = {"n_blocks": 2, "features": 8}
SMALL = {"n_blocks": 4, "features": 24}


@pytest.fixture(autouse=True)
def one_torch_thread():
    """One thread: on a shared, oversubscribed CPU two OpenMP threads mostly wait for each other."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def knee():
    """48³ isotropic knee phantom (truth) and its ×4 thick-slice version across the leg (axis 0)."""
    truth = knee_phantom((48, 48, 48), seed=1).array
    thick = thick_slice(truth, (4, 1, 1))
    affine = np.diag([2.0, 0.5, 0.5, 1.0])
    affine[:3, 3] = (-12.0, 10.0, 3.0)
    return truth, sciSR.SciImage(array=thick, affine=affine, spacing=(2.0, 0.5, 0.5), domain="mri")


def test_volume_beats_cubic_through_plane(knee):
    truth, lr = knee
    sr = sciSR.self_supervised(lr, max_steps=60, time_budget_s=600, device="cpu", options=SMALL)
    cubic = sciSR.upscale(lr, "cubic", (4, 1, 1))
    value_range = data_range(truth)
    gain = psnr(sr.array, truth, value_range) - psnr(cubic.array, truth, value_range)
    assert gain > 0.3, gain
    # Axis, factor and profile all came from the header: spacing 2 mm over 0.5 mm in-plane.
    step = sr.meta["provenance"][-1]
    assert step["model"] == "self-supervised" and step["axis"] == 0 and step["scale"] == [4, 1, 1]
    # No thickness in the header: estimated from the image's spectra (truth: Gaussian FWHM 2 mm = 4 HR voxels).
    assert step["profile"]["kind"] == "gaussian" and step["profile"]["source"].startswith("estimated")
    assert step["profile"]["width"] == pytest.approx(4.0, rel=0.15)
    assert step["steps"] == 60 and step["loss"] > 0
    # Same FOV-preserving grid as sciSR.upscale.
    np.testing.assert_allclose(sr.affine, cubic.affine)
    assert sr.spacing == pytest.approx((0.5, 0.5, 0.5))
    assert sr.array.shape == truth.shape and sr.array.dtype == np.float32
    # Data consistency with the slice profile it trained on: thick-sliced again, the result is the input.
    op = step["consistency"]
    assert op["kind"] == "slice_profile" and op["fwhm"][0] == step["profile"]["width"]
    again = degrade(sr.array, ForwardModel("slice_profile", (4, 1, 1), profile="gaussian", fwhm=tuple(op["fwhm"])))
    np.testing.assert_allclose(again, lr.array, atol=1e-5 * float(np.abs(lr.array).max()))
    # The two through-plane orientations (planes (0, 1) and (0, 2)) were fused along the thick axis.
    fusion = step["fusion"]
    assert fusion["planes"] == [[0, 1], [0, 2]] and fusion["exponent"] == FUSION_EXPONENT
    assert sum(fusion["weights_above_nyquist"]) == pytest.approx(1.0, abs=1e-3)


def test_same_seed_same_result_on_cpu(knee):
    _, lr = knee
    small = lr.replace(array=lr.array[:, :24, :20])

    def run(seed):
        return sciSR.self_supervised(small, max_steps=3, device="cpu", seed=seed, options=TINY).array

    first, again, other = run(7), run(7), run(8)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_numpy_in_numpy_out_with_explicit_axis_and_scale():
    rng = np.random.default_rng(0)
    volume = rng.random((12, 5, 16), dtype=np.float32)
    out = sciSR.self_supervised(volume, 3, axis=1, max_steps=2, device="cpu", options=TINY)
    assert isinstance(out, np.ndarray) and out.shape == (12, 15, 16)
    out = sciSR.self_supervised(volume, (1, 2, 1), max_steps=2, device="cpu", options=TINY)
    assert out.shape == (12, 10, 16)


def test_volumes_train_at_their_own_learning_rate_and_frames_at_the_recipes(monkeypatch):
    import sciSR.self_supervision as module

    rates = []
    train = module.train_on_pairs

    def spy(*args, recipe, **kwargs):
        rates.append(recipe["lr"])
        return train(*args, recipe=recipe, **kwargs)

    monkeypatch.setattr(module, "train_on_pairs", spy)
    rng = np.random.default_rng(0)
    sciSR.self_supervised(rng.random((12, 5, 16), dtype=np.float32), 3, axis=1, max_steps=1, device="cpu", options=TINY)
    sciSR.self_supervised(rng.random((32, 32), dtype=np.float32), 2, max_steps=1, device="cpu", options=TINY)
    assert rates == [module.TRAINING["volume_lr"], module.TRAINING["lr"]]
    assert module.TRAINING["volume_lr"] != module.TRAINING["lr"]


def test_precision_is_used_for_training_and_recorded():
    volume = np.random.default_rng(1).random((12, 10, 6)).astype(np.float32)
    img = sciSR.SciImage.from_array(volume, spacing=(1.0, 1.0, 2.0), domain="mri")
    sr = sciSR.self_supervised(img, max_steps=2, device="cpu", options=TINY, precision="bf16")
    assert sr.meta["provenance"][-1]["precision"] == "bf16" and np.isfinite(sr.array).all()
    with pytest.raises(sciSR.SciSRError, match="fp16"):
        sciSR.self_supervised(img, max_steps=1, device="cpu", options=TINY, precision="fp16")


def test_slice_thickness_from_dicom_header(knee):
    _, lr = knee
    # What the DICOM reader records for SliceThickness 3 mm: thicker than the 2 mm spacing (overlap).
    img = lr.replace(array=lr.array[:, :16, :16].transpose(1, 2, 0), spacing=(0.5, 0.5, 2.0),
                     meta={"slice_thickness": 3.0, "slice_thickness_source": "dicom", "slice_axis": 2})
    sr = sciSR.self_supervised(img, max_steps=1, device="cpu", options=TINY)
    # FWHM in HR voxels = 3 mm / (2 mm / 4).
    assert sr.meta["provenance"][-1]["profile"] == {"kind": "gaussian", "width": 6.0,
                                                    "source": "DICOM SliceThickness 3 mm"}
    sr = sciSR.self_supervised(img, slice_profile=("boxcar", 3.5), max_steps=1, device="cpu", options=TINY)
    assert sr.meta["provenance"][-1]["profile"] == {"kind": "boxcar", "width": 3.5, "source": "given"}


def test_channels_share_one_network():
    rng = np.random.default_rng(1)
    img = sciSR.SciImage.from_array(rng.random((10, 12, 4, 2), dtype=np.float32), spacing=(1.0, 1.0, 3.0),
                                    domain="mri", meta={"channel_axis": 3})
    sr = sciSR.self_supervised(img, max_steps=2, device="cpu", options=TINY)
    assert sr.array.shape == (10, 12, 12, 2) and sr.meta["channel_axis"] == 3


def test_frame_zssr_beats_cubic():
    truth = generic_scene((96, 96), seed=2).array
    lr = sciSR.SciImage.from_array(bicubic_downsample(truth, (2, 2)), domain="generic")
    sr = sciSR.self_supervised(lr, 2, max_steps=80, device="cpu", options=SMALL)
    cubic = sciSR.upscale(lr, "cubic", 2)
    value_range = data_range(truth)
    assert psnr(sr.array, truth, value_range) >= psnr(cubic.array, truth, value_range) - 0.05
    assert sr.meta["provenance"][-1]["degradation"] == "antialiased bicubic"
    # It also trained on a 0.9× copy of the 48² frame; smaller ones cannot hold a 32² patch of training rows.
    assert sr.meta["provenance"][-1]["fathers"] == [[44, 44]]
    # A bicubic-reduced frame keeps all the network adds (only extrapolated MRI k-space is shrunk).
    assert "fallback" not in sr.meta["provenance"][-1] and "detail_share" not in sr.meta["provenance"][-1]


def test_a_reformatted_mri_slice_learns_across_its_thick_axis():
    """A 2D slice reformatted across 4 mm slices degrades its copy with a slice profile, not in k-space
    (s1045.ima.gz, Gaussian FWHM 4, 30 s: +0.33 dB over cubic with k-space, +0.86 with the profile)."""
    truth = knee_phantom((64, 64, 16), seed=1).array[:, :, 8]
    lr = sciSR.SciImage.from_array(thick_slice(truth, (1, 4)).astype(np.float32), spacing=(1.0, 4.0),
                                   domain="mri")
    sr = sciSR.self_supervised(lr, (1, 4), max_steps=2, device="cpu", options=TINY)
    step = sr.meta["provenance"][-1]
    assert step["degradation"]["kind"] == "slice_profile" and step["consistency"]["kind"] == "slice_profile"
    assert sr.array.shape == (64, 64) and sr.spacing == pytest.approx((1.0, 1.0))


@pytest.mark.parametrize("steps", [1, 400])
def test_mri_frame_is_never_below_cubic_and_learns_its_own_acquisition(steps):
    # A sharp k-space ×2 copy of a real MR slice. One step cannot beat cubic: the held-out rows say so and
    # cubic is returned; a long run keeps the best validated weights, so it cannot diverge below cubic.
    from pydicom.data import get_testdata_file

    from sciSR.degrade.mri import kspace_downsample

    truth = sciSR.read(get_testdata_file("MR_small.dcm")).array.astype(np.float32)
    lr = sciSR.SciImage.from_array(kspace_downsample(truth, (2, 2)), spacing=(1.0, 1.0), domain="mri")
    sr = sciSR.self_supervised(lr, 2, max_steps=steps, device="cpu", options=SMALL)
    cubic = sciSR.upscale(lr, "cubic", 2)
    value_range = data_range(truth)
    assert psnr(sr.array, truth, value_range) >= psnr(cubic.array, truth, value_range) - 0.05
    step = sr.meta["provenance"][-1]
    assert step["degradation"]["kind"] == "kspace" and step["degradation"]["window"] is None
    assert step["held_out_rows"] == 4 and step["best_step"] <= steps
    assert step["fathers"] == []  # a 32² frame is too small for smaller copies that hold a training patch
    assert ("fallback" in step) == (step["val_l1"] >= step["cubic_val_l1"])
    # Learned or cubic fallback, the result is projected onto the input's spectrum (Wiener-weighted: the real
    # slice carries noise, estimated from the image), so k-space ×2 of it is far closer to the input than cubic's.
    assert step["consistency"]["kind"] == "kspace" and step["consistency"]["window"] is None
    residual = np.abs(kspace_downsample(sr.array, (2, 2)) - lr.array).mean()
    assert residual < 0.5 * np.abs(kspace_downsample(cubic.array, (2, 2)) - lr.array).mean()
    if steps == 1:
        assert "fallback" in step and "detail_share" not in step
        operator = ForwardModel("kspace", (2, 2), noise_sigma=None)
        projected = project(cubic.array.astype(np.float64), lr.array.astype(np.float64), operator)
        np.testing.assert_allclose(sr.array, projected, rtol=1e-5, atol=1e-3)
        off = sciSR.self_supervised(lr, 2, max_steps=steps, device="cpu", options=SMALL, consistency="off")
        assert off.meta["provenance"][-1]["consistency"] == "off"
        np.testing.assert_allclose(off.array, cubic.array, rtol=1e-5, atol=1e-3)


def test_a_learned_frame_keeps_a_share_of_its_difference_from_cubic(monkeypatch):
    from sciSR.self_supervision import TRAINING

    truth = generic_scene((96, 96), seed=2).array
    lr = sciSR.SciImage.from_array(bicubic_downsample(truth, (2, 2)), domain="generic")
    runs = {}
    for share in (0.0, 0.5, 1.0):
        monkeypatch.setitem(TRAINING, "detail_share", {"bicubic": share})
        runs[share] = sciSR.self_supervised(lr, 2, max_steps=80, device="cpu", options=SMALL)
        assert "fallback" not in runs[share].meta["provenance"][-1]
    np.testing.assert_allclose(runs[0.0].array, sciSR.upscale(lr, "cubic", 2).array, atol=1e-4)
    np.testing.assert_allclose(runs[0.5].array, (runs[0.0].array + runs[1.0].array) / 2, atol=1e-4)
    assert np.abs(runs[1.0].array - runs[0.0].array).max() > 0.05 * data_range(truth)  # the network changed it


def test_a_learned_mri_frame_keeps_half_of_its_extrapolated_detail():
    from sciSR.degrade.mri import kspace_downsample

    truth = knee_phantom((128, 128, 128), seed=3).array[64]
    lr = sciSR.SciImage.from_array(kspace_downsample(truth, (2, 2)), spacing=(1.0, 1.0), domain="mri")
    sr = sciSR.self_supervised(lr, 2, max_steps=150, device="cpu", options=SMALL)
    step = sr.meta["provenance"][-1]
    assert "fallback" not in step and step["detail_share"] == 0.5 and len(step["fathers"]) == 3
    value_range = data_range(truth)
    assert psnr(sr.array, truth, value_range) >= psnr(sciSR.upscale(lr, "cubic", 2).array, truth, value_range) - 0.05


def test_a_small_frame_stops_at_its_step_cap_whatever_the_budget():
    from sciSR.self_supervision import TRAINING, PatchPairs

    # 12×16 LR rows and 24² patches: 1 × 5 positions, 8 symmetries.
    pairs = PatchPairs([(np.zeros((12, 16, 1), np.float32), np.zeros((24, 32, 1), np.float32))], (2, 2), 32, True)
    assert pairs.patch == (24, 24) and pairs.distinct_patches() == 40
    truth = generic_scene((64, 64), seed=4).array
    lr = sciSR.SciImage.from_array(bicubic_downsample(truth, (2, 2)), domain="generic")
    # A 32² frame offers ten passes in far fewer steps than the floor: the floor ends training, not the budget.
    sr = sciSR.self_supervised(lr, 2, time_budget_s=900, device="cpu", options=TINY)
    step = sr.meta["provenance"][-1]
    assert step["step_cap"] == TRAINING["min_step_cap"] and step["steps"] == step["step_cap"]
    assert step["train_seconds"] < 900
    value_range = data_range(truth)
    assert psnr(sr.array, truth, value_range) >= psnr(sciSR.upscale(lr, "cubic", 2).array, truth, value_range) - 0.05


def test_mri_fathers_are_smaller_acquisitions_of_the_same_field_of_view():
    from sciSR.degrade.mri import kspace_resample
    from sciSR.self_supervision import frame_fathers

    frame = knee_phantom((64, 64, 64), seed=1).array[32]
    fathers = frame_fathers(frame, (2, 2), ForwardModel("kspace", (2, 2)))
    assert [f.shape for f in fathers] == [(58, 58), (52, 52), (44, 44), (38, 38)]
    np.testing.assert_array_equal(fathers[1], kspace_resample(frame, (52, 52)))
    generic = frame_fathers(frame, (2, 2), None)
    assert [f.shape for f in generic] == [f.shape for f in fathers]
    assert all(abs(float(f.mean()) - float(frame.mean())) < 1e-3 * float(frame.max()) for f in generic)


def test_sky_frame_conserves_flux_and_masks_nans():
    sky = star_field((48, 48), seed=3)
    counts = sky.array.copy()
    counts[5, 7] = np.nan
    img = sky.replace(array=counts, meta={**sky.meta, "units": "electron"})
    sr = sciSR.self_supervised(img, 2, max_steps=3, device="cpu", options=TINY)
    blocks = bin_array(np.nan_to_num(sr.array), (2, 2), "sum")
    valid = np.isfinite(counts)
    np.testing.assert_allclose(blocks[valid], counts[valid], rtol=0, atol=1e-5 * np.nanmax(np.abs(counts)))
    assert np.isnan(sr.array[10:12, 14:16]).all()
    assert sr.meta["provenance"][-1]["flux"] == "conserve"
    # The frame's own acquisition (counts in electrons: block sums), as data consistency chooses it.
    assert sr.meta["provenance"][-1]["degradation"]["kind"] == "flux"
    assert sr.meta["provenance"][-1]["degradation"]["flux"] == "conserve"


def test_progress_and_cancel(knee):
    _, lr = knee
    small = lr.replace(array=lr.array[:, :16, :16])
    seen = []
    sciSR.self_supervised(small, max_steps=4, device="cpu", options=TINY, progress=seen.append)
    assert seen[-1] == 1.0 and all(b >= a for a, b in itertools.pairwise(seen))
    cancel = threading.Event()

    def cancel_after_first(fraction):
        cancel.set()

    with pytest.raises(sciSR.Cancelled):
        sciSR.self_supervised(small, max_steps=50, device="cpu", options=TINY, progress=cancel_after_first,
                              cancel=cancel)


def test_time_budget_alone_stops_training(knee):
    _, lr = knee
    small = lr.replace(array=lr.array[:, :16, :16])
    sr = sciSR.self_supervised(small, time_budget_s=1.0, device="cpu", options=TINY)
    assert sr.meta["provenance"][-1]["steps"] >= 1


@pytest.mark.parametrize(("array", "kwargs", "message"), [
    (np.ones((8, 8, 8), np.float32), {}, "1 on every axis"),
    (np.ones((8, 8, 8), np.float32), {"scale": (1, 1, 1)}, "1 on every axis"),
    (np.ones((8, 8, 8), np.float32), {"scale": (1, 2, 2)}, "one axis"),
    (np.ones((8, 8, 8), np.float32), {"scale": 2, "axis": 3}, "axis 3 is out of range"),
    (np.ones((8, 8, 8), np.float32), {"scale": (1, 1, 2), "axis": 0}, "axis=0"),
    (np.ones((4, 8, 8, 8), np.float32), {"scale": 2}, "4 spatial axes"),
    (np.ones((8, 8, 8), np.float32), {"scale": 2, "time_budget_s": 0}, "time_budget_s must be positive"),
    (np.ones((8, 8, 8), np.float32), {"scale": 2, "time_budget_s": -5}, "time_budget_s must be positive"),
    (np.ones((8, 8, 8), np.float32), {"scale": 2, "max_steps": 0}, "max_steps"),
    (np.ones((16, 16), np.float32), {}, "needs a scale"),
    (np.ones((16, 16), np.float32), {"scale": 2, "axis": 0}, "apply to volumes"),
    (np.ones((6, 6), np.float32), {"scale": 2}, "too small"),
    (np.full((8, 8, 8), np.nan, np.float32), {"scale": 2}, "every pixel is masked"),
    (np.ones((16, 16), np.float32), {"scale": 2, "consistency": "yes"}, "consistency must be"),
    (np.ones((16, 8, 1), np.float32), {"scale": (1, 4, 1)}, "single plane across axis 2"),
])
def test_bad_input_is_a_clear_error(array, kwargs, message):
    with pytest.raises(sciSR.SciSRError, match=message) as info:
        sciSR.self_supervised(array, device="cpu", options=TINY, **kwargs)
    assert "\n" not in str(info.value)


def test_import_scisr_stays_free_of_torch():
    import subprocess
    import sys

    code = "import sys, sciSR; assert 'torch' not in sys.modules; print('self_supervised' in sciSR.__all__)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == "True", proc.stderr
    # One definition, reached as sciSR.self_supervised.
    from sciSR.self_supervision import self_supervised

    assert callable(sciSR.self_supervised) and self_supervised.__name__ == "self_supervised"
