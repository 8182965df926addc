"""The LightningModule: generator (+ optional discriminator), losses, EMA, schedules, validation metrics.

Optimisation is manual so that plain and GAN training share one loop: each iteration (one batch) steps
the generator, then the discriminator when there is one. Lightning counts optimizer steps in
``global_step``, so an iteration is ``global_step // steps_per_iteration``; GAN runs step the
discriminator from the first iteration (a warm-up) and add the adversarial term to the generator loss
from ``gan.start_step`` on, which keeps that ratio fixed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Timer
from torch import nn
from torch.optim.lr_scheduler import LambdaLR
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from sciSR.degrade import replicate
from sciSR.losses import GANLoss
from sciSR.metrics import psnr, ssim
from sciSR.models.spec import spec_of
from sciSR.training.checkpoint import CHECKPOINT_FORMAT, CHECKPOINT_KEY
from sciSR.training.objective import SSIM_WINDOW, TrainingLoss


class LRSchedule:
    """Learning-rate factor per iteration: ``cosine`` (with linear warm-up), ``step`` or ``constant``.

    The cosine decays over whichever budget runs out first, ``max_steps`` or the clock
    (``train.max_time_s``, fed in as :attr:`time_fraction` every iteration): a run the clock stops must
    still end on a small learning rate, not in the middle of its schedule with noisy weights. Plain
    attributes only, so its state is plain data in a checkpoint (loadable with ``weights_only``).

    Attributes
    ----------
    time_fraction : float
        Fraction of the wall-clock budget spent so far (0 when there is none).
    """

    def __init__(self, name: str, max_steps: int, warmup_steps: int = 0, min_lr_ratio: float = 0.01,
                 step_size: int = 1000, gamma: float = 0.5) -> None:
        self.name, self.max_steps, self.warmup_steps = name, int(max_steps), int(warmup_steps)
        self.min_lr_ratio, self.step_size, self.gamma = float(min_lr_ratio), int(step_size), float(gamma)
        self.time_fraction = 0.0

    def __call__(self, iteration: int) -> float:
        if iteration < self.warmup_steps:
            return (iteration + 1) / self.warmup_steps
        if self.name == "cosine":
            by_steps = (iteration - self.warmup_steps) / max(1, self.max_steps - self.warmup_steps)
            progress = min(1.0, max(by_steps, self.time_fraction))
            return self.min_lr_ratio + (1 - self.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
        if self.name == "step":
            return self.gamma ** (iteration // self.step_size)
        return 1.0


def _plane(x: np.ndarray) -> np.ndarray:
    """A 2D view for logging: the middle plane across the first spatial axis of a volume."""
    return x[x.shape[0] // 2] if x.ndim == 3 else x


class SRModule(L.LightningModule):
    """Super-resolution training for a zoo generator.

    Parameters
    ----------
    cfg : dict
        Configuration from :func:`sciSR.training.load_config`.
    generator : nn.Module
        From :func:`sciSR.models.create_model` (has ``card``, ``scale``, ``spatial_dims``).
    discriminator : nn.Module, optional
        ``srgan-d`` / ``esrgan-d`` from the zoo, for GAN training.

    Attributes
    ----------
    ema : torch.optim.swa_utils.AveragedModel or None
        Exponential moving average of the generator's weights (and buffers); validated and saved in
        place of the raw weights when enabled.
    history : list of dict
        Validation metrics per validation run: ``iteration``, ``val_l1``, ``val_psnr``, ``val_ssim``.
    """

    def __init__(self, cfg: Mapping[str, Any], generator: nn.Module, discriminator: nn.Module | None = None) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.cfg = dict(cfg)
        self.generator = generator
        self.loss = TrainingLoss(cfg["loss"], generator.spatial_dims)
        decay = cfg["train"]["ema"]
        self.ema: AveragedModel | None = None
        if decay:
            self.ema = AveragedModel(generator, multi_avg_fn=get_ema_multi_avg_fn(float(decay)), use_buffers=True)
            # Frozen: DDP must not wait for gradients that never come.
            self.ema.requires_grad_(False)
        self.discriminator = discriminator
        self.gan_loss = GANLoss(cfg["gan"]["mode"]) if discriminator is not None else None
        self.steps_per_iteration = 2 if discriminator is not None else 1
        self.history: list[dict[str, float]] = []
        self._val_sums: torch.Tensor | None = None

    @property
    def iteration(self) -> int:
        """Batches trained so far (restored on resume)."""
        return self.global_step // self.steps_per_iteration

    @property
    def inference_model(self) -> nn.Module:
        """The network to validate and save: the EMA copy when enabled."""
        return self.ema.module if self.ema is not None else self.generator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inference_model(x)

    # --- memory layout -----------------------------------------------------------------------------
    @property
    def memory_format(self) -> torch.memory_format:
        """Channels-last (``channels_last_3d`` for volumes): oneDNN and cuDNN run their fastest convolutions
        on it, in bf16 autocast most of all; values, state dict and model file are unchanged."""
        return torch.channels_last if self.generator.spatial_dims == 2 else torch.channels_last_3d

    def setup(self, stage: str) -> None:
        # Before fit and validate; Lightning's later move to the device keeps the layout.
        for net in (self.generator, self.discriminator, self.ema):
            if net is not None:
                net.to(memory_format=self.memory_format)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Images of the batch (``(B, C, *S)`` tensors) in the networks' layout; anything else unchanged."""
        if not isinstance(batch, Mapping):
            return batch
        ndim = self.generator.spatial_dims + 2
        return {k: v.contiguous(memory_format=self.memory_format)
                if isinstance(v, torch.Tensor) and v.ndim == ndim else v for k, v in batch.items()}

    @staticmethod
    def _run(net: nn.Module, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """``net(lr)``, or ``net(lr, ref)`` for reference-guided samples (``batch["ref"]`` on the HR grid)."""
        return net(batch["lr"], batch["ref"]) if "ref" in batch else net(batch["lr"])

    # --- optimisation ------------------------------------------------------------------------------

    def configure_optimizers(self) -> tuple[list[torch.optim.Optimizer], list[LambdaLR]]:
        optim, sched, gan = self.cfg["optim"], self.cfg["schedule"], self.cfg["gan"]
        cls = torch.optim.AdamW if optim["name"] == "adamw" else torch.optim.Adam
        schedule = LRSchedule(sched["name"], self.cfg["train"]["max_steps"], sched["warmup_steps"],
                              sched["min_lr_ratio"], sched["step_size"], sched["gamma"])
        groups = [(self.generator, optim["lr"])]
        if self.discriminator is not None:
            groups.append((self.discriminator, gan["lr"]))
        optimizers = [cls(net.parameters(), lr=lr, betas=tuple(optim["betas"]), weight_decay=optim["weight_decay"])
                      for net, lr in groups]
        return optimizers, [LambdaLR(opt, schedule) for opt in optimizers]

    def _time_fraction(self) -> float:
        """Share of ``train.max_time_s`` spent (Lightning's timer, which also counts resumed runs); 0 without."""
        budget = self.cfg["train"]["max_time_s"]
        timer = next((c for c in self.trainer.callbacks if isinstance(c, Timer)), None) if budget else None
        return 0.0 if timer is None else min(1.0, timer.time_elapsed("train") / float(budget))

    def _step(self, optimizer: Any, loss: torch.Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        clip = self.cfg["train"]["grad_clip"]
        if clip:
            self.clip_gradients(optimizer, gradient_clip_val=clip, gradient_clip_algorithm="norm")
        optimizer.step()

    def training_step(self, batch: Mapping[str, torch.Tensor], batch_idx: int) -> None:
        lr, hr = batch["lr"], batch["hr"]
        optimizers = self.optimizers()
        optimizers = optimizers if isinstance(optimizers, list) else [optimizers]
        schedulers = self.lr_schedulers()
        schedulers = schedulers if isinstance(schedulers, list) else [schedulers]
        adversarial = self.discriminator is not None and self.iteration >= self.cfg["gan"]["start_step"]

        self.toggle_optimizer(optimizers[0])
        sr = self._run(self.generator, batch)
        total, terms = self.loss(sr, hr)
        logs = {f"train/{name}": value.detach() for name, value in terms.items()}
        if adversarial:
            real = self.discriminator(hr) if self.gan_loss.mode == "relativistic" else None
            adv = self.gan_loss.generator_loss(real, self.discriminator(sr))
            total = total + self.cfg["gan"]["weight"] * adv
            logs["train/adversarial"] = adv.detach()
        self._step(optimizers[0], total)
        self.untoggle_optimizer(optimizers[0])

        if self.discriminator is not None:
            self.toggle_optimizer(optimizers[1])
            d_loss = self.gan_loss.discriminator_loss(self.discriminator(hr), self.discriminator(sr.detach()))
            self._step(optimizers[1], d_loss)
            self.untoggle_optimizer(optimizers[1])
            logs["train/discriminator"] = d_loss.detach()
        time_fraction = self._time_fraction()
        for scheduler in schedulers:
            for schedule in scheduler.lr_lambdas:
                schedule.time_fraction = time_fraction
            scheduler.step()
        if self.ema is not None:
            self.ema.update_parameters(self.generator)
        logs["train/loss"] = total.detach()
        logs["train/lr"] = torch.tensor(schedulers[0].get_last_lr()[0])
        self.log_dict(logs, on_step=True, on_epoch=False, prog_bar=False, batch_size=lr.shape[0])

    # --- validation --------------------------------------------------------------------------------

    def on_validation_epoch_start(self) -> None:
        self._val_sums = torch.zeros(5, dtype=torch.float64)  # l1·n, psnr sum, ssim sum, n, n with ssim

    def validation_step(self, batch: Mapping[str, torch.Tensor], batch_idx: int) -> None:
        sr = self._run(self.inference_model, batch).float()
        hr = batch["hr"].float()
        sr_np, hr_np = sr.cpu().numpy(), hr.cpu().numpy()
        sums = torch.zeros(5, dtype=torch.float64)
        sums[0] = (sr - hr).abs().mean().item() * hr.shape[0]
        sums[3] = hr.shape[0]
        with_ssim = min(hr.shape[2:]) >= SSIM_WINDOW
        for s, h in zip(sr_np, hr_np, strict=True):
            sums[1] += np.mean([psnr(sc, hc) for sc, hc in zip(s, h, strict=True)])
            if with_ssim:
                sums[2] += np.mean([ssim(sc, hc) for sc, hc in zip(s, h, strict=True)])
                sums[4] += 1
        self._val_sums += sums
        if batch_idx == 0:
            self._log_images(batch["lr"].float().cpu().numpy(), sr_np, hr_np)

    def on_validation_epoch_end(self) -> None:
        sums = self.trainer.strategy.reduce(self._val_sums.to(self.device), reduce_op="sum").double().cpu()
        if sums[3] == 0:
            return
        metrics = {"val_l1": float(sums[0] / sums[3]), "val_psnr": float(sums[1] / sums[3])}
        if sums[4] > 0:
            metrics["val_ssim"] = float(sums[2] / sums[4])
        # Reduced over ranks above; sync_dist then averages identical numbers (and keeps Lightning quiet).
        self.log_dict({k.replace("val_", "val/"): v for k, v in metrics.items()}, on_step=False, on_epoch=True,
                      sync_dist=True)
        self.history.append({"iteration": self.iteration, **metrics})

    def _log_images(self, lr: np.ndarray, sr: np.ndarray, hr: np.ndarray) -> None:
        count = self.cfg["train"]["log_images"]
        board = next((lg for lg in self.loggers if isinstance(lg, L.pytorch.loggers.TensorBoardLogger)), None)
        if not count or board is None or not self.trainer.is_global_zero:
            return
        # Multi-stack inputs already lie on the output grid (the first stack is shown).
        on_output_grid = spec_of(self.generator).input_on_output_grid
        scale = (1,) * (hr.ndim - 2) if on_output_grid else self.generator.scale
        for i in range(min(count, len(hr))):
            up = replicate(np.moveaxis(lr[i], 0, -1), scale)[..., 0]  # nearest LR on the HR grid
            panels = [_plane(up), _plane(sr[i, 0]), _plane(hr[i, 0])]
            low, high = float(panels[2].min()), float(panels[2].max())
            image = np.clip((np.concatenate(panels, axis=1) - low) / max(high - low, 1e-12), 0, 1)
            board.experiment.add_image(f"val/lr_sr_hr_{i}", image[None].astype(np.float32), self.iteration,
                                       dataformats="CHW")

    # --- checkpoints -------------------------------------------------------------------------------

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        config = {k: v for k, v in self.cfg.items() if k != "_source"}
        checkpoint[CHECKPOINT_KEY] = {"format": CHECKPOINT_FORMAT, "config": config, "iteration": self.iteration,
                                      "history": list(self.history)}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.history = list(checkpoint.get(CHECKPOINT_KEY, {}).get("history", []))
