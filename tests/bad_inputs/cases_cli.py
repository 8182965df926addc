"""Catalogue of bad ``scisr`` uses: options, model files, recipes, checkpoints, outputs, run time, a full
disk and signals. Each must end with one line (``error: …``, exit 1; argparse usage, exit 2; a signal,
128 + its number), with nothing written and every input untouched.

Add a case by appending ``CliCase(id, argv, expect, code, patch)`` to :data:`CASES`: ``argv(tmp_path, image)``
builds the command line (``image`` is a 96 × 96 PNG in ``tmp_path``), ``expect`` is a fragment of the one
line, ``patch()`` a context manager the case runs under (an environment variable, a writer that fills the
disk). :data:`SIGNAL_CASES` kill a real ``scisr upscale`` in a child process once its output's temporary
exists. test_bad_cli.py asserts them; benchmarks/bad_input_table.py prints them as a table. The runners
here need no pytest.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import nibabel
import numpy as np
import pydicom
import torch
from astropy.io import fits
from safetensors.torch import save_file

import sciSR
import sciSR.io.raster
from sciSR.cli import main
from sciSR.hub import save_model
from sciSR.models import create_model
from sciSR.paging import MAX_HOURS_ENV
from sciSR.tempfiles import TEMP_PREFIX

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class CliCase:
    """``argv(tmp_path, image) -> list of str`` run under ``patch()``; the one line holds ``expect``; exit ``code``."""

    id: str
    argv: Callable[[Path, Path], list[str]]
    expect: str
    code: int = 1
    patch: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext


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


def _drizzle_argv(tmp: Path, shift_deg: float = 0.0, second_units: str = "electrons", model: str = "drizzle"
                  ) -> list[str]:
    """Two 32 × 32 sky frames with TAN WCS, the second shifted by ``shift_deg`` and in ``second_units``,
    combined with ``model`` (drizzle, or fusion by sky position)."""
    paths = []
    for k, (shift, units) in enumerate(((0.0, "electrons"), (shift_deg, second_units))):
        header = fits.Header({"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRVAL1": 150.0 + shift, "CRVAL2": 2.0,
                              "CRPIX1": 16.5, "CRPIX2": 16.5, "CDELT1": -1e-4, "CDELT2": 1e-4, "BUNIT": units})
        paths.append(tmp / f"frame{k}.fits")
        fits.writeto(paths[-1], np.full((32, 32), 10.0, np.float32), header)
    return ["upscale", "--stack", str(paths[0]), "--stack", str(paths[1]), str(tmp / "drizzled.fits"),
            "--model", model, "--scale", "2"]


def _env(**values: str) -> Callable[[], contextlib.AbstractContextManager]:
    return lambda: mock.patch.dict(os.environ, values)


def _disk_fills(target: object, name: str) -> Callable[[], contextlib.AbstractContextManager]:
    """``target.name`` (a writer taking the file as its second argument) runs out of space at the end: its
    file is left half-written, then ENOSPC is raised as the operating system would."""
    @contextlib.contextmanager
    def patch() -> Iterator[None]:
        original = getattr(target, name)

        def fill_then_fail(*args, **kwargs):
            original(*args, **kwargs)
            path = Path(args[1])
            path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), os.fspath(path))

        with mock.patch.object(target, name, fill_then_fail):
            yield
    return patch


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
    CliCase("adapt-zero", _up("--model", "generic-x2", "--adapt", "0"), "positive number of seconds", 2),
    CliCase("adapt-negative", _up("--model", "generic-x2", "--adapt", "-5"), "positive number of seconds", 2),
    CliCase("adapt-not-a-number", _up("--model", "generic-x2", "--adapt", "soon"), "positive number of seconds", 2),
    CliCase("adapt-with-interpolation", _up("--scale", "2", "--adapt", "10"), "--adapt cannot be combined", 2),
    CliCase("adapt-with-self-supervised", _up("--scale", "2", "--self-supervised", "--adapt", "10"),
            "--adapt cannot be combined", 2),
    CliCase("adapt-through-plane-model", _up("--model", "mri-thick-x4", "--adapt", "10"),
            "adapt= learns an in-plane scale"),
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
    # Run time (exit 1): the estimate above the limit (lowered so that a small job is "huge").
    CliCase("runtime-over-limit", _up("--model", "generic-x2"), "would take about",
            patch=_env(**{MAX_HOURS_ENV: "1e-9"})),
    CliCase("runtime-limit-not-a-number", _up("--scale", "2"), f"{MAX_HOURS_ENV}: must be a positive number",
            patch=_env(**{MAX_HOURS_ENV: "a day"})),
    # A full disk while the output is written (exit 1): one line naming the OUTPUT, nothing half-written.
    CliCase("disk-full-png", _up("--scale", "2"), "out.png: no space left on device",
            patch=_disk_fills(sciSR.io.raster, "write")),
    CliCase("disk-full-nifti", lambda tmp, img: ["upscale", str(img), str(tmp / "out.nii.gz"), "--scale", "2"],
            "out.nii.gz: no space left on device", patch=_disk_fills(nibabel, "save")),
    CliCase("disk-full-fits", lambda tmp, img: ["upscale", str(img), str(tmp / "out.fits"), "--scale", "2"],
            "out.fits: no space left on device", patch=_disk_fills(fits.HDUList, "writeto")),
    CliCase("disk-full-dicom-folder", lambda tmp, img: ["upscale", str(img), str(tmp / "series"), "--scale", "2"],
            "series: no space left on device", patch=_disk_fills(pydicom.Dataset, "save_as")),
    # Output voxel size instead of a factor (the PNG has 1 × 1 pixels).
    CliCase("spacing-zero", _up("--spacing", "0"), "spacing must be positive", 2),
    CliCase("spacing-negative", _up("--spacing", "-0.5"), "spacing must be positive", 2),
    CliCase("spacing-not-a-number", _up("--spacing", "fine"), "spacing must be positive", 2),
    CliCase("spacing-unknown-unit", _up("--spacing", "0.5parsnips"), "unknown unit", 2),
    CliCase("spacing-with-scale", _up("--spacing", "0.5", "--scale", "2"), "not --scale and --spacing", 2),
    CliCase("spacing-with-isotropic", _up("--spacing", "0.5", "--isotropic"), "not --spacing and --isotropic", 2),
    CliCase("spacing-coarser-than-input", _up("--spacing", "2"), "coarser than the input's 1", 1),
    CliCase("spacing-finer-than-model-reaches", _up("--model", "generic-x2", "--spacing", "0.3"),
            "needs ×3.33 there; generic-x2 reaches ×2", 1),
    CliCase("spacing-angle-on-a-png", _up("--spacing", "0.5arcsec"), "is not in units of mm", 1),
    CliCase("spacing-count-per-axis", _up("--spacing", "0.5,0.5,0.5"), "has 3 values but the image has 2", 1),
    # Dithered sky frames for drizzle: they must overlap and share BUNIT.
    CliCase("drizzle-frames-not-overlapping", lambda tmp, img: _drizzle_argv(tmp, shift_deg=1.0),
            "does not overlap", 1),
    CliCase("drizzle-mixed-bunit", lambda tmp, img: _drizzle_argv(tmp, second_units="MJy/sr"), "BUNIT", 1),
    # The same frames fused by sky position (interpolation average; a multi-input model takes the same path).
    CliCase("fusion-frames-not-overlapping", lambda tmp, img: _drizzle_argv(tmp, shift_deg=1.0, model="cubic"),
            "does not overlap", 1),
    CliCase("fusion-mixed-bunit", lambda tmp, img: _drizzle_argv(tmp, second_units="MJy/sr", model="cubic"),
            "BUNIT", 1),
    CliCase("flux-with-reference", _up("--model", "generic-x2", "--reference", "r.png", "--flux", "conserve"),
            "--flux goes with --stack", 2),
]


def _pickle(tmp: Path) -> Path:
    path = tmp / "m.pt"
    torch.save({"w": torch.zeros(1)}, path)
    return path


def _truncated_ckpt(tmp: Path) -> Path:
    path = tmp / "last.ckpt"
    path.write_bytes(b"PK\x03\x04 truncated")
    return path




def snapshot(folder: Path) -> dict[str, str]:
    """Every file and folder under ``folder`` (hidden ones included), files with their SHA-256."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(folder.rglob("*"))}


def write_image(folder: Path) -> Path:
    """The input of :data:`CASES`: a 96 × 96 ramp as ``folder/in.png``."""
    image = folder / "in.png"
    sciSR.write(sciSR.SciImage.from_array(np.linspace(0, 1, 96 * 96, dtype=np.float32).reshape(96, 96)), image)
    return image


@dataclass(frozen=True)
class Outcome:
    """What a case did: exit ``code``, ``stderr``, and whether anything under its folder changed."""

    code: int | str | None
    stderr: str
    changed: bool

    @property
    def lines(self) -> list[str]:
        """stderr without ``warning:`` / ``note:`` lines (which may accompany the error)."""
        return [ln for ln in self.stderr.splitlines() if not ln.startswith(("warning:", "note:"))]


def run_main(argv: list[str]) -> tuple[int | str | None, str]:
    """``scisr argv`` in this process: the exit code and stderr (stdout is dropped)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except SystemExit as exit_:  # argparse's usage errors
            code = exit_.code
    return code, err.getvalue()


def run_case(case: CliCase, folder: Path) -> Outcome:
    """Run ``case`` in the empty ``folder`` (its input image is written there first)."""
    image = write_image(folder)
    argv = case.argv(folder, image)
    before = snapshot(folder)
    with case.patch():
        code, text = run_main(argv)
    return Outcome(code, text, snapshot(folder) != before)


@dataclass(frozen=True)
class SignalCase:
    """``signum`` sent to ``scisr upscale`` while it writes its output; exit ``code``, one line holding ``expect``."""

    id: str
    signum: int
    code: int
    expect: str


SIGNAL_CASES = [
    SignalCase("sigterm-while-writing", signal.SIGTERM, 143, "error: terminated (SIGTERM); temporary files removed"),
    SignalCase("sigint-while-writing", signal.SIGINT, 130, "error: interrupted (SIGINT); temporary files removed"),
]


def run_signal_case(case: SignalCase, folder: Path, timeout_s: float = 300.0) -> tuple[Outcome, bool]:
    """Start ``scisr upscale`` (cubic ×16 of a 256² noise PNG into a 64 MB ``.nii.gz``, a few seconds of
    compression) in a child process, send ``case.signum`` as soon as the output's temporary exists, wait.

    Returns
    -------
    outcome : Outcome
        ``changed`` compares the folder with its state before the run.
    signalled_mid_write : bool
        The temporary was seen and the signal sent while the child still ran (else the child ended first).
    """
    rng = np.random.default_rng(0)
    image = folder / "noise.png"
    sciSR.write(sciSR.SciImage.from_array(rng.random((256, 256)).astype(np.float32)), image)
    before = snapshot(folder)
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    child = subprocess.Popen([sys.executable, "-m", "sciSR.cli", "upscale", str(image), str(folder / "out.nii.gz"),
                              "--model", "cubic", "--scale", "16"], cwd=folder, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    signalled = False
    try:
        deadline = time.monotonic() + timeout_s
        while child.poll() is None and time.monotonic() < deadline:
            if any(p.name.startswith(TEMP_PREFIX) for p in folder.iterdir()):
                child.send_signal(case.signum)
                signalled = True
                break
            time.sleep(0.01)
        _, err = child.communicate(timeout=timeout_s)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    return Outcome(child.returncode, err, snapshot(folder) != before), signalled
