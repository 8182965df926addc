"""Training precision (train.precision) and the channels-last layout of the training engine."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from sciSR.errors import SciSRError
from sciSR.infer import precision as prec
from sciSR.models import create_model
from sciSR.training import load_config, run
from sciSR.training.engine import resolve_precision
from sciSR.training.module import SRModule


@pytest.mark.parametrize("name, expected", [("fp32", "32-true"), ("bf16", "bf16-mixed"), ("bf16-mixed", "bf16-mixed"),
                                            (32, 32)])
def test_names_map_to_lightning(name, expected):
    assert resolve_precision(name, "cpu") == expected


@pytest.mark.parametrize("native, expected", [(True, "bf16-mixed"), (False, "32-true")])
def test_auto_on_cpu_follows_native_bf16(monkeypatch, native, expected):
    monkeypatch.setattr(prec, "cpu_has_native_bf16", lambda: native)
    assert resolve_precision("auto", "cpu") == expected


def test_auto_on_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert resolve_precision("auto", "gpu") == "16-mixed"
    assert resolve_precision("fp16", "gpu") == "16-mixed"


def test_fp16_on_cpu_and_unknown_names_are_refused(tiny):
    with pytest.raises(SciSRError, match="not available on the CPU"):
        resolve_precision("fp16", "cpu")
    with pytest.raises(SciSRError, match=r"'train\.precision' must be"):
        load_config(tiny(train={"precision": "half"}))


def test_module_uses_channels_last_for_weights_and_images(tiny):
    cfg = load_config(tiny())
    generator = create_model("edsr-baseline", scale=2, features=8, n_blocks=1)
    module = SRModule(cfg, generator)
    module.setup("fit")
    assert generator.head.weight.is_contiguous(memory_format=torch.channels_last)
    batch = {"lr": torch.rand(2, 1, 6, 6), "hr": torch.rand(2, 1, 12, 12), "index": torch.arange(2)}
    moved = module.on_after_batch_transfer(batch, 0)
    assert moved["lr"].is_contiguous(memory_format=torch.channels_last)
    assert moved["hr"].is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(moved["lr"], batch["lr"]) and moved["index"] is batch["index"]


def test_bf16_run_trains_and_saves_a_float32_model(tiny):
    result = run(tiny(train={"max_steps": 3, "val_every": 3, "checkpoint_every": 3, "precision": "bf16"}))
    assert result.metrics["iterations"] == 3
    weights = result.model.state_dict()
    assert all(v.dtype == torch.float32 for v in weights.values() if v.is_floating_point())
    assert result.model_path.exists()


class _Pairs:
    """Stand-in for self_supervision.PatchPairs: random (low, high) batches of a ×2 problem."""

    def batch(self, rng, size, step):
        low = rng.random((size, 1, 8, 8), dtype=np.float32)
        return low, np.repeat(np.repeat(low, 2, axis=2), 2, axis=3)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_self_supervised_training_loop_takes_a_precision(precision):
    from sciSR.self_supervision import train_on_pairs

    torch.manual_seed(0)
    model = create_model("edsr-baseline", scale=2, features=8, n_blocks=1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    stats = train_on_pairs(model, _Pairs(), device=torch.device("cpu"), rng=np.random.default_rng(0),
                   deadline=time.monotonic() + 600, infer_cost=lambda s: 0.0, max_steps=3, report=lambda f: None,
                   check=lambda: None, precision=precision)
    assert stats["steps"] == 3 and stats["precision"] == precision and np.isfinite(stats["loss"])
    assert model.head.weight.is_contiguous(memory_format=torch.channels_last)
    assert model.head.weight.dtype == torch.float32
    assert not torch.equal(model.head.weight, before["head.weight"])
    with pytest.raises(SciSRError, match="precision 'half'"):
        train_on_pairs(model, _Pairs(), device=torch.device("cpu"), rng=np.random.default_rng(0),
                       deadline=time.monotonic(), infer_cost=lambda s: 0.0, max_steps=1, report=lambda f: None,
                       check=lambda: None, precision="half")
