"""Scale test: two CPU processes (gloo) under torchrun end with identical weights."""

import os
import subprocess
import sys
import textwrap

import pytest
import torch

WORKER = textwrap.dedent("""
    import os, torch
    from sciSR.train import run
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
