"""Training checkpoints: written atomically, marked as ours, checked before a resume unpickles them.

Lightning's own ``_atomic_save`` stages the bytes in the system temp folder and ``shutil.move``s them;
across file systems that falls back to a copy onto the target, so a crash mid-copy truncates the file.
Here the temp file sits beside the target (same file system), is fsynced, then renamed over it.

Lightning checkpoints are pickles (optimizer and loop state). A resume first loads the file with
``torch.load(weights_only=True)``, which only rebuilds tensors and plain containers and runs no code, and
requires the :data:`CHECKPOINT_KEY` marker that :class:`sciSR.training.module.SRModule` writes; Lightning
then restores it, again with ``weights_only=True``.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from sciSR.errors import SciSRError
from sciSR.io.atomic import atomic_output

CHECKPOINT_KEY = "scisr"
CHECKPOINT_FORMAT = "sciSR-checkpoint/1"
# Model settings a resumed run must share with the checkpoint (else the weights do not fit).
MODEL_KEYS = ("model.arch", "model.options", "model.in_channels", "scale", "data.patch_size", "gan.enabled",
              "gan.discriminator", "gan.options", "train.ema")


class AtomicCheckpointIO(TorchCheckpointIO):
    """``torch.save`` to a temp file beside the target, fsync, then rename: the old file survives any failure."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO takes no storage_options")
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(target, overwrite=True) as tmp, open(tmp, "wb") as f:
            torch.save(checkpoint, f)
            f.flush()
            os.fsync(f.fileno())


def _dig(cfg: dict[str, Any], dotted: str) -> Any:
    node: Any = cfg
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def check_checkpoint(path: str | os.PathLike, cfg: dict[str, Any]) -> dict[str, Any]:
    """Refuse anything but a checkpoint sciSR training wrote for a compatible configuration.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.ckpt`` named by the user.
    cfg : dict
        The configuration of the run that resumes.

    Returns
    -------
    dict
        The checkpoint's marker: ``format``, ``config``, ``iteration``.

    Raises
    ------
    SciSRError
        Missing file, a truncated or corrupt file, a pickle holding more than tensors and plain data, no
        marker, or a model that differs from the config's (one line naming the checkpoint).
    """
    if not Path(path).is_file():
        raise SciSRError("no such checkpoint", path)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise SciSRError(f"not a loadable sciSR training checkpoint; refusing to unpickle it ({_first_line(err)})",
                         path) from None
    except (RuntimeError, EOFError, ValueError, OSError) as err:
        # A file cut short (a full disk, a copy interrupted) fails in the zip reader with any of these.
        raise SciSRError(f"checkpoint is truncated or corrupt ({_first_line(err)}); resume from an earlier "
                         "step-*.ckpt of the run", path) from None
    marker = checkpoint.get(CHECKPOINT_KEY) if isinstance(checkpoint, dict) else None
    if not isinstance(marker, dict) or marker.get("format") != CHECKPOINT_FORMAT:
        raise SciSRError("not a checkpoint written by sciSR training (no sciSR marker)", path)
    for key in MODEL_KEYS:
        then, now = _dig(marker.get("config", {}), key), _dig(cfg, key)
        if then != now:
            raise SciSRError(f"checkpoint was trained with {key}={then!r}; the config says {now!r}", path)
    return marker


class PeriodicCheckpoint(L.Callback):
    """Every ``every`` iterations write ``step-NNNNNNN.ckpt``, point ``last.ckpt`` at it, keep the newest ``keep``.

    Parameters
    ----------
    dirpath : str or os.PathLike
        Checkpoint folder.
    every : int
        Iterations (batches) between checkpoints; the last iteration is always saved.
    keep : int
        Step checkpoints kept (``last.ckpt`` always).
    """

    def __init__(self, dirpath: str | os.PathLike, every: int, keep: int) -> None:
        self.dirpath, self.every, self.keep = Path(dirpath), int(every), int(keep)
        self.saved_at = -1

    @property
    def last(self) -> Path:
        return self.dirpath / "last.ckpt"

    def save(self, trainer: L.Trainer, iteration: int) -> None:
        step_file = self.dirpath / f"step-{iteration:07d}.ckpt"
        trainer.save_checkpoint(step_file, weights_only=False)  # collective: every rank calls, rank 0 writes
        if trainer.is_global_zero:
            self._point_last_at(step_file)
            for old in sorted(self.dirpath.glob("step-*.ckpt"))[: -self.keep]:
                old.unlink()
        trainer.strategy.barrier("scisr-checkpoint")
        self.saved_at = iteration

    def _point_last_at(self, step_file: Path) -> None:
        # A hard link renamed over last.ckpt is atomic and costs no second write; copy where links fail.
        with atomic_output(self.last, overwrite=True) as tmp:
            try:
                os.link(step_file, tmp)
            except OSError:
                tmp.write_bytes(step_file.read_bytes())

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        iteration = pl_module.iteration
        if iteration % self.every == 0 and iteration != self.saved_at:
            self.save(trainer, iteration)

    def on_train_end(self, trainer: L.Trainer, pl_module: Any) -> None:
        if pl_module.iteration != self.saved_at:
            self.save(trainer, pl_module.iteration)
