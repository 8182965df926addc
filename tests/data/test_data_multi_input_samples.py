"""Fusion and reference samples: shapes, stacks placed on the HR grid, references that are not copies."""

import numpy as np
import pytest
import torch

from sciSR.data.dataset import find_items, fixed_dataset, train_dataset
from sciSR.data.multi_input_samples import (
    ReferenceSpec,
    SimulateReferenced,
    SimulateStacksd,
    StackSpec,
    simulate_stacks,
)
from sciSR.data.phantoms import knee_phantom
from sciSR.errors import SciSRError
from sciSR.metrics import psnr
from sciSR.resample import resample_to_grid

KNEE = {"generate": "knee_phantom", "count": 2, "options": {"shape": [32, 32, 32]}}
ORTHO = [[4, 1, 1], [1, 4, 1], [1, 1, 4]]


def test_stack_samples_shapes_and_channel_groups():
    spec = StackSpec(stacks=ORTHO, patch_size=(4, 16, 16), margin=1)
    assert spec.model_scale == (4, 1, 1) and spec.hr_patch_size() == (24, 24, 24)
    sample = train_dataset(find_items(**KNEE), spec, samples_per_epoch=3, cache="none")[1]
    assert set(sample) == {"lr", "hr"}
    assert sample["lr"].shape == (3, 16, 16, 16) and sample["hr"].shape == (1, 16, 16, 16)
    assert sample["lr"].dtype == torch.float32
    # Every stack is a blurred view of the same patch: close to HR, and not identical to each other.
    hr = sample["hr"][0].numpy()
    for n in range(3):
        assert psnr(sample["lr"][n].numpy(), hr, 1.0) > 15.0
    assert not torch.allclose(sample["lr"][0], sample["lr"][1])


def test_simulated_stacks_land_on_the_hr_grid_with_offsets():
    """Stack voxels are where their affines say: resampled back they match the HR volume better
    than with the offset forgotten."""
    img = knee_phantom((32, 32, 32), seed=1)
    stacks = simulate_stacks(img, ORTHO, offsets=[[2, 0, 0], [0, 1, 0], [0, 0, 3]])
    assert [s.array.shape for s in stacks] == [(8, 32, 32), (32, 8, 32), (32, 32, 8)]
    hr_affine = np.diag([*img.spacing, 1.0])
    for stack, scale in zip(stacks, ORTHO, strict=True):
        on_hr, inside = resample_to_grid(stack, hr_affine, img.spatial_shape)
        forgot = stack.replace(affine=stack.affine.copy())
        axis = int(np.argmax(scale))
        forgot.affine[:3, 3] -= stack.affine[:3, axis] * ([2, 1, 3][axis] / 4)  # offset dropped
        wrong, _ = resample_to_grid(forgot, hr_affine, img.spatial_shape)
        core = (slice(4, -4),) * 3
        assert inside[core].all() and not inside.all()  # an offset stack's FOV is shifted by the offset
        assert psnr(on_hr[core], img.array[core]) > psnr(wrong[core], img.array[core]) + 0.3


def test_seeded_draws_repeat_and_offsets_vary():
    hr = knee_phantom((16, 16, 16), seed=2).array[None]
    t = SimulateStacksd([[1, 1, 4]], options={"noise_std": [0.0, 20.0]}).set_random_state(5)
    a = t({"hr": hr})["lr"]
    b = SimulateStacksd([[1, 1, 4]], options={"noise_std": [0.0, 20.0]}).set_random_state(5)({"hr": hr})["lr"]
    np.testing.assert_array_equal(a, b)
    draws = [t({"hr": hr})["lr"] for _ in range(4)]
    assert any(not np.array_equal(draws[0], d) for d in draws[1:])


def test_reference_samples():
    spec = ReferenceSpec(scale=(2, 2, 2), patch_size=(8, 8, 8), degradation="bin", margin=1, ref_deform=1.5)
    samples = fixed_dataset(find_items(**KNEE), spec, per_item=2)
    sample = samples[0]
    assert set(sample) == {"lr", "ref", "hr"}
    assert sample["lr"].shape == (1, 8, 8, 8)
    assert sample["ref"].shape == sample["hr"].shape == (1, 16, 16, 16)
    ref, hr = sample["ref"][0].numpy(), sample["hr"][0].numpy()
    # Another contrast of the same anatomy: strongly related, but not a copy of the target.
    assert np.corrcoef(ref.ravel(), hr.ravel())[0, 1] > 0.7
    assert np.abs(ref - hr).mean() > 0.01
    # Validation draws are fixed.
    again = fixed_dataset(find_items(**KNEE), spec, per_item=2)[0]
    assert torch.equal(again["ref"], sample["ref"])


def test_reference_remap_is_monotone_and_deformation_is_bounded():
    ramp = np.linspace(0, 1, 32, dtype=np.float32)[None, :, None].repeat(32, axis=2)
    t = SimulateReferenced(contrast=True, deform=0.0, noise=0.0).set_random_state(0)
    remapped = t({"hr": ramp})["ref"][0, :, 0]
    assert np.all(np.diff(remapped) > 0) and not np.allclose(remapped, ramp[0, :, 0], atol=0.02)
    t = SimulateReferenced(contrast=False, deform=1.0, noise=0.0).set_random_state(0)
    moved = t({"hr": ramp})["ref"][0]
    # On a unit-per-31-voxel ramp the value change is the displacement: at most 1 voxel.
    assert 0 < np.abs(moved - ramp[0])[2:-2, 2:-2].max() * 31 <= 1.05


def test_spec_errors():
    with pytest.raises(SciSRError, match="multiple of every stack"):
        StackSpec(stacks=ORTHO, patch_size=(4, 6, 16))
    with pytest.raises(SciSRError, match="at least one stack"):
        StackSpec(stacks=[], patch_size=(4, 16, 16))
    with pytest.raises(SciSRError, match="order"):
        StackSpec(stacks=ORTHO, patch_size=(4, 16, 16), order=0)
    with pytest.raises(SciSRError, match="must be ≥ 0"):
        SimulateReferenced(noise=-1.0)
