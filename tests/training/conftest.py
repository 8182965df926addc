"""Tiny training configurations: seconds on a CPU."""

import copy
from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(config, items):
    # Lightning's advice for real runs (more workers, logging cadence) is noise for these few-step runs.
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.filterwarnings("ignore::UserWarning"))

TINY = {
    "name": "tiny",
    "seed": 0,
    "domain": "generic",
    "scale": [2, 2],
    "data": {"generate": "generic_scene", "count": 4, "options": {"shape": [48, 48]}, "patch_size": [12, 12],
             "margin": 1, "samples_per_epoch": 32, "batch_size": 8, "val_patches": 4, "val_fraction": 0.25},
    "degradation": {"type": "bicubic"},
    "model": {"arch": "edsr-baseline", "options": {"n_blocks": 1, "features": 16}},
    "optim": {"lr": 2.0e-3},
    "schedule": {"name": "cosine"},
    "train": {"max_steps": 30, "val_every": 30, "checkpoint_every": 10, "log_every": 5, "ema": None,
              "accelerator": "cpu"},
}


def merge(base: dict, update: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in update.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


@pytest.fixture(scope="session")
def config_factory():
    """``make(base=TINY, **sections)``: ``base`` with sections merged in (nested dicts merge)."""

    def make(base: dict | None = None, **sections) -> dict:
        return merge(TINY if base is None else base, sections)

    return make


@pytest.fixture
def tiny(tmp_path, config_factory):
    """``tiny(**sections)``: the tiny config with sections merged in, writing under ``tmp_path``."""

    def make(**sections) -> dict:
        cfg = config_factory(**sections)
        cfg["train"].setdefault("out_dir", str(tmp_path / "runs"))
        return cfg

    return make
