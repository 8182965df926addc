"""Every recipe in configs/ trains on its generated data and its model file upscales a phantom."""

from pathlib import Path

import numpy as np
import pytest

import sciSR
from sciSR.data.phantoms import generate
from sciSR.degrade import bin_array
from sciSR.train import run

CONFIGS = Path(__file__).parents[2] / "configs"
# Small networks and few samples: this checks that each recipe runs end to end, not how well it learns.
TINY_MODELS = {"edsr-baseline": "{n_blocks: 1, features: 8}", "rrdbnet": "{n_blocks: 1, features: 8, growth: 4}"}
RECIPES = {
    "knee_mri_throughplane_x4": ("knee_phantom", {"shape": (32, 32, 16)}),
    "mri_inplane_x2": ("knee_phantom", {"shape": (32, 32, 8)}),
    "ct_x2": ("ct_phantom", {"shape": (48, 48)}),
    "telescope_x2": ("star_field", {"shape": (48, 48)}),
    "generic_x4_gan": ("generic_scene", {"shape": (32, 32)}),
}


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_recipe_runs_on_generated_data(recipe, tmp_path):
    path = CONFIGS / f"{recipe}.yaml"
    arch = sciSR.train.load_config(path)["model"]["arch"]
    overrides = [f"train.out_dir={tmp_path}", "train.max_steps=2", "train.val_every=2", "train.checkpoint_every=2",
                 "train.accelerator=cpu", "data.count=3", "data.samples_per_epoch=4", "data.batch_size=2",
                 "data.val_patches=1", f"model.options={TINY_MODELS[arch]}", "gan.options={features: 4}",
                 "gan.start_step=1"]
    result = run(path, overrides=overrides)
    assert result.metrics["iterations"] == 2 and np.isfinite(result.metrics["val_l1"])
    model = sciSR.load_model(result.model_path)
    name, options = RECIPES[recipe]
    img = generate(name, 99, **options)
    out = sciSR.upscale(img, result.model_path)
    factors = tuple(np.array(out.array.shape) // np.array(img.array.shape))
    assert out.array.shape == tuple(n * f for n, f in zip(img.array.shape, factors, strict=True))
    assert tuple(f for f in factors if f > 1) == tuple(s for s in model.card["scale"] if s > 1)
    assert np.isfinite(out.array).all()
    if img.domain == "sky":  # counts: the flux-conserving upscale keeps every LR pixel's total
        np.testing.assert_allclose(bin_array(out.array, factors, "sum"), img.array, rtol=1e-4, atol=1e-3)
