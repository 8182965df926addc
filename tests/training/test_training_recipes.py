"""Installed recipes: found by name (also in a wheel install); each trains on its generated data and its model
file upscales a phantom."""

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import sciSR
from sciSR.data.phantoms import generate
from sciSR.degrade import bin_array
from sciSR.errors import SciSRError
from sciSR.training import list_recipes, load_config, recipe_path, run

CONFIGS = Path(__file__).parents[2] / "configs"
REPO = CONFIGS.parent
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
    arch = sciSR.training.load_config(recipe)["model"]["arch"]
    overrides = [f"train.out_dir={tmp_path}", "train.max_steps=2", "train.val_every=2", "train.checkpoint_every=2",
                 "train.accelerator=cpu", "data.count=3", "data.samples_per_epoch=4", "data.batch_size=2",
                 "data.val_patches=1", f"model.options={TINY_MODELS[arch]}", "gan.options={features: 4}",
                 "gan.start_step=1"]
    result = run(recipe, overrides=overrides)
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


def _names_in(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder).with_suffix("")) for p in folder.rglob("*.yaml"))


def test_every_yaml_of_configs_is_an_installed_recipe():
    assert list_recipes() == _names_in(CONFIGS)
    assert recipe_path("shipped/mri-x2").read_bytes() == (CONFIGS / "shipped" / "mri-x2.yaml").read_bytes()


def test_load_config_takes_a_recipe_name_or_a_path(tmp_path, monkeypatch):
    by_name = load_config("ct_x2")
    assert Path(by_name["_source"]) == recipe_path("ct_x2")
    assert {k: v for k, v in by_name.items() if k != "_source"} == \
        {k: v for k, v in load_config(CONFIGS / "ct_x2.yaml").items() if k != "_source"}
    # A file in the working directory wins over the installed recipe of the same name.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ct_x2").write_text("scale: [2, 2]\ndata: {generate: generic_scene, patch_size: [8, 8]}\n")
    assert load_config("ct_x2")["_source"] == "ct_x2"
    with pytest.raises(SciSRError, match="no such config file or installed recipe"):
        load_config("ct_x3")
    with pytest.raises(SciSRError, match=r"no recipe named 'ct_x3' \(installed: ct_x2, "):
        recipe_path("ct_x3")


def _checkout_copy(dest: Path) -> Path:
    """The files git tracks or would track (not ignored) copied to ``dest``: what a fresh clone builds from.

    Building in the checkout itself would write setuptools' ``build/`` there, and a stale ``build/lib``
    carries files deleted since into the wheel.
    """
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=REPO, capture_output=True, check=True)
    for name in filter(None, listed.stdout.decode().split("\0")):
        source = REPO / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


def test_a_wheel_carries_the_recipes_and_a_plain_install_lists_them(tmp_path):
    """Build the wheel from a copy of the checkout, install it (not editable) into a folder, list the recipes."""
    source = _checkout_copy(tmp_path / "src")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp_path / "wheel"), str(source)], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    (wheel,) = (tmp_path / "wheel").glob("scisr-*.whl")
    shipped = {f"sciSR/recipes/{name}.yaml" for name in _names_in(CONFIGS)}
    assert shipped <= set(zipfile.ZipFile(wheel).namelist())
    target = tmp_path / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
                              str(wheel)], capture_output=True, text=True)
    assert install.returncode == 0, install.stderr
    # PYTHONPATH puts the installed copy ahead of this checkout's editable install.
    listed = subprocess.run([sys.executable, "-c", "import sciSR.training as t; print(t.__file__); "
                             "print(*t.list_recipes()); print(t.recipe_path('ct_x2'))"],
                            capture_output=True, text=True, cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": str(target)})
    assert listed.returncode == 0, listed.stderr
    module, names, ct = listed.stdout.splitlines()
    assert Path(module).is_relative_to(target) and Path(ct).is_relative_to(target)
    assert names.split() == _names_in(CONFIGS)
