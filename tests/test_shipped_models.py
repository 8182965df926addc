"""The models in sciSR/weights: load by name, cards match weights, CLI works, and they beat cubic on held-out data."""

import contextlib
import importlib.util
import io
import json
from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open

import sciSR
from sciSR.cli import main
from sciSR.hub import WEIGHTS_DIR, shipped_models, validate_card

ROOT = Path(__file__).resolve().parents[1]
EXPECTED = ("generic-x2", "generic-x4", "mri-x2", "mri-thick-x4", "ct-x2", "sky-x2")
SHIPPED = sorted(shipped_models())
CROP = 512  # HR pixels per axis: every shipped model's first held-out image whole (camera.png is 512²)


def _quality():
    # benchmarks/quality.py holds the one definition of the held-out measurement.
    spec = importlib.util.spec_from_file_location("quality", ROOT / "benchmarks" / "quality.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


quality = _quality()


def test_every_planned_model_ships():
    assert set(EXPECTED) <= set(SHIPPED)
    listed = set(sciSR.list_models())
    assert set(SHIPPED) <= listed


@pytest.mark.parametrize("name", SHIPPED)
def test_loads_by_name_and_card_matches_weights(name):
    weights = WEIGHTS_DIR / f"{name}.safetensors"
    assert weights.stat().st_size <= 10_000_000
    card = validate_card(json.loads(weights.with_suffix(".json").read_text()), weights)
    model = sciSR.load_model(name)
    assert model.card["name"] == name == card["name"]
    with safe_open(str(weights), "pt") as f:
        names = set(f.keys())
        assert names == set(model.state_dict())
        for key in sorted(names):
            assert tuple(f.get_tensor(key).shape) == tuple(model.state_dict()[key].shape)
    for key in ("description", "held_out", "data_licences", "recipe", "steps", "wall_time_s", "machine",
                "held_out_metrics", "training_data"):
        assert card[key], key
    assert (ROOT / card["recipe"]).is_file() and card["steps"] > 0
    # The test images were never trained on.
    assert not set(card["held_out"]) & set(card["training_data"]["train_subjects"])
    assert {row["image"] for row in card["held_out_metrics"]} == set(card["held_out"])


def _held_out_case(name):
    """The model, its first held-out image (centre CROP pixels per axis at most), factors and path."""
    model = sciSR.load_model(name)
    path, factors = quality.held_out_cases(model.card)[0]
    image = sciSR.read(path)
    region = tuple(slice(max(0, (n - CROP) // 2), max(0, (n - CROP) // 2) + CROP) for n in image.spatial_shape)
    crop = sciSR.SciImage.from_array(image.array[region], spacing=image.spacing, domain=image.domain,
                                     meta={k: image.meta[k] for k in ("units",) if k in image.meta})
    return model, crop, factors, path


@pytest.mark.parametrize("name", SHIPPED)
def test_beats_cubic_on_its_held_out_image(name):
    model, crop, factors, path = _held_out_case(name)
    kind, options = quality.degradation_of(model.card)
    row = quality.evaluate_case(model, crop, factors, kind, options, seed=1)
    assert row["psnr"] > row["psnr_cubic"], (path.name, row["psnr"], row["psnr_cubic"])
    assert row["sr"].shape == row["hr"].shape


@pytest.mark.parametrize("name", SHIPPED)
def test_cli_upscales_a_small_file_by_name(name, tmp_path):
    model, crop, factors, _ = _held_out_case(name)
    small = tuple(slice(0, 24 * f) if f > 1 else slice(0, min(n, 24))
                  for n, f in zip(crop.spatial_shape, factors, strict=True))
    suffix = {"sky": ".fits", "generic": ".tif"}.get(crop.domain, ".nii.gz")
    source = tmp_path / f"in{suffix}"
    array = crop.array[small]
    sciSR.write(sciSR.SciImage.from_array(array, spacing=crop.spacing, domain=crop.domain, meta=crop.meta), source)
    target = tmp_path / f"out{suffix}"
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(["upscale", str(source), str(target), "--model", name])
    assert rc == 0, err.getvalue()
    result = sciSR.read(target).array
    model_scale = tuple(model.card["scale"]) + (1,) * (array.ndim - len(model.card["scale"]))
    assert result.shape == tuple(n * s for n, s in zip(array.shape, model_scale, strict=True))
    assert np.isfinite(result).all()
