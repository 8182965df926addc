"""The fusion recipes train a few steps, and their model files serve sciSR.upscale with stacks / a reference."""

import numpy as np
import pytest

import sciSR
from sciSR.data.multi_input_samples import simulate_stacks
from sciSR.data.phantoms import knee_phantom
from sciSR.degrade import bin_array
from sciSR.errors import SciSRError
from sciSR.training import load_config, run

COMMON = ["train.max_steps=2", "train.val_every=2", "train.checkpoint_every=2", "train.accelerator=cpu",
          "data.count=3", "data.samples_per_epoch=4", "data.batch_size=2", "data.val_patches=1"]


def test_multistack_recipe_trains_and_fuses(tmp_path):
    overrides = [*COMMON, f"train.out_dir={tmp_path}", "data.options={shape: [32, 32, 32]}",
                 "data.patch_size=[4, 16, 16]", "model.options={features: 8, stream_layers: 1, refine_layers: 2}"]
    result = run("fusion_multistack_x4", overrides=overrides)
    assert result.metrics["iterations"] == 2 and np.isfinite(result.metrics["val_l1"])
    card = sciSR.load_model(result.model_path).card
    assert card["arch"] == "oktay-multi" and tuple(card["scale"]) == (4, 1, 1)
    stacks = simulate_stacks(knee_phantom((16, 16, 16), seed=9), [(4, 1, 1), (1, 4, 1)])
    out = sciSR.upscale(stacks, result.model_path)
    assert out.array.shape == (16, 16, 16) and np.isfinite(out.array).all()


def test_reference_recipe_trains_and_uses_the_reference(tmp_path):
    overrides = [*COMMON, f"train.out_dir={tmp_path}", "data.options={shape: [32, 32, 8]}",
                 "data.patch_size=[8, 8]", "data.margin=1",
                 "model.options={features: 8, n_blocks: 1, tail_blocks: 1, texture_features: 8, search_radius: 2}"]
    result = run("reference_guided_x2", overrides=overrides)
    assert result.metrics["iterations"] == 2 and np.isfinite(result.metrics["val_l1"])
    hr = knee_phantom((16, 16, 4), seed=9)
    lr = hr.replace(array=bin_array(hr.array, (2, 2, 1)), affine=sciSR.geometry.downscale_affine(np.eye(4), (2, 2, 1)))
    ref = hr.replace(affine=np.eye(4))
    out = sciSR.upscale(lr, result.model_path, reference=ref)
    assert out.array.shape == (16, 16, 4) and np.isfinite(out.array).all()
    with pytest.raises(SciSRError, match="reference"):
        sciSR.upscale(lr, result.model_path)


def test_fusion_config_errors(tmp_path):
    base = "fusion_multistack_x4"
    with pytest.raises(SciSRError, match="must start with 'scale'"):
        load_config(base, ["scale=[1, 1, 4]"])
    with pytest.raises(SciSRError, match="cannot be combined"):
        load_config(base, ["data.reference.enabled=true"])
    with pytest.raises(SciSRError, match=r"unknown key 'data\.fusion\.stack'"):
        load_config(base, ["data.fusion.stack=[]"])
