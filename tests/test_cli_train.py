"""`scisr train` and `sciSR.train(config)`: an installed recipe, shrunk by overrides, trains a usable model file."""

import numpy as np
import pytest

import sciSR
from sciSR.cli import main

SHRINK = [
    "data.count=3", "data.options.shape=[64, 64]", "data.samples_per_epoch=16", "data.batch_size=4",
    "model.options.n_blocks=1", "model.options.features=8", "train.max_steps=4", "train.val_every=4",
    "train.checkpoint_every=4", "train.log_every=2", "train.accelerator=cpu",
]


def test_cli_train_then_upscale_with_the_model(tmp_path, capsys):
    args = ["train", "ct_x2", "--set", f"train.out_dir={tmp_path / 'runs'}"]
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


def test_train_is_the_training_run_function(tmp_path):
    assert sciSR.train is sciSR.training.run
    result = sciSR.train("configs/ct_x2.yaml", overrides=[*SHRINK, f"train.out_dir={tmp_path / 'runs'}"])
    assert result.model_path.exists() and result.metrics["iterations"] == 4


def test_cli_train_lists_the_installed_recipes(capsys):
    assert main(["train", "--list"]) == 0
    names = capsys.readouterr().out.split()
    assert names == sciSR.training.list_recipes() and {"ct_x2", "shipped/mri-x2"} <= set(names)


def test_cli_train_needs_a_recipe_or_list(capsys):
    with pytest.raises(SystemExit):
        main(["train"])
    assert "--list" in capsys.readouterr().err


def test_cli_train_refuses_an_unknown_recipe_name(capsys):
    assert main(["train", "no_such_recipe"]) == 1
    assert "no_such_recipe" in capsys.readouterr().err


def test_bad_recipe_key_is_one_line_exit_1(capsys):
    assert main(["train", "ct_x2", "--set", "train.max_stepz=3"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "max_stepz" in err and "ct_x2.yaml" in err
