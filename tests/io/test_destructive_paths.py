"""Outputs never destroy data: inputs, folders holding them and folders sciSR did not write survive.

Every refusal is checked through :func:`sciSR.upscale_file` and the ``scisr upscale`` CLI: one line
naming the output path and the problem, nothing written, nothing removed, every input byte-identical.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import sciSR
from sciSR.cli import main
from sciSR.errors import SciSRError
from sciSR.io.atomic import MARKER, atomic_output

Refusal = Callable[[Path | str, Path | str, bool], str]


def snapshot(root: Path) -> dict[str, str]:
    """Every entry under ``root``: file contents by hash, links by target, folders by name."""
    tree = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            key = os.fspath(path.relative_to(root))
            if path.is_symlink():
                tree[key] = f"link -> {os.readlink(path)}"
            elif path.is_dir():
                tree[key] = "folder"
            else:
                tree[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return tree


def image(seed: int = 0, shape: tuple[int, ...] = (8, 8)) -> sciSR.SciImage:
    return sciSR.SciImage.from_array(np.random.default_rng(seed).random(shape).astype("float32"))


def png(path: Path, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return sciSR.write(image(seed), path)


def refuse_api(source: Path | str, target: Path | str, overwrite: bool) -> str:
    """``sciSR.upscale_file`` must raise; its one-line message."""
    with pytest.raises(SciSRError) as info:
        sciSR.upscale_file(source, target, "cubic", 2, overwrite=overwrite)
    assert info.value.path == os.fspath(target)
    return str(info.value)


def refuse_cli(source: Path | str, target: Path | str, overwrite: bool) -> str:
    """``scisr upscale`` must exit 1; its stderr without the ``error: `` prefix."""
    args = ["upscale", os.fspath(source), os.fspath(target), "--model", "cubic", "--scale", "2"]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main([*args, *(["--overwrite"] if overwrite else [])])
    assert rc == 1 and out.getvalue() == ""
    assert err.getvalue().startswith("error: ") and err.getvalue().count("\n") == 1
    return err.getvalue().removeprefix("error: ").rstrip("\n")


@pytest.fixture(params=[refuse_api, refuse_cli], ids=["api", "cli"])
def refuse(request) -> Refusal:
    return request.param


def assert_refused(refuse: Refusal, root: Path, source: Path | str, target: Path | str, overwrite: bool,
                   problem: str) -> None:
    """The run is refused with ``<target>: <problem ...>`` and nothing under ``root`` changes."""
    before = snapshot(root)
    message = refuse(source, target, overwrite)
    assert message.startswith(f"{os.fspath(target)}: {problem}"), message
    assert snapshot(root) == before


def upscale(source: Path, target: Path, how: str) -> None:
    """Upscale with overwrite through the API or the CLI; must succeed."""
    if how == "api":
        sciSR.upscale_file(source, target, "cubic", 2, overwrite=True)
    else:
        args = ["upscale", os.fspath(source), os.fspath(target), "--model", "cubic", "--scale", "2", "--overwrite"]
        with contextlib.redirect_stdout(io.StringIO()):
            assert main(args) == 0


# ------------------------------------------------------------------------------------------ refused


@pytest.mark.parametrize("overwrite", [False, True])
def test_output_is_the_input_file(tmp_path, refuse, overwrite):
    src = png(tmp_path / "in.png")
    assert_refused(refuse, tmp_path, src, src, overwrite, f"output is the input {src}")


@pytest.mark.parametrize("overwrite", [False, True])
def test_output_is_the_inputs_folder(tmp_path, refuse, overwrite):
    src = png(tmp_path / "d" / "in.png")
    (tmp_path / "d" / "other.txt").write_text("keep me")
    assert_refused(refuse, tmp_path, src, tmp_path / "d", overwrite, f"output is a folder that holds the input {src}")


def test_output_is_the_inputs_folder_written_by_scisr(tmp_path, refuse):
    # A series sciSR wrote earlier carries the marker; one of its files is now the input.
    series = sciSR.write(image(), tmp_path / "series")
    assert (series / MARKER).is_file()
    src = next(p for p in series.iterdir() if p.suffix == ".dcm")
    assert_refused(refuse, tmp_path, src, series, True, f"output is a folder that holds the input {src}")


def test_output_is_cwd_holding_the_input(tmp_path, refuse, monkeypatch):
    png(tmp_path / "in.png")
    monkeypatch.chdir(tmp_path)
    assert_refused(refuse, tmp_path, "in.png", ".", True, "output is a folder that holds the input in.png")


def test_output_is_a_parent_of_the_input(tmp_path, refuse):
    src = png(tmp_path / "a" / "b" / "in.png")
    assert_refused(refuse, tmp_path, src, tmp_path / "a", True, f"output is a folder that holds the input {src}")


@pytest.mark.parametrize("name", ["sr", "sr.png", "IM0001.dcm"])
def test_output_inside_a_dicom_input_folder(tmp_path, refuse, name):
    series = sciSR.write(image(shape=(8, 8, 3)), tmp_path / "series")
    assert_refused(refuse, tmp_path, series, series / name, True, f"output lies inside the input folder {series}")


@pytest.mark.parametrize("link", [os.symlink, os.link], ids=["symlink", "hardlink"])
def test_output_is_a_link_to_the_input(tmp_path, refuse, link):
    src = png(tmp_path / "in.png")
    link(src, tmp_path / "out.png")
    assert_refused(refuse, tmp_path, src, tmp_path / "out.png", True, f"output is the input {src}")


def test_output_is_a_symlink_to_another_file(tmp_path, refuse):
    # Replacing through the link would silently change a file the user never named.
    src = png(tmp_path / "in.png")
    other = png(tmp_path / "other.png", seed=1)
    (tmp_path / "out.png").symlink_to(other)
    assert_refused(refuse, tmp_path, src, tmp_path / "out.png", True, "output is a symbolic link")


def test_plain_folder_is_never_replaced(tmp_path, refuse):
    src = png(tmp_path / "in.png")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "notes.txt").write_text("keep me")
    assert_refused(refuse, tmp_path, src, tmp_path / "results", True, "output is a folder that sciSR did not write")


def test_existing_output_needs_overwrite(tmp_path, refuse):
    src = png(tmp_path / "in.png")
    png(tmp_path / "out.png", seed=1)
    assert_refused(refuse, tmp_path, src, tmp_path / "out.png", False, "output exists")


# ---------------------------------------------------------------------------------------- replaced


@pytest.mark.parametrize("how", ["api", "cli"])
def test_folder_written_by_scisr_is_replaced(tmp_path, how):
    src = png(tmp_path / "in.png")
    out = sciSR.write(image(seed=1, shape=(4, 4)), tmp_path / "series")
    old = {p.name for p in out.iterdir()}
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    upscale(src, out, how)
    assert hashlib.sha256(src.read_bytes()).hexdigest() == digest
    assert (out / MARKER).is_file() and {p.name for p in out.iterdir()} == old  # IM0001.dcm and the marker
    assert sciSR.read(out).array.shape == (16, 16)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png", "series"]  # nothing set aside is left


@pytest.mark.parametrize("how", ["api", "cli"])
def test_file_that_is_not_an_input_is_replaced(tmp_path, how):
    src = png(tmp_path / "in.png")
    out = png(tmp_path / "out.png", seed=1)
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    upscale(src, out, how)
    assert hashlib.sha256(src.read_bytes()).hexdigest() == digest
    assert sciSR.read(out).array.shape == (16, 16)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png", "out.png"]


def test_dicom_folder_with_marker_reads_as_before(tmp_path):
    series = sciSR.write(image(shape=(8, 8, 3)), tmp_path / "series")
    img = sciSR.read(series)
    assert img.array.shape == (8, 8, 3)
    assert not any("skipped" in note for note in img.meta["notes"])


# -------------------------------------------------------------- the writer alone (no inputs known)


def test_write_never_removes_a_plain_folder(tmp_path):
    (tmp_path / "series").mkdir()
    (tmp_path / "series" / "notes.txt").write_text("keep me")
    before = snapshot(tmp_path)
    with pytest.raises(SciSRError, match="sciSR did not write"):
        sciSR.write(image(), tmp_path / "series", overwrite=True)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("name,problem", [("series", "output is a file; a folder"),
                                          ("out.png", "output is a folder; a file")])
def test_write_replaces_a_file_only_by_a_file_and_a_folder_only_by_a_folder(tmp_path, name, problem):
    if name == "series":
        (tmp_path / name).write_text("keep me")
    else:  # a folder sciSR wrote, by an odd name
        (tmp_path / name).mkdir()
        (tmp_path / name / MARKER).write_text("")
    before = snapshot(tmp_path)
    with pytest.raises(SciSRError, match=problem):
        sciSR.write(image(), tmp_path / name, overwrite=True)
    assert snapshot(tmp_path) == before


def test_write_does_not_follow_a_symlink(tmp_path):
    other = png(tmp_path / "other.png")
    (tmp_path / "out.png").symlink_to(other)
    before = snapshot(tmp_path)
    with pytest.raises(SciSRError, match="symbolic link"):
        sciSR.write(image(seed=1), tmp_path / "out.png", overwrite=True)
    assert snapshot(tmp_path) == before


def test_replace_step_checks_again(tmp_path):
    # The output appears while the writer works: it is kept and the finished temp file dropped.
    target = tmp_path / "out.bin"
    with pytest.raises(SciSRError, match="output exists"), atomic_output(target) as tmp:
        tmp.write_bytes(b"new")
        target.write_bytes(b"appeared meanwhile")
    assert target.read_bytes() == b"appeared meanwhile"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]
