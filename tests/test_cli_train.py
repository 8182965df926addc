"""`scisr train` and `sciSR.train(config)`: a shipped recipe, shrunk by overrides, trains a usable model file."""

import numpy as np

import sciSR
from sciSR.cli import main

SHRINK = [
    "data.count=3", "data.options.shape=[64, 64]", "data.samples_per_epoch=16", "data.batch_size=4",
    "model.options.n_blocks=1", "model.options.features=8", "train.max_steps=4", "train.val_every=4",
    "train.checkpoint_every=4", "train.log_every=2", "train.accelerator=cpu",
]


def test_cli_train_then_upscale_with_the_model(tmp_path, capsys):
    args = ["train", "configs/ct_x2.yaml", "--set", f"train.out_dir={tmp_path / 'runs'}"]
    for item in SHRINK:
        args += ["--set", item]
    assert main(args) == 0
    out = capsys.readouterr().out
    model_path = out.split("model: ")[1].splitlines()[0]
    assert model_path.endswith(".safetensors")
    ct = sciSR.SciImage.from_array(np.full((20, 16), -1000.0, np.float32), spacing=(0.8, 0.8), domain="ct")
    sr = sciSR.upscale(ct, model_path)
    assert sr.array.shape == (40, 32) and sr.spacing == (0.4, 0.4)
    assert sciSR.load_model(model_path).card["normalisation"]["method"] == "ct_window"


def test_train_is_callable_from_the_package(tmp_path):
    result = sciSR.train("configs/ct_x2.yaml", overrides=[*SHRINK, f"train.out_dir={tmp_path / 'runs'}"])
    assert result.model_path.exists() and result.metrics["iterations"] == 4


def test_bad_recipe_key_is_one_line_exit_1(capsys):
    assert main(["train", "configs/ct_x2.yaml", "--set", "train.max_stepz=3"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "max_stepz" in err and "ct_x2.yaml" in err
