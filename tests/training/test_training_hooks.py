"""``run(on_metrics=..., stop=...)``: progress reports at the logging cadence and at validation; a clean stop."""

import threading

import numpy as np
import pytest

import sciSR
from sciSR.training import run


def test_on_metrics_reports_training_steps_and_validations(tiny):
    reports = []
    result = run(tiny(train={"max_steps": 10, "log_every": 5, "val_every": 10}), on_metrics=reports.append)
    train = [r for r in reports if "train/loss" in r]
    val = [r for r in reports if "val/psnr" in r]
    assert [r["step"] for r in train] == [5, 10]
    assert all(isinstance(v, float) and np.isfinite(v) for r in reports for v in r.values())
    assert {"train/l1", "train/lr"} <= set(train[0]) and not any(k.startswith("val/") for k in train[0])
    # Before training, at step 10 by val_every, and the final validation.
    assert [r["step"] for r in val] == [0, 10, 10] and "val/l1" in val[0]
    assert val[-1]["val/psnr"] == pytest.approx(result.metrics["val_psnr"], rel=1e-6)  # logged as float32


def test_stop_ends_the_run_and_still_saves_the_model(tiny):
    stop = threading.Event()

    def stop_at_step_10(metrics):
        if metrics["step"] >= 10:
            stop.set()

    result = run(tiny(train={"max_steps": 100_000, "log_every": 5}), on_metrics=stop_at_step_10, stop=stop)
    assert result.metrics["iterations"] == 10
    assert result.model_path.is_file()
    assert sciSR.load_model(result.model_path).card["metrics"]["iterations"] == 10


def test_a_stop_set_before_the_run_ends_it_after_one_step_which_is_reported(tiny):
    stop = threading.Event()
    stop.set()
    reports = []
    assert run(tiny(), on_metrics=reports.append, stop=stop).metrics["iterations"] == 1
    assert [r["step"] for r in reports if "train/loss" in r] == [1]
