"""A training run killed with SIGKILL resumes from its last checkpoint (issue 15 item 4).

The run is killed outright (no handler runs, a checkpoint write may be cut short), so what it leaves on disk
is exactly what the atomic checkpoint writes guarantee: ``last.ckpt`` loadable, at most one checkpoint
interval behind the progress the run had reported. A truncated checkpoint given to ``--resume`` is one line
naming that file.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import lightning as L
import pytest
import yaml

from sciSR.cli import main
from sciSR.errors import SciSRError
from sciSR.training import load_config, run
from sciSR.training.checkpoint import check_checkpoint

ROOT = Path(__file__).resolve().parents[2]
EVERY = 5

# Trains far longer than the test waits, reporting each iteration it completes to a file.
CHILD = """
import json, sys
from pathlib import Path
from sciSR.training import run

progress = Path(sys.argv[2])
run(json.loads(sys.argv[1]), on_metrics=lambda m: progress.write_text(str(int(m["step"]))))
"""


class FirstIteration(L.Callback):
    """Records the iteration count the first trained batch starts from."""

    def __init__(self) -> None:
        self.at: int | None = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self.at is None:
            self.at = pl_module.iteration


def kill_after(cfg: dict, progress: Path, iterations: int) -> int:
    """Run ``cfg`` in a child process and SIGKILL it once it reports ``iterations``; the last reported count."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    child = subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(cfg), str(progress)], cwd=ROOT, env=env,
                             stderr=subprocess.PIPE, text=True)
    try:
        reached = 0
        deadline = time.monotonic() + 300  # a guard against a child that never gets there, not a timing check
        while reached < iterations and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
            text = progress.read_text() if progress.exists() else ""
            reached = int(text) if text.strip() else reached
        assert child.poll() is None, child.communicate()[1][-2000:]
        assert reached >= iterations, "the child never reached the iteration to kill it at"
        child.send_signal(signal.SIGKILL)
        child.communicate()
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert child.returncode == -signal.SIGKILL
    return reached


@pytest.fixture(scope="module")
def killed(tmp_path_factory, config_factory):
    """A run SIGKILLed after its second checkpoint: (config, checkpoint folder, last reported iteration)."""
    out_dir = tmp_path_factory.mktemp("runs")
    cfg = config_factory(train={"out_dir": str(out_dir), "max_steps": 100_000, "val_every": 100_000,
                                "checkpoint_every": EVERY, "keep_checkpoints": 3, "log_every": 1})
    reached = kill_after(cfg, out_dir / "progress.txt", 2 * EVERY + 2)
    return cfg, out_dir / cfg["name"] / "checkpoints", reached


def test_a_sigkilled_run_leaves_a_loadable_checkpoint_at_most_one_interval_behind(killed):
    cfg, folder, reached = killed
    marker = check_checkpoint(folder / "last.ckpt", load_config(cfg))  # loads: no truncated file in place
    steps = sorted(int(p.stem.split("-")[1]) for p in folder.glob("step-*.ckpt"))
    assert steps and all(s % EVERY == 0 for s in steps)
    # last.ckpt points at the newest step file, or the one before it when the kill fell between the two writes.
    assert marker["iteration"] in steps[-2:]
    assert marker["iteration"] >= 2 * EVERY and reached - marker["iteration"] <= EVERY


def test_resume_continues_from_the_checkpoint_step_and_finishes(killed, config_factory):
    cfg, folder, _ = killed
    start = check_checkpoint(folder / "last.ckpt", load_config(cfg))["iteration"]
    first = FirstIteration()
    more = config_factory(cfg, train={"max_steps": start + EVERY})
    result = run(more, resume=folder / "last.ckpt", callbacks=[first])
    assert first.at == start > 0  # not from 0
    assert result.metrics["iterations"] == start + EVERY and result.model_path.is_file()
    assert check_checkpoint(result.checkpoint, load_config(more))["iteration"] == start + EVERY


@pytest.mark.parametrize("keep", [0, 100, 0.5, -30])
def test_a_truncated_checkpoint_is_refused_with_one_line_naming_it(killed, tmp_path, keep):
    cfg, folder, _ = killed
    data = sorted(folder.glob("step-*.ckpt"))[0].read_bytes()
    cut = tmp_path / "cut.ckpt"
    cut.write_bytes(data[: int(len(data) * keep) if isinstance(keep, float) else keep])
    with pytest.raises(SciSRError) as info:
        check_checkpoint(cut, load_config(cfg))
    assert str(info.value).startswith(f"{cut}: checkpoint is truncated or corrupt (")
    assert "\n" not in str(info.value)


def test_scisr_train_resume_from_a_truncated_checkpoint_prints_one_error_line(killed, tmp_path, capsys):
    cfg, folder, _ = killed
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(yaml.safe_dump(cfg))
    data = (folder / "last.ckpt").read_bytes()
    cut = tmp_path / "last.ckpt"
    cut.write_bytes(data[: len(data) - 30])
    assert main(["train", str(recipe), "--resume", str(cut)]) == 1
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {cut}: checkpoint is truncated or corrupt"), captured.err
