"""Bad options, model files, recipes, checkpoints and outputs given to ``scisr``: each is refused with one
line (``error: …`` exit 1, or argparse usage exit 2), nothing is written and every input is untouched."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import sciSR
from sciSR.cli import main
from sciSR.hub import save_model
from sciSR.models import create_model


@dataclass(frozen=True)
class CliCase:
    """``argv(tmp_path, image) -> list of str``; the one-line message holds ``expect``; exit ``code``."""

    id: str
    argv: Callable[[Path, Path], list[str]]
    expect: str
    code: int = 1


def _model_file(tmp: Path, mutate: Callable[[Path], None] | None = None) -> Path:
    torch.manual_seed(0)
    path = save_model(create_model("srcnn", scale=2, spatial_dims=2, in_channels=1), tmp / "m.safetensors")
    if mutate is not None:
        mutate(path)
    return path


def _nan_weights(path: Path) -> None:
    net = sciSR.load_model(path)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    next(iter(state.values())).fill_(float("nan"))
    save_file(state, str(path))


def _card(path: Path, edit: Callable[[dict], object]) -> None:
    card_path = path.with_suffix(".json")
    card = json.loads(card_path.read_text())
    edit(card)
    card_path.write_text(json.dumps(card))


def _recipe(tmp: Path, text: str) -> str:
    path = tmp / "recipe.yaml"
    path.write_text(text)
    return str(path)


def _up(*options: str) -> Callable[[Path, Path], list[str]]:
    return lambda tmp, img: ["upscale", str(img), str(tmp / "out.png"), *options]


CASES = [
    # Options: argparse-level usage errors (exit 2).
    CliCase("scale-zero", _up("--scale", "0"), "must be ≥ 1", 2),
    CliCase("scale-negative", _up("--scale", "-2"), "must be ≥ 1", 2),
    CliCase("scale-not-integer", _up("--scale", "2.5"), "integers like 2", 2),
    CliCase("tile-zero", _up("--model", "generic-x2", "--tile", "0"), "positive integer", 2),
    CliCase("tile-negative", _up("--model", "generic-x2", "--tile", "-5"), "positive integer", 2),
    CliCase("device-unknown", _up("--scale", "2", "--device", "banana"), "device must be", 2),
    CliCase("interpolation-without-scale", _up(), "needs --scale", 2),
    CliCase("tile-with-interpolation", _up("--scale", "2", "--tile", "64"), "--tile applies to networks", 2),
    CliCase("consistency-with-interpolation", _up("--scale", "2", "--consistency", "on"), "--consistency applies", 2),
    CliCase("guard-with-interpolation", _up("--scale", "2", "--guard"), "--guard applies", 2),
    CliCase("consistency-unknown", _up("--model", "generic-x2", "--consistency", "maybe"), "invalid choice", 2),
    CliCase("flux-unknown", _up("--scale", "2", "--flux", "double"), "invalid choice", 2),
    CliCase("domain-unknown", _up("--scale", "2", "--domain", "xray"), "invalid choice", 2),
    CliCase("one-path-only", lambda tmp, img: ["upscale", str(img), "--scale", "2"], "takes IN OUT", 2),
    CliCase("batch-without-out-dir", lambda tmp, img: ["upscale", "--batch", str(img), "--scale", "2"],
            "--out-dir", 2),
    CliCase("self-supervised-with-stack", _up("--self-supervised", "--stack", "x.nii"), "--self-supervised takes", 2),
    CliCase("evaluate-baseline-unknown", lambda tmp, img: ["evaluate", str(img), "--model", "cubic", "--baseline",
                                                          "sinc"], "invalid choice", 2),
    CliCase("train-without-recipe", lambda tmp, img: ["train"], "a recipe name or YAML file is required", 2),
    # Models: one line naming the model file (exit 1).
    CliCase("model-unknown-name", _up("--model", "no-such-model"), "no-such-model"),
    CliCase("model-pickle-refused", lambda tmp, img: _up("--model", str(_pickle(tmp)))(tmp, img), "pickle"),
    CliCase("model-card-bad-scale", lambda tmp, img: _up("--model", str(_model_file(
        tmp, lambda p: _card(p, lambda c: c.update(scale=[0, 2])))))(tmp, img), "scale"),
    CliCase("model-card-not-json", lambda tmp, img: _up("--model", str(_model_file(
        tmp, lambda p: p.with_suffix(".json").write_text("{not json"))))(tmp, img), "m.json"),
    CliCase("model-card-unknown-arch", lambda tmp, img: _up("--model", str(_model_file(
        tmp, lambda p: _card(p, lambda c: c.update(arch="nope")))))(tmp, img), "unknown architecture"),
    CliCase("model-card-disagrees", lambda tmp, img: _up("--model", str(_model_file(
        tmp, lambda p: _card(p, lambda c: c["options"].update(features=7)))))(tmp, img), "options do not build"),
    CliCase("model-weights-nan", lambda tmp, img: _up("--model", str(_model_file(tmp, _nan_weights)))(tmp, img),
            "NaN/inf"),
    CliCase("model-weights-truncated", lambda tmp, img: _up("--model", str(_model_file(
        tmp, lambda p: p.write_bytes(p.read_bytes()[:40]))))(tmp, img), "m.safetensors"),
    CliCase("model-wrong-scale", _up("--model", "generic-x2", "--scale", "3"), "produces scale"),
    # Outputs (exit 1, nothing written).
    CliCase("output-is-input", lambda tmp, img: ["upscale", str(img), str(img), "--scale", "2", "--overwrite"],
            "is the input"),
    CliCase("output-folder-holds-input", lambda tmp, img: ["upscale", str(img), str(tmp), "--scale", "2",
                                                          "--overwrite"], "input"),
    CliCase("output-unknown-suffix", lambda tmp, img: ["upscale", str(img), str(tmp / "o.xyz"), "--scale", "2"],
            "unknown format"),
    CliCase("output-folder-missing", lambda tmp, img: ["upscale", str(img), str(tmp / "no" / "o.png"), "--scale",
                                                      "2"], "does not exist"),
    CliCase("runaway-scale", _up("--scale", "1000"), "output voxels"),
    CliCase("input-missing", lambda tmp, img: ["upscale", str(tmp / "missing.png"), str(tmp / "o.png"), "--scale",
                                              "2"], "no such file"),
    # Recipes and checkpoints (exit 1).
    CliCase("recipe-unknown-name", lambda tmp, img: ["train", "no_such_recipe"], "no_such_recipe"),
    CliCase("recipe-not-yaml", lambda tmp, img: ["train", _recipe(tmp, "model: [unclosed\n")], "recipe.yaml"),
    CliCase("recipe-unknown-section", lambda tmp, img: ["train", _recipe(tmp, "nonsense: {a: 1}\n")], "nonsense"),
    CliCase("checkpoint-truncated",
            lambda tmp, img: ["train", "shipped/generic-x2", "--resume", str(_truncated_ckpt(tmp))], "last.ckpt"),
]


def _pickle(tmp: Path) -> Path:
    path = tmp / "m.pt"
    torch.save({"w": torch.zeros(1)}, path)
    return path


def _truncated_ckpt(tmp: Path) -> Path:
    path = tmp / "last.ckpt"
    path.write_bytes(b"PK\x03\x04 truncated")
    return path


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(folder.rglob("*"))}


def test_catalogue_size():
    assert len(CASES) >= 30 and len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_cli_refuses(case, tmp_path):
    image = tmp_path / "in.png"
    sciSR.write(sciSR.SciImage.from_array(np.linspace(0, 1, 96 * 96, dtype=np.float32).reshape(96, 96)), image)
    argv = case.argv(tmp_path, image)
    before = _snapshot(tmp_path)
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except SystemExit as exit_:
            code = exit_.code
    text = err.getvalue()
    assert code == case.code, text
    lines = [ln for ln in text.splitlines() if not ln.startswith(("warning:", "note:"))]
    if case.code == 1:
        assert len(lines) == 1 and lines[0].startswith("error: ") and case.expect in lines[0], text
        assert "Traceback" not in text
    else:
        assert case.expect in text and "Traceback" not in text, text
    assert _snapshot(tmp_path) == before  # nothing written, nothing changed
