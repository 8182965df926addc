"""The per-worker model cache of batches and the receptive field recorded in the model's spec and card."""

from __future__ import annotations

import functools
import os

import numpy as np
import torch

from sciSR.hub import load_model, save_model
from sciSR.infer import batch
from sciSR.infer.receptive_field import receptive_field_radius
from sciSR.models import create_model


def _saved(tmp_path) -> str:
    torch.manual_seed(0)
    path = tmp_path / "tiny.safetensors"
    save_model(create_model("edsr-baseline", scale=2, features=8, n_blocks=1), path)
    return os.fspath(path)


def test_measured_radius_is_declared_and_saved(tmp_path):
    model = load_model(_saved(tmp_path))
    assert model.spec.receptive_field is None
    rf = receptive_field_radius(model, 2, (2, 2), 1)
    assert model.spec.receptive_field == rf.radius and model.card["spec"]["receptive_field"] == list(rf.radius)
    again = tmp_path / "again.safetensors"
    save_model(model, again)
    assert load_model(again).spec.receptive_field == rf.radius


def test_worker_loads_once_and_measures_once(tmp_path, monkeypatch):
    path = _saved(tmp_path)
    monkeypatch.setattr(batch, "_WORKER_MODELS", {})
    measured = []
    real = receptive_field_radius.__globals__["_measure_axis"]
    monkeypatch.setitem(receptive_field_radius.__globals__, "_measure_axis",
                        lambda *a: measured.append(a[4]) or real(*a))
    seen = []

    def job(p, *, model):
        seen.append(model)
        return p

    partial = functools.partial(job, model=path)
    results = [batch._run_one(partial, f"file{i}") for i in range(3)]
    assert all(r.ok for r in results)
    assert len({id(m) for m in seen}) == 1 and isinstance(seen[0], torch.nn.Module)
    assert measured == [0, 1]  # one measurement per axis, for the first task only
    assert seen[0].card["spec"]["receptive_field"] is not None
    # Interpolation names and modules pass through untouched.
    assert batch.worker_model("cubic") == "cubic" and batch.worker_model(seen[0]) is seen[0]
    # A changed file is loaded again.
    os.utime(path, (1, 1))
    assert batch.worker_model(path) is not seen[0]
    np.testing.assert_equal(len(batch._WORKER_MODELS), 2)


def test_the_batch_job_of_upscale_batch_gets_the_worker_model(tmp_path, monkeypatch):
    """upscale_batch sends workers a dataclass job holding the model's name: it is swapped for the loaded model."""
    from sciSR.api import _BatchJob

    path = _saved(tmp_path)
    monkeypatch.setattr(batch, "_WORKER_MODELS", {})
    job = _BatchJob(out_dir=os.fspath(tmp_path), model=path, scale=2, spacing=None, overwrite=False, tile=None,
                    device="cpu", flux=None, hdu=None, force=False, consistency="auto", guard=False, precision="fp32",
                    ensemble=False, uncertainty=False)
    first, second = batch._with_worker_model(job), batch._with_worker_model(job)
    assert isinstance(first.model, torch.nn.Module) and first.model is second.model
    assert first.out_dir == job.out_dir and job.model == path
