"""Progress and stop hooks of :func:`sciSR.training.run`, as one Lightning callback.

Callers (the napari Train widget, notebooks, job runners) follow a run and end it through plain Python
objects — a function that takes a dict and a :class:`threading.Event` — without touching Lightning.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

import lightning as L
import torch

MetricsHook = Callable[[dict[str, float]], None]


def _floats(metrics: Mapping[str, Any], prefix: str) -> dict[str, float]:
    """The logged values under ``prefix`` as Python floats (Lightning keeps them as tensors)."""
    return {key: float(value.item() if isinstance(value, torch.Tensor) else value)
            for key, value in metrics.items() if key.startswith(prefix)}


class ProgressHooks(L.Callback):
    """Report logged metrics to ``on_metrics`` and end training once ``stop`` is set.

    Parameters
    ----------
    on_metrics : callable, optional
        Called on global rank 0 with a dict of floats, in the thread that runs training:

        - every ``train.log_every`` iterations and at the iteration a stop ends the run: ``step``
          (iterations trained) and the training terms,
          ``train/loss`` (weighted total), ``train/lr`` and each enabled loss term (``train/l1``,
          ``train/ssim``, ``train/adversarial``, ...; normalised units);
        - after each validation (also before training starts and after it ends): ``step`` and
          ``val/l1`` (normalised units), ``val/psnr`` (dB) and, for patches of at least 11 voxels per
          axis, ``val/ssim``.
    stop : threading.Event, optional
        Once set, training ends after the current iteration; :func:`sciSR.training.run` then validates
        and writes the model file from the weights reached so far. Under DDP any rank's event stops all.
    log_every : int
        Iterations between two training reports (the recipe's ``train.log_every``).
    """

    def __init__(self, on_metrics: MetricsHook | None = None, stop: threading.Event | None = None,
                 log_every: int = 1) -> None:
        self.on_metrics = on_metrics
        self.stop = stop
        self.log_every = int(log_every)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        on_cadence = pl_module.iteration % self.log_every == 0
        if on_cadence:
            self._report_training(trainer, pl_module)
        if self.stop is not None:
            # Checked after the report, so a stop set from ``on_metrics`` ends the run at this iteration.
            # Every rank must stop at the same iteration, or the others wait forever in the next all-reduce;
            # ``or`` keeps a stop another callback asked for (the ``train.max_time_s`` timer).
            stop = trainer.strategy.reduce_boolean_decision(self.stop.is_set(), all=False)
            trainer.should_stop = trainer.should_stop or stop
            if stop and not on_cadence:
                self._report_training(trainer, pl_module)

    def _report_training(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.on_metrics is not None and trainer.is_global_zero:
            self.on_metrics({"step": float(pl_module.iteration), **_floats(trainer.callback_metrics, "train/")})

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        metrics = _floats(trainer.callback_metrics, "val/")
        if self.on_metrics is not None and trainer.is_global_zero and metrics:
            self.on_metrics({"step": float(pl_module.iteration), **metrics})
