"""sciSR.upscale with a list of stacks or a reference: grids, baselines, tiling, errors."""

import numpy as np
import pytest
import torch

import sciSR
from sciSR import geometry
from sciSR.data.multi_input_samples import simulate_stacks
from sciSR.data.phantoms import knee_phantom
from sciSR.errors import SciSRError
from sciSR.metrics import psnr
from sciSR.models import create_model

ORTHO = [(4, 1, 1), (1, 4, 1), (1, 1, 4)]


@pytest.fixture(scope="module")
def truth():
    img = knee_phantom((24, 24, 24), seed=4, spacing=(0.6, 0.6, 0.6))
    affine = np.diag([0.6, 0.6, 0.6, 1.0])
    affine[:3, 3] = (-7.0, 3.0, 12.0)
    return img.replace(affine=affine)


@pytest.fixture(scope="module")
def stacks(truth):
    return simulate_stacks(truth, ORTHO)


@pytest.fixture(scope="module")
def multi():
    torch.manual_seed(0)
    return create_model("oktay-multi", scale=(4, 1, 1), spatial_dims=3, features=8, stream_layers=1,
                        refine_layers=2).eval()


def test_average_baseline_adds_what_the_other_stacks_saw(truth, stacks):
    average = sciSR.upscale(stacks, "cubic", scale=(4, 1, 1))
    assert average.array.shape == truth.array.shape
    np.testing.assert_allclose(average.affine, truth.affine, atol=1e-12)  # first stack's grid ×4 = HR grid
    assert average.meta["provenance"][-1]["stacks"] == [s.meta["source"] for s in stacks]
    singles = [psnr(sciSR.upscale(s, "cubic", scale=f).array, truth.array) for s, f in zip(stacks, ORTHO, strict=True)]
    # The phantom is smooth along k, so the k-stack alone is best; the average still clearly beats the
    # first stack's own cubic upscale (what a single-image method gets).
    assert psnr(average.array, truth.array) > singles[0] + 2.0


def test_output_grid_is_the_first_stacks_grid_upscaled(truth, stacks):
    out = sciSR.upscale([stacks[2], stacks[0]], "linear", scale=(1, 1, 4))
    np.testing.assert_allclose(out.affine, geometry.upscale_affine(stacks[2].affine, (1, 1, 4)))
    np.testing.assert_allclose(out.spacing, (0.6, 0.6, 0.6))
    # The order of the stacks does not move anatomy: same grid, nearly the same values as the other order.
    other = sciSR.upscale([stacks[0], stacks[2]], "linear", scale=(4, 1, 1))
    np.testing.assert_allclose(out.array, other.array, atol=1e-3 * np.abs(truth.array).max())


def test_multistack_model_tiled_equals_whole_and_n_is_free(stacks, multi):
    whole = sciSR.upscale(stacks, multi, device="cpu")
    tiled = sciSR.upscale(stacks, multi, device="cpu", tile=8)
    assert whole.array.shape == (24, 24, 24) and whole.array.dtype == np.float32
    np.testing.assert_allclose(tiled.array, whole.array, atol=1e-4 * np.abs(whole.array).max())
    two = sciSR.upscale(stacks[:2], multi, scale=(4, 1, 1), device="cpu")
    assert two.array.shape == (24, 24, 24) and not np.allclose(two.array, whole.array)


def test_reference_guided_runs_tiled_with_its_reference_window():
    torch.manual_seed(0)
    net = create_model("ttsr", scale=2, spatial_dims=2, features=8, n_blocks=1, tail_blocks=1,
                       texture_features=8, search_radius=1).eval()
    plane = knee_phantom((64, 64, 3), seed=5).array[..., 1]
    hr_affine = np.diag([0.5, 0.5, 1.0, 1.0])
    truth = sciSR.SciImage.from_array(plane, affine=hr_affine, domain="mri")
    lr = simulate_stacks(truth, [(2, 2)], degradation="bin")[0]
    # The reference lives on its own grid: finer along y and shifted by a fraction of a voxel.
    ref_affine = hr_affine @ np.diag([1.0, 0.5, 1.0, 1.0])
    ref_affine[:2, 3] += 0.1
    from sciSR.resample import resample_array

    ref_values, _ = resample_array(plane, hr_affine, ref_affine, (64, 128), order=3)
    ref = sciSR.SciImage.from_array(ref_values, affine=ref_affine, domain="mri")
    whole = sciSR.upscale(lr, net, reference=ref, device="cpu")
    tiled = sciSR.upscale(lr, net, reference=ref, device="cpu", tile=18)
    assert whole.array.shape == (64, 64)
    np.testing.assert_allclose(whole.affine, hr_affine, atol=1e-12)
    np.testing.assert_allclose(tiled.array, whole.array, atol=1e-4 * np.abs(whole.array).max())
    # The reference matters: a different reference gives a different result.
    flat = ref.replace(array=np.full_like(ref.array, float(ref.array.mean())))
    assert not np.allclose(sciSR.upscale(lr, net, reference=flat, device="cpu").array, whole.array)


def test_errors(truth, stacks, multi):
    with pytest.raises(SciSRError, match="neither an affine"):
        sciSR.upscale([stacks[0], stacks[1].replace(affine=None)], "cubic", scale=(4, 1, 1))
    with pytest.raises(SciSRError, match="SciImages with affines"):
        sciSR.upscale([stacks[0], stacks[1].array], "cubic", scale=(4, 1, 1))
    far = stacks[1].replace(affine=stacks[1].affine.copy())
    far.affine[:3, 3] += 500.0
    with pytest.raises(SciSRError, match="does not overlap"):
        sciSR.upscale([stacks[0], far], "cubic", scale=(4, 1, 1))
    single = create_model("edsr-baseline", scale=(4, 1, 1), spatial_dims=3, n_blocks=1, features=4)
    with pytest.raises(SciSRError, match="takes one image"):
        sciSR.upscale(stacks, single)
    with pytest.raises(SciSRError, match="takes no reference"):
        sciSR.upscale(stacks[0], single, reference=truth)
    with pytest.raises(SciSRError, match="takes no reference"):
        sciSR.upscale(stacks[0], "cubic", scale=(4, 1, 1), reference=truth)
    two = [s.replace(array=np.stack([s.array] * 2, axis=-1), meta={"channel_axis": 3}) for s in stacks]
    with pytest.raises(SciSRError, match="channel"):
        sciSR.upscale(two, multi)
    with pytest.raises(SciSRError, match="channel"):
        sciSR.upscale([stacks[0], two[1]], "cubic", scale=(4, 1, 1))
    with pytest.raises(SciSRError, match="empty"):
        sciSR.upscale([], "cubic", scale=2)
