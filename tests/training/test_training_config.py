"""Recipes validate; unknown keys and bad values fail with one line naming the file and the key."""

from pathlib import Path

import pytest

from sciSR.errors import SciSRError
from sciSR.training import list_recipes, load_config
from sciSR.training.engine import pair_spec, resolve_precision

CONFIGS = sorted((Path(__file__).parents[2] / "configs").glob("*.yaml"))


def test_the_five_recipes_exist():
    assert set(list_recipes()) >= {"knee_mri_throughplane_x4", "mri_inplane_x2", "ct_x2", "telescope_x2",
                                   "generic_x4_gan"}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_recipes_validate_and_build_their_pipeline(path):
    cfg = load_config(path)
    assert cfg["_source"] == str(path) and cfg["data"]["generate"]
    spec = pair_spec(cfg)
    assert len(spec.model_scale) == len(cfg["data"]["patch_size"])


def write(tmp_path, text):
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    return path


BASE = "scale: [2, 2]\ndata: {generate: generic_scene, patch_size: [8, 8]}\n"


@pytest.mark.parametrize("text, message", [
    (BASE + "trian: {max_steps: 3}\n", "unknown key 'trian' (did you mean 'train'?)"),
    (BASE + "train: {max_step: 3}\n", "unknown key 'train.max_step' (did you mean 'train.max_steps'?)"),
    (BASE + "train: {max_steps: many}\n", "'train.max_steps' must be an integer, got 'many'"),
    (BASE + "optim: {name: sgd}\n", "'optim.name' must be one of adam, adamw, got 'sgd'"),
    (BASE + "normalisation: {method: percentile, low: 3}\n", "unknown key 'normalisation.low' for method percentile"),
    (BASE + "loss: {l1: 0}\n", "at least one > 0"),
    (BASE + "loss: {perceptual: 1}\n", "needs 'loss.feature_net'"),
    ("scale: 2\ndata: {generate: generic_scene, patch_size: [8, 8]}\n", "one factor per image spatial axis"),
    ("scale: [2, 2]\ndata: {generate: generic_scene}\n", "'data.patch_size' is required"),
    ("scale: [2, 2]\ndata: {patch_size: [8, 8]}\n", "data needs 'files', 'folder', 'collection' or 'generate'"),
    ("scale: [2, 2]\ndata: {generate: knee_phantom, patch_size: [8, 8]}\n",
     "knee_phantom makes 3D images but 'scale' [2, 2] has 2 factors"),
    ("scale: [2, 2]\ndata: {generate: ct_phantom, options: {shape: [32, 32, 32]}, patch_size: [8, 8]}\n",
     "ct_phantom makes 3D images"),
    ("scale: [2, 2]\ndata: {generate: brain_phantom, patch_size: [8, 8]}\n", "unknown phantom 'brain_phantom'"),
    (BASE + "train: [1\n", "not valid YAML at line"),
])
def test_errors_are_one_line_with_file_and_key(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(SciSRError) as info:
        load_config(path)
    text = str(info.value)
    assert "\n" not in text and text.startswith(f"{path}: ") and message in text


def test_degradation_options_are_checked_with_the_file_named(tmp_path):
    path = write(tmp_path, BASE + "degradation: {type: ct, sigma: 2}\n")
    with pytest.raises(SciSRError, match=r"recipe.yaml: unknown option 'sigma' for degradation 'ct'"):
        pair_spec(load_config(path))


def test_overrides_are_yaml_values_on_dotted_keys(tmp_path):
    path = write(tmp_path, BASE)
    cfg = load_config(path, ["train.max_steps=7", "scale=[4, 4]", "optim.lr=5e-4", "degradation.type=kspace",
                             "degradation.noise_std=[0, 2]", "model.options.features=8"])
    assert cfg["train"]["max_steps"] == 7 and cfg["scale"] == [4, 4] and cfg["optim"]["lr"] == 5e-4
    assert cfg["degradation"] == {"type": "kspace", "noise_std": [0, 2]}
    assert cfg["model"]["options"] == {"features": 8}
    with pytest.raises(SciSRError, match=r"unknown key 'train\.maxsteps'"):
        load_config(path, ["train.maxsteps=7"])
    with pytest.raises(SciSRError, match=r"must look like key\.subkey=value"):
        load_config(path, ["train.max_steps"])


def test_defaults_follow_the_domain():
    cfg = load_config({"scale": [2, 2], "domain": "sky", "data": {"generate": "star_field", "patch_size": [8, 8]}})
    assert cfg["normalisation"] == {"method": "asinh"}
    assert resolve_precision("auto") in ("32-true", "bf16-mixed")  # no GPU here; see test_training_precision.py
    assert resolve_precision("bf16-mixed") == "bf16-mixed"


def test_override_that_is_not_yaml_is_taken_as_text():
    from sciSR.training.config import _parse_override

    assert _parse_override("data.pattern=*.dcm") == (["data", "pattern"], "*.dcm")
    assert _parse_override("train.max_steps=50") == (["train", "max_steps"], 50)
