"""Training configuration: YAML recipes merged onto defaults, with unknown keys and bad values refused.

Every error is one line that names the file and the key, e.g.
``configs/ct_x2.yaml: unknown key 'train.max_step' (did you mean 'train.max_steps'?)``. A recipe is a YAML
file or the name of one installed with sciSR (:mod:`sciSR.training.recipes`).

Sections (see :data:`DEFAULTS` for every key and its default; paths are relative to the working
directory):

- ``name`` (run folder ``<train.out_dir>/<name>``), ``seed``, ``domain`` (``mri``/``ct``/``sky``/``generic``;
  picks the default normalisation and is written to the model card; default ``generic``), ``scale`` (one
  factor per image spatial axis, e.g. ``[1, 1, 4]``; for 2D patches from volumes the sliced axis has
  factor 1).
- ``data``: where the HR images come from (``files``, ``folder`` + ``pattern``, ``collection`` names of images
  that installed packages ship (:mod:`sciSR.data.shipped`; may be combined with ``generate``) minus
  ``exclude`` (file-name globs of held-out images), or ``generate`` a phantom), the subject-wise split
  (``subject_pattern``; DICOM files of one study are one subject by default), patches (``patch_size`` in LR
  voxels per model axis), caching (``cache``: ``memory``, ``disk`` in ``cache_dir`` (default
  ``<out_dir>/<name>/cache``) or ``none``) and loading (``num_workers`` processes, ``batch_size`` per
  process). ``fusion.stacks`` (one scale per simulated stack, e.g. ``[[4, 1, 1], [1, 4, 1], [1, 1, 4]]``; the
  first equals ``scale``) trains a multi-stack model on stacks resampled onto the HR grid (``offsets``: random
  sub-slice offsets, ``order``: 1 or 3; :class:`sciSR.data.multi_input_samples.StackSpec`, ``patch_size`` in
  LR voxels of the first stack); ``reference.enabled`` adds a simulated reference (another ``contrast``, a
  smooth ``deform`` of up to that many HR voxels over ``smoothness`` voxels, ``noise`` σ) for reference-guided
  models (:class:`sciSR.data.multi_input_samples.ReferenceSpec`).
- ``degradation``: ``type`` (:data:`sciSR.degrade.DEGRADATIONS`) and that degradation's options.
- ``normalisation``: ``method`` (default from the domain) and its options; written to the model card.
- ``model``: ``arch`` and ``options`` of :func:`sciSR.models.create_model`; ``init`` a model file to start from;
  ``flux_projection`` (``conserve``/``mean``/null) ends every forward pass with the exact flux projection.
- ``loss``: weights of ``l1``, ``mse``, ``charbonnier``, ``ssim``, ``gradient``, ``perceptual``, ``style``
  (the last two need ``feature_net``, a TorchScript file you provide).
- ``gan``: adversarial fine-tuning (``srgan-d``/``esrgan-d`` discriminators; ``standard`` or
  ``relativistic`` loss) from ``start_step`` on.
- ``optim``, ``schedule``: optimiser and learning-rate schedule (per iteration).
- ``train``: steps, ``max_time_s`` (wall-clock limit; the model file is still written, and a cosine schedule
  decays over it when it ends the run before ``max_steps``), validation/checkpoint
  cadence, EMA, gradient clipping, ``precision`` (``auto``/``fp32``/``bf16``/``fp16``), devices, strategy.
- ``output``: where the model file goes.
"""

from __future__ import annotations

import contextlib
import copy
import difflib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from sciSR.data.phantoms import phantom_ndim
from sciSR.errors import SciSRError
from sciSR.intensity import DEFAULT_FOR_DOMAIN, METHODS
from sciSR.training.recipes import list_recipes, recipe_path

DEFAULTS: dict[str, Any] = {
    "name": "scisr-model",
    "seed": 0,
    "domain": None,
    "scale": None,
    "data": {
        "files": [],
        "collection": [],
        "exclude": [],
        "folder": None,
        "pattern": "*",
        "generate": None,
        "count": 8,
        "options": {},
        "subject_pattern": None,
        "val_fraction": 0.2,
        "val_subjects": [],
        "patch_size": None,
        "val_patch_size": None,
        "slice_axis": None,
        "margin": 2,
        "foreground_prob": 0.8,
        "foreground_threshold": 0.1,
        "samples_per_epoch": 256,
        "val_patches": 4,
        "batch_size": 8,
        "num_workers": 0,
        "cache": "memory",
        "cache_dir": None,
        "flip": True,
        "rot90": True,
        "fusion": {"stacks": [], "offsets": True, "order": 3},
        "reference": {"enabled": False, "contrast": True, "deform": 1.0, "smoothness": 6.0, "noise": 0.02},
    },
    "degradation": {"type": "bin"},
    "normalisation": {"method": None},
    "model": {"arch": "edsr-baseline", "options": {}, "in_channels": 1, "init": None, "flux_projection": None},
    "loss": {
        "l1": 1.0,
        "mse": 0.0,
        "charbonnier": 0.0,
        "charbonnier_eps": 1e-3,
        "ssim": 0.0,
        "gradient": 0.0,
        "perceptual": 0.0,
        "style": 0.0,
        "feature_net": None,
        "feature_channels": None,
    },
    "gan": {
        "enabled": False,
        "discriminator": "esrgan-d",
        "options": {},
        "mode": "relativistic",
        "weight": 5e-3,
        "start_step": 0,
        "lr": 1e-4,
    },
    "optim": {"name": "adam", "lr": 2e-4, "weight_decay": 0.0, "betas": [0.9, 0.999]},
    "schedule": {"name": "cosine", "warmup_steps": 0, "min_lr_ratio": 0.01, "step_size": 1000, "gamma": 0.5},
    "train": {
        "max_steps": 1000,
        "val_every": 100,
        "checkpoint_every": 100,
        "keep_checkpoints": 2,
        "log_every": 10,
        "log_images": 2,
        "grad_clip": 1.0,
        "ema": 0.999,
        "precision": "auto",
        "accelerator": "auto",
        "devices": "auto",
        "num_nodes": 1,
        "strategy": "auto",
        "max_time_s": None,
        "out_dir": "runs",
    },
    "output": {"model_path": None, "overwrite": False},
}

# Sections whose keys are options of something else, checked where they are used (with the name listed).
FREE_FORM = {"data.options", "degradation", "normalisation", "model.options", "gan.options"}
NORMALISATION_OPTIONS = {"none": (), "ct_window": ("low", "high"), "percentile": ("low_q", "high_q"),
                         "asinh": ("k",)}
CHOICES = {
    "domain": (None, "mri", "ct", "sky", "generic"),
    "data.cache": ("memory", "disk", "none"),
    "gan.mode": ("standard", "relativistic"),
    "gan.discriminator": ("srgan-d", "esrgan-d"),
    "model.flux_projection": (None, "conserve", "mean"),
    "optim.name": ("adam", "adamw"),
    "schedule.name": ("cosine", "step", "constant"),
    "train.strategy": ("auto", "ddp", "ddp_spawn", "ddp_notebook", "single_device"),
}
REQUIRED = ("scale", "data.patch_size")
PRECISIONS = ("auto", "fp32", "bf16", "fp16", "32-true", "bf16-mixed", "16-mixed", "bf16-true", "16-true", "64-true",
              "32", "16", "64", 32, 16, 64)
"""Values of ``train.precision``: sciSR's names (``auto`` = bf16 mixed precision on GPUs and on CPUs with native
bf16, fp32 elsewhere; see :func:`sciSR.training.engine.resolve_precision`) or Lightning's."""


def _merge(base: dict[str, Any], update: Mapping[str, Any], prefix: str, source: str | None) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in update.items():
        dotted = f"{prefix}{key}"
        if prefix.rstrip(".") in FREE_FORM:
            out[key] = copy.deepcopy(value)
            continue
        if key not in base:
            hint = difflib.get_close_matches(str(key), list(base), n=1)
            suggestion = f" (did you mean '{prefix}{hint[0]}'?)" if hint else f" (known: {', '.join(base)})"
            raise SciSRError(f"unknown key '{dotted}'{suggestion}", source)
        if isinstance(base[key], dict) and (dotted in FREE_FORM or base[key]):
            if not isinstance(value, Mapping):
                raise SciSRError(f"'{dotted}' must be a mapping of keys, got {value!r}", source)
            out[key] = _merge(base[key], value, f"{dotted}.", source)
        else:
            out[key] = _check_type(base[key], value, dotted, source)
    return out


def _check_type(default: Any, value: Any, key: str, source: str | None) -> Any:
    if default is None or value is None:
        return copy.deepcopy(value)
    if isinstance(default, float) and isinstance(value, str):
        # YAML 1.1 reads 1e-4 (no dot) as a string; accept what is plainly a number.
        with contextlib.suppress(ValueError):
            value = float(value)
    expected: tuple[type, ...]
    if isinstance(default, bool):
        expected, word = (bool,), "true or false"
    elif isinstance(default, int):
        expected, word = (int,), "an integer"
    elif isinstance(default, float):
        expected, word = (int, float), "a number"
    elif isinstance(default, str):
        # Some string settings also take numbers (devices: 2) or lists (devices: [0, 1]).
        expected, word = (str, int, list) if key in ("train.devices", "train.precision") else (str,), "a string"
    elif isinstance(default, list):
        expected, word = (list,), "a list"
    else:
        expected, word = (dict,), "a mapping"
    if (isinstance(value, bool) and bool not in expected) or not isinstance(value, expected):
        raise SciSRError(f"'{key}' must be {word}, got {value!r}", source)
    return float(value) if isinstance(default, float) else copy.deepcopy(value)


def _get(cfg: Mapping[str, Any], dotted: str) -> Any:
    node: Any = cfg
    for part in dotted.split("."):
        node = node[part]
    return node


def validate(cfg: dict[str, Any], source: str | None = None) -> dict[str, Any]:
    """Check values that need more than a type (choices, required keys, shapes); fill derived defaults.

    Options of free-form sections (degradation, model, phantom) are checked when the objects are built,
    with the same one-line error.
    """
    for key in REQUIRED:
        if _get(cfg, key) is None:
            raise SciSRError(f"'{key}' is required", source)
    for key, allowed in CHOICES.items():
        if _get(cfg, key) not in allowed:
            shown = ", ".join(str(a) for a in allowed if a is not None)
            raise SciSRError(f"'{key}' must be one of {shown}, got {_get(cfg, key)!r}", source)
    if cfg["train"]["precision"] not in PRECISIONS or isinstance(cfg["train"]["precision"], bool):
        raise SciSRError(f"'train.precision' must be auto, fp32, bf16, fp16 or a Lightning precision such as "
                         f"bf16-mixed, got {cfg['train']['precision']!r}", source)
    scale = cfg["scale"]
    if isinstance(scale, int) and not isinstance(scale, bool):
        raise SciSRError("'scale' must list one factor per image spatial axis, e.g. [2, 2] or [1, 1, 4]", source)
    if not isinstance(scale, list) or not all(isinstance(s, int) and s >= 1 for s in scale):
        raise SciSRError(f"'scale' must be a list of positive integers, got {scale!r}", source)
    for key in ("data.patch_size", "data.val_patch_size"):
        value = _get(cfg, key)
        if value is not None and (not isinstance(value, list) or not all(isinstance(p, int) and p > 0 for p in value)):
            raise SciSRError(f"'{key}' must be a list of positive integers, got {value!r}", source)
    stacks = cfg["data"]["fusion"]["stacks"]
    if stacks and (cfg["data"]["reference"]["enabled"] or stacks[0] != scale):
        raise SciSRError(f"'data.fusion.stacks' must start with 'scale' {scale} (the model's nominal scale) and "
                         "cannot be combined with 'data.reference'", source)
    sources = [bool(cfg["data"]["files"]), cfg["data"]["folder"] is not None, cfg["data"]["generate"] is not None,
               bool(cfg["data"]["collection"])]
    if sum(sources) == 0:
        raise SciSRError("data needs 'files', 'folder', 'collection' or 'generate'", source)
    if cfg["data"]["generate"] is not None and any(sources[:2]):
        raise SciSRError("data takes either 'generate' or files/folder, not both", source)
    if cfg["data"]["generate"] is not None:
        try:
            ndim = phantom_ndim(cfg["data"]["generate"], cfg["data"]["options"])
        except SciSRError as err:
            raise SciSRError(f"'data.generate': {err.message}", source) from None
        if ndim != len(scale):
            raise SciSRError(f"'data.generate': {cfg['data']['generate']} makes {ndim}D images but 'scale' {scale} "
                             f"has {len(scale)} factors (one per image axis: a 2D model on volumes takes factor 1 "
                             "on the axis it slices, e.g. [2, 2, 1])", source)
    degradation = cfg["degradation"]
    if "type" not in degradation:
        raise SciSRError("'degradation.type' is required", source)
    norm = cfg["normalisation"]
    method = norm.get("method") or DEFAULT_FOR_DOMAIN[cfg["domain"] or "generic"]
    if method not in METHODS:
        raise SciSRError(f"'normalisation.method' must be one of {', '.join(METHODS)}, got {method!r}", source)
    for key in norm:
        if key != "method" and key not in NORMALISATION_OPTIONS[method]:
            known = ", ".join(NORMALISATION_OPTIONS[method]) or "none"
            raise SciSRError(f"unknown key 'normalisation.{key}' for method {method} (known: {known})", source)
    norm["method"] = method
    loss = cfg["loss"]
    weights = [loss[k] for k in ("l1", "mse", "charbonnier", "ssim", "gradient", "perceptual", "style")]
    if any(w < 0 for w in weights) or not any(w > 0 for w in weights):
        raise SciSRError("loss weights must be ≥ 0 with at least one > 0", source)
    if (loss["perceptual"] > 0 or loss["style"] > 0) and not loss["feature_net"]:
        raise SciSRError("perceptual/style loss needs 'loss.feature_net' (a TorchScript file you provide)", source)
    train = cfg["train"]
    for key in ("max_steps", "val_every", "checkpoint_every", "keep_checkpoints", "log_every", "num_nodes"):
        if train[key] < 1:
            raise SciSRError(f"'train.{key}' must be ≥ 1, got {train[key]}", source)
    if train["max_time_s"] is not None and (isinstance(train["max_time_s"], bool)
                                            or not isinstance(train["max_time_s"], int | float)
                                            or train["max_time_s"] <= 0):
        raise SciSRError(f"'train.max_time_s' must be a number of seconds > 0 or null, got {train['max_time_s']!r}",
                         source)
    if train["ema"] is not None and not 0.0 < float(train["ema"]) < 1.0:
        raise SciSRError(f"'train.ema' must be in (0, 1) or null, got {train['ema']}", source)
    return cfg


def _parse_override(text: str) -> tuple[list[str], Any]:
    if "=" not in text:
        raise SciSRError(f"override {text!r} must look like key.subkey=value")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        # Not YAML (e.g. a glob like *.dcm whose quotes the shell removed): the text itself is meant.
        value = raw.strip()
    return key.strip().split("."), value


def load_config(config: str | os.PathLike | Mapping[str, Any], overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Read a recipe (name, YAML file or dict), apply ``key.sub=value`` overrides, validate, fill defaults.

    Parameters
    ----------
    config : str or os.PathLike or Mapping
        The name of an installed recipe (:func:`sciSR.training.list_recipes`, e.g. ``"ct_x2"`` or
        ``"shipped/mri-x2"``), a YAML file, or an already-parsed mapping. A file of that name in the
        working directory wins over an installed recipe.
    overrides : sequence of str
        E.g. ``["train.max_steps=50", "data.batch_size=4", "scale=[2,2]"]``; values are YAML.

    Returns
    -------
    dict
        The complete configuration (plain YAML types; JSON-serialisable), with ``_source`` naming the file.

    Raises
    ------
    SciSRError
        One line naming the file and the offending key.
    """
    if isinstance(config, Mapping):
        raw = copy.deepcopy(dict(config))
        source = raw.get("_source")
    else:
        source = os.fspath(config)
        if not Path(source).is_file():
            if source not in list_recipes():
                raise SciSRError("no such config file or installed recipe (scisr train --list names them)", source)
            source = str(recipe_path(source))
        try:
            raw = yaml.safe_load(Path(source).read_text()) or {}
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            raise SciSRError(f"not valid YAML{where}", source) from None
    raw.pop("_source", None)
    if not isinstance(raw, dict):
        raise SciSRError("a config must be a mapping of sections", source)
    for text in overrides:
        keys, value = _parse_override(text)
        node = raw
        for part in keys[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise SciSRError(f"override {text!r}: '{part}' is not a section", source)
        node[keys[-1]] = value
    cfg = _merge(DEFAULTS, raw, "", source)
    cfg = validate(cfg, source)
    cfg["_source"] = source
    return cfg
