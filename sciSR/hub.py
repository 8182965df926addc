"""Model files: ``*.safetensors`` weights + a JSON card; loading never unpickles unless asked.

A card is the recipe to rebuild the network (architecture, options, scale, dimensions, channels), its
typed contract (``"spec"``: :class:`~sciSR.models.spec.ModelSpec` as a dict; filled in for cards written
before it existed) plus what a user needs to trust it (domain, normalisation, training data, metrics).
It is written beside the weights (``model.json`` for ``model.safetensors``) and embedded in the
safetensors header, so a lone weights file still loads.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sciSR.errors import SciSRError
from sciSR.io.atomic import atomic_output
from sciSR.models.registry import spec_from_card
from sciSR.models.spec import ModelSpec
from sciSR.version import __version__

CARD_FORMAT = "sciSR-model/1"
CARD_METADATA_KEY = "scisr_card"
REQUIRED = ("arch", "scale", "spatial_dims", "in_channels")
WEIGHTS_DIR = Path(__file__).parent / "weights"
PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin", ".pkl")
# Spec fields a model file may set beyond what the architecture and its options fix.
TRAINED_SPEC_FIELDS = ("receptive_field", "precisions", "degradation")


def validate_card(card: Any, source: str | os.PathLike | None = None) -> dict[str, Any]:
    """Check a card and return it with defaults filled in.

    Parameters
    ----------
    card : Any
        The parsed JSON card.
    source : str or os.PathLike, optional
        The file it came from, named in errors.

    Returns
    -------
    dict
        The card with ``format``, ``options``, ``out_channels``, ``domain``, ``normalisation`` defaulted,
        ``scale`` as one factor per axis, and ``spec`` (a :meth:`ModelSpec.to_dict
        <sciSR.models.spec.ModelSpec.to_dict>`; derived by :func:`sciSR.models.spec_from_card` for a card without one).

    Raises
    ------
    SciSRError
        Missing keys, unknown architecture, scale/dimension/channel values that do not fit, or a spec
        that is invalid or disagrees with the card.
    """
    from sciSR.models import list_architectures

    if not isinstance(card, dict):
        raise SciSRError("model card is not a JSON object", source)
    missing = [k for k in REQUIRED if k not in card]
    if missing:
        raise SciSRError(f"model card lacks {', '.join(missing)}", source)
    arches = {entry["name"] for entry in list_architectures()}
    if card["arch"] not in arches:
        raise SciSRError(f"model card names unknown architecture {card['arch']!r}", source)
    dims = card["spatial_dims"]
    if dims not in (2, 3):
        raise SciSRError(f"model card spatial_dims must be 2 or 3, got {dims!r}", source)
    scale = card["scale"]
    scale = [scale] * dims if isinstance(scale, int) else list(scale)
    if len(scale) != dims or not all(isinstance(s, int) and s >= 1 for s in scale):
        raise SciSRError(f"model card scale {card['scale']!r} is not {dims} positive integers", source)
    channels = card["in_channels"]
    if not isinstance(channels, int) or channels < 1:
        raise SciSRError(f"model card in_channels must be a positive integer, got {channels!r}", source)
    out = {
        "format": CARD_FORMAT,
        "options": {},
        "out_channels": channels,
        "domain": "generic",
        "normalisation": {"method": "percentile"},
        **card,
    }
    out["scale"] = scale
    try:
        out["spec"] = spec_from_card(out).to_dict()
    except SciSRError as err:
        raise SciSRError(err.message, source) from None
    return out


def build_from_card(card: dict[str, Any]) -> nn.Module:
    """Instantiate the (untrained) network a validated card describes; attaches ``model.card`` and the
    card's ``spec`` (see :func:`validate_card`)."""
    from sciSR.models import create_model

    try:
        model = create_model(
            card["arch"],
            scale=tuple(card["scale"]),
            spatial_dims=card["spatial_dims"],
            in_channels=card["in_channels"],
            out_channels=card.get("out_channels", card["in_channels"]),
            **card.get("options", {}),
        )
    except (TypeError, ValueError, RuntimeError) as err:
        # A hand-edited card: its options do not build the architecture.
        raise SciSRError(f"model card options do not build {card['arch']}: {err}".replace("\n", " ")) from None
    _attach_card(model, card)
    return model


def _attach_card(model: nn.Module, card: dict[str, Any]) -> None:
    """Set ``model.card``, and ``model.spec`` to the card's spec after checking it describes the network."""
    model.card = dict(card)
    spec = getattr(model, "spec", None)
    if not isinstance(spec, ModelSpec):
        return
    card_spec = ModelSpec.from_dict(card["spec"])
    # Everything but the trained-model fields follows from the architecture, so it must match the build.
    for field in dataclasses.fields(ModelSpec):
        if field.name not in TRAINED_SPEC_FIELDS and getattr(card_spec, field.name) != getattr(spec, field.name):
            raise SciSRError(f"model card spec says {field.name} {getattr(card_spec, field.name)!r}; the "
                             f"{card['arch']} network it describes has {getattr(spec, field.name)!r}")
    model.spec = card_spec


def card_of(model: nn.Module) -> dict[str, Any]:
    """The card of a model built by :func:`sciSR.models.create_model` (validated; ``spec`` is the model's)."""
    card = getattr(model, "card", None)
    if card is None:
        raise SciSRError(f"{type(model).__name__} has no .card; build it with sciSR.models.create_model")
    if isinstance(getattr(model, "spec", None), ModelSpec):
        card = {**card, "spec": model.spec.to_dict()}
    # The hash describes the file the model was loaded from, not weights that may since have changed.
    return validate_card({k: v for k, v in card.items() if k != "weights_sha256"})


def save_model(model: nn.Module, path: str | os.PathLike, *, overwrite: bool = False, **card_extra: Any) -> Path:
    """Write ``path`` (``.safetensors``) and its JSON card beside it, atomically.

    Parameters
    ----------
    model : nn.Module
        A network with a ``card`` (from :func:`sciSR.models.create_model`).
    path : str or os.PathLike
        Weights file; must end in ``.safetensors``.
    overwrite : bool
        Replace existing files.
    **card_extra
        Extra card entries: ``name``, ``domain``, ``normalisation``, ``training``, ``metrics``, ...
        A ``training["degradation"]["type"]`` becomes ``spec.degradation`` unless the spec has one.

    Returns
    -------
    pathlib.Path
        The weights file.
    """
    from safetensors.torch import save_file

    target = Path(path)
    if target.suffix != ".safetensors":
        raise SciSRError("model files end in .safetensors", path)
    card = card_of(model)
    if "training" in card_extra and "spec" not in card_extra:
        # A new training run: the degradation it records replaces the one the model was loaded with.
        card["spec"] = {**card["spec"], "degradation": None}
    card = validate_card({**card, **card_extra})
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    text = json.dumps(card, indent=2, sort_keys=True)
    with atomic_output(target.with_suffix(".json"), overwrite=overwrite) as tmp_card, \
            atomic_output(target, overwrite=overwrite) as tmp:
        save_file(state, str(tmp), metadata={CARD_METADATA_KEY: text})
        tmp_card.write_text(text + "\n")
    _attach_card(model, card)
    return target


def _read_card(path: Path) -> dict[str, Any]:
    from safetensors import safe_open

    sidecar = path.with_suffix(".json")
    if sidecar.is_file():
        try:
            return json.loads(sidecar.read_text())
        except json.JSONDecodeError as err:
            raise SciSRError(f"model card is not valid JSON ({err.msg}, line {err.lineno})", sidecar) from None
    try:
        with safe_open(str(path), framework="pt") as f:
            text = (f.metadata() or {}).get(CARD_METADATA_KEY)
    except Exception as err:
        raise SciSRError(f"not a readable safetensors file ({err})", path) from None
    if text is None:
        raise SciSRError(f"no model card: expected {sidecar.name} beside it or a card in its header", path)
    return json.loads(text)


def _load_state(path: Path, *, trust_pickle: bool) -> dict[str, torch.Tensor]:
    if path.suffix in PICKLE_SUFFIXES:
        if not trust_pickle:
            raise SciSRError(
                "is a pickle, which can run code when loaded; pass trust_pickle=True "
                "(CLI: --trust-pickle) only for files you made yourself", path)
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:
            raise SciSRError(f"cannot load weights ({type(err).__name__}: {err})".splitlines()[0], path) from None
        state = state.get("state_dict", state) if isinstance(state, dict) else state
        if not isinstance(state, dict):
            raise SciSRError("pickle does not hold a state dict", path)
        return state
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except Exception as err:
        raise SciSRError(f"corrupt or truncated safetensors file ({err})".splitlines()[0], path) from None


def shipped_models() -> dict[str, Path]:
    """Names and weight files of the models that ship with sciSR (``sciSR/weights``)."""
    if not WEIGHTS_DIR.is_dir():
        return {}
    return {p.stem: p for p in sorted(WEIGHTS_DIR.glob("*.safetensors"))}


def _model_file(name_or_path: str | os.PathLike) -> Path:
    """The weights file of a shipped name or a path; a one-line error naming the choices otherwise."""
    shipped = shipped_models()
    key = os.fspath(name_or_path)
    path = shipped.get(key, Path(key))
    if not path.is_file():
        names = ", ".join(shipped) or "none"
        raise SciSRError(f"unknown model: no such model file or shipped model (shipped: {names}; "
                         "interpolation: nearest, linear, cubic)", key)
    return path


def _file_card(path: Path) -> dict[str, Any]:
    """The validated card of a model file: a pickle's sidecar JSON, or a safetensors file's card."""
    if path.suffix in PICKLE_SUFFIXES:
        sidecar = path.with_suffix(".json")
        if not sidecar.is_file():
            raise SciSRError(f"no model card {sidecar.name} beside the weights", path)
        try:
            return validate_card(json.loads(sidecar.read_text()), sidecar)
        except json.JSONDecodeError as err:
            raise SciSRError(f"model card is not valid JSON ({err.msg}, line {err.lineno})", sidecar) from None
    return validate_card(_read_card(path), path)


def read_spec(name_or_path: str | os.PathLike) -> ModelSpec:
    """The :class:`~sciSR.models.spec.ModelSpec` of a model file, from its card alone.

    Builds no network and reads no weights (a pickle is not opened, so no ``trust_pickle`` is needed).

    Parameters
    ----------
    name_or_path : str or os.PathLike
        A name from :func:`shipped_models`, a ``.safetensors`` file (card beside it as ``.json`` or in
        its header), or a pickle (``.pt``/``.pth``/``.ckpt``/...) with its card beside it as ``.json``.

    Returns
    -------
    ModelSpec
        ``card["spec"]``, derived from the card's fields for a card written before cards had one.

    Raises
    ------
    SciSRError
        Unknown name or missing file, no card, or an invalid card.
    """
    return ModelSpec.from_dict(_file_card(_model_file(name_or_path))["spec"])


def load_model(name_or_path: str | os.PathLike | nn.Module, *, trust_pickle: bool = False) -> nn.Module:
    """Load a model by shipped name, file path, or pass an ``nn.Module`` through.

    Parameters
    ----------
    name_or_path : str or os.PathLike or nn.Module
        A name from :func:`shipped_models`, a ``.safetensors`` file (card beside it or embedded),
        a pickle (``.pt``/``.pth``/``.ckpt``; refused unless ``trust_pickle``; its card must sit beside
        it as ``.json``), or a module (returned as is; it must have ``scale``).
    trust_pickle : bool
        Allow pickles; they are then loaded with ``torch.load(weights_only=True)``.

    Returns
    -------
    nn.Module
        In eval mode, with ``.card`` (plus ``weights_sha256``, the file's SHA-256) and ``.spec`` (the card's).
    """
    if isinstance(name_or_path, nn.Module):
        if not hasattr(name_or_path, "scale"):
            raise SciSRError(f"{type(name_or_path).__name__} has no .scale; build it with sciSR.models.create_model")
        return name_or_path.eval()
    path = _model_file(name_or_path)
    if path.suffix in PICKLE_SUFFIXES:
        # An untrusted pickle is refused before its card is read: that is the message a user needs first.
        state = _load_state(path, trust_pickle=trust_pickle)
        card = _file_card(path)
    else:
        card = _file_card(path)
        state = _load_state(path, trust_pickle=trust_pickle)
    try:
        model = build_from_card(card)
    except SciSRError as err:
        raise SciSRError(err.message, err.path or path) from None
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        first = next((ln.strip() for ln in str(err).splitlines()[1:] if ln.strip()), str(err))
        raise SciSRError(f"model card disagrees with the weights: {first}", path) from None
    if not all(bool(torch.isfinite(t).all()) for t in state.values() if torch.is_tensor(t) and t.is_floating_point()):
        raise SciSRError("model weights hold NaN/inf values", path)
    # Provenance names the exact weights a result came from.
    model.card["weights_sha256"] = file_sha256(path)
    return model.eval()


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


def export_model(
    model: nn.Module,
    path: str | os.PathLike,
    fmt: str = "torchscript",
    *,
    example_shape: Sequence[int] | None = None,
    overwrite: bool = False,
) -> Path:
    """Export a model to TorchScript, ONNX, a MONAI bundle folder or a BioImage Model Zoo package.

    Parameters
    ----------
    model : nn.Module
        A network with a card.
    path : str or os.PathLike
        ``.pt``/``.ts`` (TorchScript), ``.onnx``, or a folder (MONAI bundle: ``configs/metadata.json``,
        ``configs/inference.json``, ``models/model.pt`` state dict, ``models/model.ts``), or a folder or
        ``.zip`` (bioimage.io package: ``rdf.yaml``, TorchScript weights, test tensors, cover, README; see
        :mod:`sciSR.export_bioimageio`).
    fmt : str
        ``"torchscript"``, ``"onnx"``, ``"bundle"`` or ``"bioimageio"``.
    example_shape : sequence of int, optional
        Input spatial size used for tracing (default 32 per axis in 2D, 16 in 3D); ONNX gets dynamic
        batch and spatial axes. A bioimage.io package traces on its own test input instead.
    overwrite : bool
        Replace an existing output.
    """
    card = card_of(model)
    dims = card["spatial_dims"]
    spatial = tuple(example_shape or ((32,) * dims if dims == 2 else (16,) * dims))
    example = torch.rand(1, card["in_channels"], *spatial)
    model = model.eval().cpu()
    if fmt == "torchscript":
        with atomic_output(path, overwrite=overwrite) as tmp, torch.no_grad():
            torch.jit.trace(model, example).save(str(tmp))
        return Path(path)
    if fmt == "onnx":
        names = ["x", *(f"d{i}" for i in range(dims))]
        axes = {"input": {0: "batch", **{i + 2: names[i + 1] for i in range(dims)}}, "output": {0: "batch"}}
        with atomic_output(path, overwrite=overwrite) as tmp, torch.no_grad():
            torch.onnx.export(model, (example,), str(tmp), input_names=["input"], output_names=["output"],
                              dynamic_axes=axes, dynamo=False, opset_version=17)
        return Path(path)
    if fmt == "bundle":
        with atomic_output(path, overwrite=overwrite, folder=True) as tmp:
            (tmp / "configs").mkdir()
            (tmp / "models").mkdir()
            torch.save(model.state_dict(), tmp / "models" / "model.pt")
            with torch.no_grad():
                torch.jit.trace(model, example).save(str(tmp / "models" / "model.ts"))
            metadata = {
                "version": __version__,
                "monai_version": _version("monai"),
                "pytorch_version": torch.__version__.split("+")[0],
                "name": card.get("name", card["arch"]),
                "task": f"super-resolution x{'x'.join(str(s) for s in card['scale'])}",
                "description": card.get("description", f"{card['arch']} exported by sciSR"),
                "scisr_card": card,
                "network_data_format": {
                    "inputs": {"image": {"type": "image", "num_channels": card["in_channels"],
                                         "spatial_shape": ["*"] * dims, "dtype": "float32"}},
                    "outputs": {"pred": {"type": "image", "num_channels": card["out_channels"],
                                         "spatial_shape": ["*"] * dims, "dtype": "float32"}},
                },
            }
            inference = {
                "imports": ["$import sciSR"],
                "device": "$torch.device('cuda' if torch.cuda.is_available() else 'cpu')",
                "network_def": {
                    "_target_": "sciSR.models.create_model",
                    "name": card["arch"],
                    "scale": card["scale"],
                    "spatial_dims": dims,
                    "in_channels": card["in_channels"],
                    "out_channels": card["out_channels"],
                    **card.get("options", {}),
                },
                "network": "$@network_def.to(@device)",
                "checkpoint": "$@bundle_root + '/models/model.pt'",
            }
            (tmp / "configs" / "metadata.json").write_text(json.dumps(metadata, indent=2))
            (tmp / "configs" / "inference.json").write_text(json.dumps(inference, indent=2))
        return Path(path)
    if fmt == "bioimageio":
        from sciSR.export_bioimageio import export_bioimageio

        return export_bioimageio(model, card, path, summary=model_summary(card), description=describe_card(card),
                                 overwrite=overwrite)
    raise SciSRError(f"export format must be torchscript, onnx, bundle or bioimageio, got {fmt!r}")


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "unknown"


def _card_of_name(name_or_path: str | os.PathLike | dict[str, Any]) -> tuple[Path | None, dict[str, Any]]:
    """The weights file and validated card of a shipped name, a model file or a card; a one-line error otherwise."""
    if isinstance(name_or_path, dict):
        return None, validate_card(name_or_path)
    key = os.fspath(name_or_path)
    path = shipped_models().get(key, Path(key))
    if not path.is_file():
        raise SciSRError("unknown model; scisr models lists them", key)
    return path, _file_card(path)


def _held_out_rows(card: dict[str, Any]) -> list[dict[str, Any]]:
    """``(image, baseline, model PSNR, baseline PSNR, Δ)`` of each held-out metric row that has both PSNRs."""
    rows = []
    for row in card.get("held_out_metrics") or []:
        baselines = [k.removeprefix("psnr_") for k in row if k.startswith("psnr_")]
        if "psnr" not in row or not baselines:
            continue
        baseline = "cubic" if "cubic" in baselines else baselines[0]
        base = float(row[f"psnr_{baseline}"])
        rows.append({"image": str(row.get("image", "?")), "baseline": baseline, "psnr": float(row["psnr"]),
                     "psnr_baseline": base, "delta_db": float(row["psnr"]) - base,
                     "ssim": row.get("ssim"), "ssim_baseline": row.get(f"ssim_{baseline}")})
    return rows


def model_summary(name_or_path: str | os.PathLike | dict[str, Any]) -> dict[str, Any]:
    """What ``scisr models`` and the napari model picker show of a model, from its card alone.

    Parameters
    ----------
    name_or_path : str or os.PathLike or dict
        A name from :func:`shipped_models`, a model file with its card, or a card.

    Returns
    -------
    dict
        ``name``; ``arch``; ``domain``; ``scale`` (list of int, one factor per axis of the network);
        ``spatial_dims``; ``degradation`` (the spec's degradation family, else the card's training
        degradation type, else None); ``baseline`` (interpolation the held-out PSNRs compare with, or None);
        ``gain_db`` (mean held-out PSNR gain over that baseline in dB, None without held-out metrics);
        ``held_out`` (list of dicts per held-out image: ``image``, ``baseline``, ``psnr``,
        ``psnr_baseline``, ``delta_db`` in dB, ``ssim``, ``ssim_baseline``); ``size_bytes`` (weights file
        size in bytes) and ``path`` (the weights file), both None for a card given as a dict.

    Raises
    ------
    SciSRError
        Unknown name or missing file, no card, or an invalid card.
    """
    path, card = _card_of_name(name_or_path)
    training = card.get("training") or {}
    degradation = card["spec"].get("degradation") or (training.get("degradation") or {}).get("type")
    rows = _held_out_rows(card)
    return {
        "name": card.get("name", path.stem if path else card["arch"]),
        "arch": card["arch"],
        "domain": card["domain"],
        "scale": list(card["scale"]),
        "spatial_dims": card["spatial_dims"],
        "degradation": degradation,
        "baseline": rows[0]["baseline"] if rows else None,
        "gain_db": sum(r["delta_db"] for r in rows) / len(rows) if rows else None,
        "held_out": rows,
        "size_bytes": path.stat().st_size if path else None,
        "path": path,
    }


def format_size(n_bytes: int) -> str:
    """``n_bytes`` as ``"771 KiB"``/``"1.2 MiB"`` (binary units)."""
    if n_bytes < 1024:
        return f"{n_bytes} B"
    if n_bytes < 1024 ** 2:
        return f"{n_bytes / 1024:.0f} KiB"
    return f"{n_bytes / 1024 ** 2:.1f} MiB"


def summary_line(summary: dict[str, Any]) -> str:
    """One line of a :func:`model_summary`, e.g. ``"mri · ×1×4 · thick_slice · +0.99 dB vs cubic (2 held-out) ·
    774 KiB"``."""
    gain = ("no held-out metrics" if summary["gain_db"] is None else
            f"{summary['gain_db']:+.2f} dB vs {summary['baseline']} ({len(summary['held_out'])} held-out)")
    parts = [summary["domain"], "×" + "×".join(map(str, summary["scale"])),
             summary["degradation"] or "unknown degradation", gain]
    if summary["size_bytes"] is not None:
        parts.append(format_size(summary["size_bytes"]))
    return " · ".join(parts)


def describe_card(name_or_path: str | os.PathLike | dict[str, Any]) -> list[str]:
    """The whole card of a model as readable lines (what ``scisr models NAME`` prints).

    Parameters
    ----------
    name_or_path : str or os.PathLike or dict
        A name from :func:`shipped_models`, a model file with its card, or a card.

    Returns
    -------
    list of str
        Identity, network, contract, normalisation, training, data, held-out quality and licences;
        sections a card lacks are left out.

    Raises
    ------
    SciSRError
        Unknown name or missing file, no card, or an invalid card.
    """
    path, card = _card_of_name(name_or_path)
    summary = model_summary(path or card)
    spec = card["spec"]
    training = card.get("training") or {}

    def kv(key: str, value: Any) -> str:
        return f"{key + ':':<15}{value}"

    def compact(value: Any) -> str:
        if isinstance(value, dict):
            return ", ".join(f"{k}={compact(v)}" for k, v in value.items())
        if isinstance(value, list | tuple):
            return "[" + ", ".join(map(compact, value)) + "]"
        return str(value)

    lines = [kv("model", summary["name"])]
    if path is not None:
        lines.append(kv("file", f"{path} ({format_size(summary['size_bytes'])})"))
    if card.get("description"):
        lines.append(kv("description", card["description"]))
    lines += [
        kv("domain", card["domain"]),
        kv("architecture", f"{card['arch']} ({compact(card['options'])})" if card["options"] else card["arch"]),
        kv("scale", "×" + "×".join(map(str, card["scale"])) + f" ({card['spatial_dims']}D network)"),
        kv("channels", f"{card['in_channels']} in, {card['out_channels']} out"),
        kv("inputs", f"{spec.get('inputs', 'image')} ({spec.get('kind', '-')}-upsampling)"),
        kv("precisions", ", ".join(spec.get("precisions") or ["fp32"])),
        kv("normalisation", compact(card["normalisation"])),
        kv("degradation", compact(training.get("degradation") or summary["degradation"] or "unknown")),
    ]
    steps = training.get("iterations", card.get("steps"))
    details = [f"{steps} steps" if steps else "", f"patch {compact(training['patch_size'])}"
               if training.get("patch_size") else "", f"loss {compact(training['loss'])}" if training.get("loss")
               else "", f"{card['wall_time_s']:.0f} s" if isinstance(card.get("wall_time_s"), int | float) else ""]
    if any(details):
        lines.append(kv("training", ", ".join(d for d in details if d)))
    for key, label in (("machine", "machine"), ("recipe", "recipe")):
        if card.get(key):
            lines.append(kv(label, card[key]))
    data = card.get("training_data") or {}
    if data.get("collections"):
        lines.append(kv("collections", ", ".join(data["collections"])))
    if data.get("train_subjects"):
        # Volumes are listed once per slice/frame used; counting them keeps the list readable.
        counts: dict[str, int] = {}
        for subject in data["train_subjects"]:
            counts[subject] = counts.get(subject, 0) + 1
        lines.append(kv("trained on", ", ".join(f"{s} ×{n}" if n > 1 else s for s, n in counts.items())))
    if summary["held_out"]:
        lines.append(f"held-out PSNR (dB), model vs {summary['baseline']}; mean gain {summary['gain_db']:+.2f} dB:")
        for row in summary["held_out"]:
            ssim = (f"; SSIM {row['ssim']:.4f} vs {row['ssim_baseline']:.4f}"
                    if row["ssim"] is not None and row["ssim_baseline"] is not None else "")
            lines.append(f"  {row['image']}: {row['psnr']:.2f} vs {row['psnr_baseline']:.2f} "
                         f"({row['delta_db']:+.2f}){ssim}")
    else:
        lines.append(kv("held-out", "no held-out metrics in the card"))
    for licence in card.get("data_licences") or []:
        lines.append(kv("data licence", licence))
    return lines
