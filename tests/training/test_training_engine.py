"""End to end on a CPU in seconds: learning, logs, model file → upscale, resume, atomic checkpoints, GAN."""

import csv
import io
import itertools
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import sciSR
from sciSR.data.phantoms import generic_scene
from sciSR.errors import SciSRError
from sciSR.training import checkpoint as checkpoint_module
from sciSR.training import run
from sciSR.training.checkpoint import check_checkpoint


@pytest.fixture(scope="module")
def trained(tmp_path_factory, config_factory):
    cfg = config_factory(train={"out_dir": str(tmp_path_factory.mktemp("runs")), "keep_checkpoints": 5, "ema": 0.8})
    return cfg, run(cfg)


def test_short_run_lowers_validation_l1_and_raises_psnr(trained):
    _, result = trained
    start, end = result.metrics["start"], result.metrics
    assert result.metrics["iterations"] == 30
    assert end["val_l1"] < 0.7 * start["val_l1"]
    assert end["val_psnr"] > start["val_psnr"] + 2.0
    assert end["val_ssim"] > start["val_ssim"]


def test_logs_hold_the_loss_curve_and_validation_metrics(trained):
    _, result = trained
    rows = list(csv.DictReader((result.log_dir / "metrics.csv").read_text().splitlines()))
    losses = [float(r["train/loss"]) for r in rows if r.get("train/loss")]
    psnrs = [float(r["val/psnr"]) for r in rows if r.get("val/psnr")]
    assert len(losses) >= 5 and losses[-1] < losses[0]
    assert len(psnrs) >= 2
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    images = set()
    for name in os.listdir(result.log_dir):
        if name.startswith("events.out.tfevents"):
            events = EventAccumulator(str(result.log_dir / name), size_guidance={"images": 0})
            events.Reload()
            images |= set(events.Tags()["images"])
    assert "val/lr_sr_hr_0" in images  # LR (nearest) | SR | HR side by side


def test_model_file_loads_and_upscales_a_sciimage(trained):
    _, result = trained
    model = sciSR.load_model(result.model_path)
    card = model.card
    assert card["normalisation"] == {"method": "percentile"} and card["domain"] == "generic"
    assert card["metrics"]["val_psnr"] == pytest.approx(result.metrics["val_psnr"])
    assert card["training"]["data"]["generate"] == "generic_scene" and card["scale"] == [2, 2]
    for name, param in result.model.state_dict().items():  # the saved weights are the (EMA) result
        torch.testing.assert_close(model.state_dict()[name], param)
    img = generic_scene((40, 40), seed=123)
    out = sciSR.upscale(img, result.model_path)
    assert isinstance(out, sciSR.SciImage) and out.array.shape == (80, 80) and np.isfinite(out.array).all()
    cubic = sciSR.upscale(img, "cubic", 2).array
    assert np.corrcoef(out.array.ravel(), cubic.ravel())[0, 1] > 0.8


def test_resume_continues_steps_and_learning_rate_schedule(trained, tmp_path, config_factory):
    cfg, first = trained
    step10 = first.checkpoint.parent / "step-0000010.ckpt"
    resumed = run(config_factory(cfg, train={"out_dir": str(tmp_path)}), resume=step10)
    assert resumed.metrics["iterations"] == 30 and "start" not in resumed.metrics
    done = torch.load(first.checkpoint, weights_only=True)
    again = torch.load(resumed.checkpoint, weights_only=True)
    assert again["global_step"] == done["global_step"] == 30
    assert again["lr_schedulers"][0]["last_epoch"] == 30
    assert again["lr_schedulers"][0]["_last_lr"] == pytest.approx(done["lr_schedulers"][0]["_last_lr"])
    assert sorted(p.name for p in resumed.checkpoint.parent.glob("step-*")) == ["step-0000020.ckpt",
                                                                                 "step-0000030.ckpt"]


def test_a_failed_checkpoint_write_leaves_the_previous_one_loadable(tiny, monkeypatch):
    cfg = tiny(train={"max_steps": 20, "val_every": 20, "checkpoint_every": 10})
    real_save, calls = torch.save, []

    def dies_halfway(obj, f, *args, **kwargs):
        calls.append(1)
        if len(calls) < 2:
            return real_save(obj, f, *args, **kwargs)
        buffer = io.BytesIO()
        real_save(obj, buffer)
        f.write(buffer.getvalue()[: buffer.tell() // 2])  # half a checkpoint hits the disk, then the crash
        raise OSError("simulated crash while writing the checkpoint")

    monkeypatch.setattr(checkpoint_module.torch, "save", dies_halfway)
    with pytest.raises(OSError, match="simulated crash"):
        run(cfg)
    monkeypatch.setattr(checkpoint_module.torch, "save", real_save)
    folder = Path(cfg["train"]["out_dir"]) / "tiny" / "checkpoints"
    assert sorted(p.name for p in folder.iterdir()) == ["last.ckpt", "step-0000010.ckpt"]  # no partial file
    assert check_checkpoint(folder / "last.ckpt", sciSR.training.load_config(cfg))["iteration"] == 10
    assert run(cfg, resume=folder / "last.ckpt").metrics["iterations"] == 20


class Payload:
    """Stands for any object a hostile pickle could carry."""


def test_resume_accepts_only_compatible_checkpoints_this_tool_wrote(trained, tmp_path, config_factory):
    cfg, result = trained
    config = sciSR.training.load_config(cfg)
    torch.save({"state_dict": {}, "payload": Payload()}, tmp_path / "foreign.ckpt")
    with pytest.raises(SciSRError, match="refusing to unpickle"):
        check_checkpoint(tmp_path / "foreign.ckpt", config)
    torch.save({"state_dict": {"w": torch.zeros(1)}}, tmp_path / "plain.ckpt")
    with pytest.raises(SciSRError, match="no sciSR marker"):
        check_checkpoint(tmp_path / "plain.ckpt", config)
    other = sciSR.training.load_config(config_factory(cfg, model={"options": {"features": 8}}))
    with pytest.raises(SciSRError, match=r"checkpoint was trained with model\.options="):
        check_checkpoint(result.checkpoint, other)
    with pytest.raises(SciSRError, match="no such checkpoint"):
        run(cfg, resume=tmp_path / "missing.ckpt")


def test_an_earlier_run_is_not_overwritten_silently(trained):
    cfg, _ = trained
    with pytest.raises(SciSRError, match="checkpoints of an earlier run"):
        run(cfg)


class Features(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(x))


def test_gan_training_with_perceptual_and_style_losses(tiny, tmp_path):
    torch.jit.script(Features()).save(str(tmp_path / "features.pt"))
    cfg = tiny(
        data={"patch_size": [16, 16], "margin": 0},
        model={"arch": "rrdbnet", "options": {"n_blocks": 1, "features": 8, "growth": 4}},
        loss={"l1": 1.0, "perceptual": 0.1, "style": 0.1, "feature_net": str(tmp_path / "features.pt")},
        gan={"enabled": True, "discriminator": "esrgan-d", "options": {"features": 4, "fc_features": 8},
             "mode": "relativistic", "start_step": 2},
        train={"max_steps": 4, "val_every": 4, "checkpoint_every": 4, "log_every": 1},
    )
    result = run(cfg)
    assert result.metrics["iterations"] == 4
    assert torch.load(result.checkpoint, weights_only=True)["global_step"] == 8  # generator + discriminator steps
    header = (result.log_dir / "metrics.csv").read_text().splitlines()[0]
    for column in ("train/adversarial", "train/discriminator", "train/perceptual", "train/style"):
        assert column in header
    assert sciSR.load_model(result.model_path).card["arch"] == "rrdbnet"


def test_cosine_schedule_decays_over_whichever_budget_ends_first():
    from sciSR.training.module import LRSchedule

    schedule = LRSchedule("cosine", max_steps=1000, warmup_steps=0, min_lr_ratio=0.01)
    assert schedule(10) == pytest.approx(0.01 + 0.99 * 0.5 * (1 + np.cos(np.pi * 0.01)))
    schedule.time_fraction = 0.5
    assert schedule(10) == pytest.approx(0.505)
    assert schedule(900) < 0.505  # the step budget still counts when it is ahead of the clock
    schedule.time_fraction = 1.0
    assert schedule(10) == pytest.approx(0.01)


def test_a_run_the_clock_stops_ends_on_a_small_learning_rate(tiny):
    cfg = tiny(train={"max_steps": 10**6, "max_time_s": 4, "val_every": 10**6, "checkpoint_every": 10**6,
                      "log_every": 1})
    result = run(cfg)
    rows = list(csv.DictReader((result.log_dir / "metrics.csv").read_text().splitlines()))
    rates = [float(r["train/lr"]) for r in rows if r.get("train/lr")]
    assert 5 < result.metrics["iterations"] < 10**6  # a loaded machine runs a dozen steps in 4 s
    assert rates[-1] < 0.1 * cfg["optim"]["lr"] < rates[0]
    assert all(later <= earlier + 1e-12 for earlier, later in itertools.pairwise(rates))
