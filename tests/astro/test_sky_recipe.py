"""configs/sky_x2.yaml loads and trains a few steps, with the flux projection, on real shipped frames."""

from pathlib import Path

import numpy as np

import sciSR
from sciSR.science import shipped_sky_frames
from sciSR.training import run

RECIPE = Path(__file__).parents[2] / "configs" / "sky_x2.yaml"


def test_sky_recipe_trains_on_shipped_frames(tmp_path, m13_path):
    frames = shipped_sky_frames(min_size=100)
    assert m13_path in frames and all(sciSR.read(f).array.ndim == 2 for f in frames)
    files = "[" + ", ".join(str(f) for f in frames) + "]"
    overrides = [f"train.out_dir={tmp_path}", "train.max_steps=2", "train.val_every=2", "train.checkpoint_every=2",
                 "train.accelerator=cpu", "data.generate=null", f"data.files={files}", "data.val_fraction=0.5",
                 "data.samples_per_epoch=4", "data.batch_size=2", "data.val_patches=1",
                 "model.options={n_blocks: 1, features: 8}"]
    result = run(RECIPE, overrides=overrides)
    assert result.metrics["iterations"] == 2 and np.isfinite(result.metrics["val_l1"])
    assert result.model.card["training"]["config"]["model"]["flux_projection"] == "conserve"
    lr = sciSR.read(m13_path)
    sr = sciSR.upscale(lr, result.model_path, flux="conserve")
    sums = sciSR.degrade.bin_array(sr.array.astype(np.float64), (2, 2), "sum")
    assert np.abs(sums - lr.array).max() <= 1e-6 * np.abs(lr.array).max()
