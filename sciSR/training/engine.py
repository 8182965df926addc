"""``run``: configuration → data → model → Lightning Trainer → model file, on one CPU or many GPUs/nodes."""

from __future__ import annotations

import dataclasses
import datetime
import os
import shutil
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.strategies import DDPStrategy
from torch import nn

from sciSR.data.dataset import PairSpec, find_items, fixed_dataset, make_loader, split_items, train_dataset
from sciSR.data.multi_input_samples import ReferenceSpec, StackSpec
from sciSR.errors import SciSRError
from sciSR.hub import load_model, save_model
from sciSR.models import create_model
from sciSR.training.checkpoint import AtomicCheckpointIO, PeriodicCheckpoint, check_checkpoint
from sciSR.training.config import load_config
from sciSR.training.hooks import MetricsHook, ProgressHooks
from sciSR.training.module import SRModule


@dataclasses.dataclass
class TrainResult:
    """What a training run produced.

    Attributes
    ----------
    model_path : pathlib.Path
        The ``.safetensors`` model file (card beside it); written by global rank 0.
    metrics : dict
        Final validation ``val_l1``, ``val_psnr`` (dB), ``val_ssim`` (normalised units), ``iterations``, and
        ``start`` (the same before training; absent on resume).
    log_dir : pathlib.Path
        CSV (``metrics.csv``) and TensorBoard logs of this run.
    checkpoint : pathlib.Path
        ``last.ckpt`` to resume from.
    model : torch.nn.Module
        The trained generator (EMA weights when enabled), on the CPU, in eval mode.
    """

    model_path: Path
    metrics: dict[str, Any]
    log_dir: Path
    checkpoint: Path
    model: nn.Module


def pair_spec(cfg: Mapping[str, Any], patch_size: Sequence[int] | None = None) -> PairSpec | StackSpec:
    """The :class:`~sciSR.data.dataset.PairSpec` a configuration describes (unknown options raise).

    ``data.fusion.stacks`` gives a :class:`~sciSR.data.multi_input_samples.StackSpec`, ``data.reference.enabled`` a
    :class:`~sciSR.data.multi_input_samples.ReferenceSpec`.
    """
    data, degradation, norm = cfg["data"], dict(cfg["degradation"]), dict(cfg["normalisation"])
    name = degradation.pop("type")
    method = norm.pop("method")
    common = dict(patch_size=patch_size or data["patch_size"], degradation=name, degradation_options=degradation,
                  normalisation=method, normalisation_options=norm, margin=data["margin"],
                  foreground_prob=data["foreground_prob"], foreground_threshold=data["foreground_threshold"],
                  flip=data["flip"], rot90=data["rot90"])
    fusion, reference = data["fusion"], data["reference"]
    try:
        if fusion["stacks"]:  # multi-stack fusion: (stacks on the HR grid, HR) samples
            return StackSpec(stacks=fusion["stacks"], offsets=fusion["offsets"], order=fusion["order"], **common)
        if reference["enabled"]:  # reference-guided: (LR, reference, HR) samples
            return ReferenceSpec(scale=cfg["scale"], slice_axis=data["slice_axis"],
                                 **{f"ref_{k}": v for k, v in reference.items() if k != "enabled"}, **common)
        return PairSpec(scale=cfg["scale"], slice_axis=data["slice_axis"], **common)
    except SciSRError as err:
        raise SciSRError(err.message, cfg.get("_source")) from None


class PairDataModule(L.LightningDataModule):
    """Train/validation pairs for a configuration; datasets are built on each process in ``setup``."""

    def __init__(self, cfg: Mapping[str, Any]) -> None:
        super().__init__()
        self.cfg = cfg
        data = cfg["data"]
        self.spec = pair_spec(cfg)
        self.val_spec = pair_spec(cfg, data["val_patch_size"]) if data["val_patch_size"] else self.spec
        try:
            items = find_items(files=data["files"], folder=data["folder"], pattern=data["pattern"],
                               generate=data["generate"], count=data["count"], seed=cfg["seed"],
                               options=data["options"], subject_pattern=data["subject_pattern"],
                               collection=data["collection"], exclude=data["exclude"])
            self.train_items, self.val_items = split_items(items, data["val_fraction"], cfg["seed"],
                                                           data["val_subjects"])
        except SciSRError as err:
            raise SciSRError(err.message, err.path or cfg.get("_source")) from None
        self.train_set: torch.utils.data.Dataset | None = None
        self.val_set: torch.utils.data.Dataset | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        data, seed = self.cfg["data"], self.cfg["seed"]
        cache_dir = data["cache_dir"] or Path(self.cfg["train"]["out_dir"]) / self.cfg["name"] / "cache"
        self.train_set = train_dataset(self.train_items, self.spec, cache=data["cache"], cache_dir=cache_dir,
                                       samples_per_epoch=data["samples_per_epoch"], seed=seed)
        self.val_set = fixed_dataset(self.val_items, self.val_spec, per_item=data["val_patches"], seed=seed) \
            if self.val_items else None
        channels = int(self.train_set[0]["hr"].shape[0])  # fusion samples hold N·C stack channels in "lr"
        if channels != self.cfg["model"]["in_channels"]:
            raise SciSRError(f"images have {channels} channel(s) but model.in_channels is "
                             f"{self.cfg['model']['in_channels']}", self.cfg.get("_source"))

    def train_dataloader(self) -> torch.utils.data.DataLoader:
        rank = self.trainer.global_rank if self.trainer is not None else 0
        data = self.cfg["data"]
        # Each rank draws its own patches and noise; shuffling order is redrawn per epoch from this seed.
        return make_loader(self.train_set, batch_size=data["batch_size"], shuffle=True,
                           num_workers=data["num_workers"], seed=self.cfg["seed"] + 100_003 * (rank + 1),
                           drop_last=True)

    def val_dataloader(self) -> Any:
        if self.val_set is None:
            return []
        return make_loader(self.val_set, batch_size=self.cfg["data"]["batch_size"], shuffle=False)


LIGHTNING_PRECISION = {"fp32": "32-true", "bf16": "bf16-mixed", "fp16": "16-mixed"}
"""Lightning's name of each sciSR precision (mixed: autocast around the step, fp32 weights and optimiser)."""


def resolve_precision(precision: Any, accelerator: str = "auto") -> Any:
    """The Lightning ``precision`` of ``train.precision``.

    Parameters
    ----------
    precision : str or int
        ``"auto"``, ``"fp32"``, ``"bf16"``, ``"fp16"``, or any Lightning value (``"bf16-mixed"``, ``32``, ...),
        passed through.
    accelerator : str
        ``train.accelerator``; ``"auto"`` means CUDA when available, else the CPU.

    Returns
    -------
    str or int
        ``"auto"``: ``"bf16-mixed"`` on GPUs that support it and on CPUs with native bf16 (AVX512-BF16/AMX,
        :func:`sciSR.infer.precision.cpu_has_native_bf16`), ``"16-mixed"`` on other GPUs, ``"32-true"`` on
        other CPUs.

    Raises
    ------
    SciSRError
        ``"fp16"`` on the CPU.
    """
    from sciSR.infer.precision import cpu_has_native_bf16

    gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
    if precision == "auto":
        if gpu:
            return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
        return "bf16-mixed" if accelerator in ("auto", "cpu") and cpu_has_native_bf16() else "32-true"
    if precision == "fp16" and not gpu and accelerator in ("auto", "cpu"):
        raise SciSRError("train.precision 'fp16' is not available on the CPU; use 'bf16' or 'fp32'")
    return LIGHTNING_PRECISION.get(precision, precision)


def build_generator(cfg: Mapping[str, Any], spec: PairSpec) -> nn.Module:
    """The zoo generator of ``model``, or the model file ``model.init`` (must match arch and scale).

    With ``model.flux_projection`` (``conserve``/``mean``) every forward pass ends with the exact flux
    projection (:func:`sciSR.models.flux_projection.attach`). The network works in LR-pixel units (HR × ∏s
    for block-summing degradations, see :class:`~sciSR.data.pair_transforms.NormalizePaird`), where both modes
    are the block-mean projection; ``conserve`` must pair with a summing degradation, ``mean`` with an
    averaging one.
    """
    model = cfg["model"]
    dims = len(spec.patch_size)
    try:
        if model["init"]:
            net = load_model(model["init"]).train()
            card = net.card
            if card["arch"] != model["arch"] or tuple(card["scale"]) != spec.model_scale:
                raise SciSRError(f"model.init holds {card['arch']} ×{tuple(card['scale'])}; the config asks for "
                                 f"{model['arch']} ×{spec.model_scale}", model["init"])
        else:
            net = create_model(model["arch"], scale=spec.model_scale, spatial_dims=dims,
                               in_channels=model["in_channels"], **model["options"])
        flux = model["flux_projection"]
        if flux is not None:
            from sciSR.models.flux_projection import attach

            reduce = spec.degradation_transform(spec.model_scale).flux_reduce
            if {"conserve": "sum", "mean": "mean"}[flux] != reduce:
                raise SciSRError(f"model.flux_projection '{flux}' does not fit degradation "
                                 f"'{cfg['degradation']['type']}', whose LR pixels are block {reduce}s")
            attach(net, "mean", "asinh" if spec.normalisation == "asinh" else "linear")
        return net
    except SciSRError as err:
        raise SciSRError(err.message, err.path or cfg.get("_source")) from None


def _strategy(cfg: Mapping[str, Any]) -> Any:
    strategy = cfg["train"]["strategy"]
    if strategy == "ddp" and cfg["gan"]["enabled"]:
        # The generator gets no gradient in the discriminator step (and vice versa).
        return DDPStrategy(find_unused_parameters=True)
    return strategy


def _next_version(logs: Path) -> int:
    versions = [int(p.name.split("_")[1]) for p in logs.glob("version_*") if p.name.split("_")[1].isdigit()]
    return max(versions, default=-1) + 1


def run(config: str | os.PathLike | Mapping[str, Any], *, overrides: Sequence[str] = (),
        resume: str | os.PathLike | None = None, on_metrics: MetricsHook | None = None,
        stop: threading.Event | None = None, callbacks: Sequence[L.Callback] = ()) -> TrainResult:
    """Train a super-resolution model from a recipe and save it as a model file.

    Parameters
    ----------
    config : str or os.PathLike or Mapping
        The name of an installed recipe (:func:`sciSR.training.list_recipes`, e.g. ``"ct_x2"``), a YAML
        recipe file (see :mod:`sciSR.training.config`) or a parsed mapping.
    overrides : sequence of str
        ``key.sub=value`` (YAML values), e.g. ``["train.max_steps=200", "train.devices=4"]``.
    resume : str or os.PathLike, optional
        A ``.ckpt`` this tool wrote (usually ``<out_dir>/<name>/checkpoints/last.ckpt``); it is checked
        without running code first (see :mod:`sciSR.training.checkpoint`). The iteration count, optimiser,
        learning-rate schedule and EMA continue from it.
    on_metrics : callable, optional
        ``on_metrics(metrics)`` with a ``dict[str, float]``: every ``train.log_every`` iterations (and when a
        stop ends the run) ``step`` (iterations trained), ``train/loss``, ``train/lr`` and each loss term; after
        each validation ``step``, ``val/l1``, ``val/psnr`` (dB) and ``val/ssim``. Called on global rank 0, in
        the thread that runs training (see :class:`~sciSR.training.hooks.ProgressHooks`).
    stop : threading.Event, optional
        Set it (from any thread) to end the run after the current iteration; the run then validates and
        writes the model file from the weights reached so far, and returns as usual.
    callbacks : sequence of lightning.Callback
        Extra Lightning callbacks.

    Returns
    -------
    TrainResult

    Raises
    ------
    SciSRError
        A bad config (one line naming the file and key), missing data, a refused checkpoint, or an
        existing model file / checkpoints without ``output.overwrite``.
    """
    cfg = load_config(config, overrides)
    train, output = cfg["train"], cfg["output"]
    if resume is not None:
        check_checkpoint(resume, cfg)
    run_dir = Path(train["out_dir"]) / cfg["name"]
    ckpt_dir = run_dir / "checkpoints"
    model_path = Path(output["model_path"] or run_dir / "model.safetensors")
    if resume is None and not output["overwrite"]:
        if any(ckpt_dir.glob("*.ckpt")):
            raise SciSRError("holds checkpoints of an earlier run; resume from last.ckpt or set output.overwrite: true",
                             ckpt_dir)
        if model_path.exists():
            raise SciSRError("model file exists; set output.overwrite: true to replace it", model_path)
    L.seed_everything(cfg["seed"], workers=True, verbose=False)

    datamodule = PairDataModule(cfg)
    generator = build_generator(cfg, datamodule.spec)
    discriminator = None
    if cfg["gan"]["enabled"]:
        discriminator = create_model(cfg["gan"]["discriminator"], spatial_dims=generator.spatial_dims,
                                     in_channels=cfg["model"]["in_channels"], **cfg["gan"]["options"])
    module = SRModule(cfg, generator, discriminator)

    logs = run_dir / "logs"
    version = _next_version(logs)
    checkpoints = PeriodicCheckpoint(ckpt_dir, train["checkpoint_every"], train["keep_checkpoints"])
    trainer = L.Trainer(
        max_steps=train["max_steps"] * module.steps_per_iteration,
        max_epochs=-1,
        # On time-out Lightning ends fit() normally, so validation and the model file still follow.
        max_time=None if train["max_time_s"] is None else datetime.timedelta(seconds=float(train["max_time_s"])),
        val_check_interval=train["val_every"],
        check_val_every_n_epoch=None,
        limit_val_batches=1.0 if datamodule.val_items else 0,
        num_sanity_val_steps=0,
        accelerator=train["accelerator"],
        devices=train["devices"],
        num_nodes=train["num_nodes"],
        strategy=_strategy(cfg),
        precision=resolve_precision(train["precision"], train["accelerator"]),
        # Flushing the CSV at the logging cadence lets tools outside this process follow the run.
        logger=[CSVLogger(run_dir, name="logs", version=version, flush_logs_every_n_steps=train["log_every"]),
                TensorBoardLogger(run_dir, name="logs", version=version)],
        callbacks=[checkpoints, ProgressHooks(on_metrics, stop, train["log_every"]), *callbacks],
        plugins=[AtomicCheckpointIO()],
        enable_checkpointing=False,
        log_every_n_steps=train["log_every"],
        enable_progress_bar=sys.stderr.isatty(),
        enable_model_summary=False,
        default_root_dir=run_dir,
    )
    if resume is None and output["overwrite"] and trainer.is_global_zero and ckpt_dir.is_dir():
        shutil.rmtree(ckpt_dir)  # an earlier run's step files would otherwise mix with this run's
    validate = bool(datamodule.val_items)
    start = None
    if validate and resume is None:
        trainer.validate(module, datamodule=datamodule, verbose=False, weights_only=True)
        start = dict(module.history[-1])
    trainer.fit(module, datamodule=datamodule, ckpt_path=os.fspath(resume) if resume else None, weights_only=True)
    if validate:
        trainer.validate(module, datamodule=datamodule, verbose=False, weights_only=True)

    metrics: dict[str, Any] = {"iterations": module.iteration}
    if module.history:
        metrics.update({k: v for k, v in module.history[-1].items() if k != "iteration"})
    if start is not None:
        metrics["start"] = {k: v for k, v in start.items() if k != "iteration"}
    net = module.inference_model.cpu().eval()
    if trainer.is_global_zero:
        save_model(net, model_path, overwrite=True, name=cfg["name"], domain=cfg["domain"] or "generic",
                   normalisation=dict(cfg["normalisation"]), metrics=metrics, training=_training_card(cfg, datamodule))
    trainer.strategy.barrier("scisr-model-saved")
    if trainer.world_size > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
        # Lightning leaves the process group up. Torn down by the interpreter's exit instead, gloo's worker
        # threads were seen to abort one rank ("terminate called without an active exception") after a
        # finished run; a later run() in the same process initialises a new group.
        torch.distributed.destroy_process_group()
    return TrainResult(model_path=model_path, metrics=metrics, log_dir=logs / f"version_{version}",
                       checkpoint=checkpoints.last, model=net)


def _training_card(cfg: Mapping[str, Any], datamodule: PairDataModule) -> dict[str, Any]:
    """What the model card says about training: data, degradation, patches, steps and the recipe."""
    def names(items: Sequence[Mapping[str, Any]]) -> list[str]:
        return [str(it["subject"]) for it in items]

    data = cfg["data"]
    return {
        "recipe": cfg.get("_source"),
        "data": {"generate": data["generate"], "folder": data["folder"], "files": list(data["files"]),
                 "collection": list(data["collection"]), "exclude": list(data["exclude"]),
                 "train_subjects": names(datamodule.train_items), "val_subjects": names(datamodule.val_items)},
        "degradation": dict(cfg["degradation"]),
        "scale": list(cfg["scale"]),
        "patch_size": list(data["patch_size"]),
        "iterations": cfg["train"]["max_steps"],
        "loss": {k: v for k, v in cfg["loss"].items() if v},
        "gan": dict(cfg["gan"]) if cfg["gan"]["enabled"] else None,
        "config": {k: v for k, v in cfg.items() if k != "_source"},
    }
