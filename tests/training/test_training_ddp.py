"""Scale test: two CPU processes (gloo) under torchrun end with identical weights."""

import os
import subprocess
import sys
import textwrap

import pytest
import torch

WORKER = textwrap.dedent("""
    import os, torch
    from sciSR.training import run
    cfg = {"name": "ddp", "scale": [2, 2], "domain": "generic",
           "data": {"generate": "generic_scene", "count": 3, "options": {"shape": [40, 40]}, "patch_size": [10, 10],
                    "samples_per_epoch": 16, "batch_size": 4, "val_patches": 2, "val_fraction": 0.34, "margin": 1},
           "degradation": {"type": "bicubic", "noise_std": [0, 0.02]},
           "model": {"arch": "edsr-baseline", "options": {"n_blocks": 1, "features": 8}},
           "train": {"max_steps": 4, "val_every": 4, "checkpoint_every": 2, "accelerator": "cpu", "devices": 2,
                     "strategy": "ddp", "ema": None, "log_every": 1, "out_dir": "runs"}}
    result = run(cfg)
    state = {k: v.clone() for k, v in result.model.state_dict().items()}
    torch.save({"state": state, "iterations": result.metrics["iterations"]}, f"rank{os.environ['RANK']}.pt")
""")


@pytest.mark.slow
def test_two_process_ddp_on_cpu_ends_with_identical_weights(tmp_path):
    (tmp_path / "worker.py").write_text(WORKER)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           "worker.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert ranks[0]["iterations"] == ranks[1]["iterations"] == 4
    for name, value in ranks[0]["state"].items():
        torch.testing.assert_close(ranks[1]["state"][name], value, rtol=0, atol=0)
    assert (tmp_path / "runs" / "ddp" / "model.safetensors").is_file()
    assert (tmp_path / "runs" / "ddp" / "checkpoints" / "last.ckpt").is_file()


@pytest.mark.slow
def test_torchrun_runs_the_training_module_on_a_recipe_name(tmp_path):
    """``torchrun -m sciSR.training RECIPE key=value ...``, the documented multi-GPU form, on two CPU processes."""
    overrides = ["data.count=3", "data.options.shape=[64, 64]", "data.samples_per_epoch=8", "data.batch_size=2",
                 "data.val_patches=1", "model.options.n_blocks=1", "model.options.features=8", "train.max_steps=2",
                 "train.val_every=2", "train.checkpoint_every=2", "train.accelerator=cpu", "train.devices=2",
                 "train.strategy=ddp", f"train.out_dir={tmp_path / 'runs'}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           "-m", "sciSR.training", "ct_x2", *overrides], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "runs" / "ct-x2" / "model.safetensors").is_file()


# Only rank 0 sees its event set: the run must still end every rank at the same iteration (no hang).
STOPPING_WORKER = WORKER.replace("result = run(cfg)", textwrap.dedent("""
    import threading
    stop = threading.Event()
    def stop_on_rank0(metrics):
        if os.environ["RANK"] == "0" and metrics["step"] >= 2:
            stop.set()
    cfg["train"]["max_steps"] = 1000
    result = run(cfg, on_metrics=stop_on_rank0, stop=stop)
"""))


@pytest.mark.slow
def test_a_stop_on_one_rank_ends_every_rank_at_the_same_step(tmp_path):
    (tmp_path / "worker.py").write_text(STOPPING_WORKER)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           "worker.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert ranks[0]["iterations"] == ranks[1]["iterations"] == 2
    assert (tmp_path / "runs" / "ddp" / "model.safetensors").is_file()
