"""`scisr` CLI: exit codes, one-line errors, nothing half-written (GUIDE §2)."""

import contextlib
import io
import os
import shutil
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest
from nibabel.testing import data_path

from sciSR.cli import main
from sciSR.io import atomic

ANATOMICAL = os.path.join(data_path, "anatomical.nii")


def run(*args):
    """Run ``scisr`` in this process; returns (exit code, stdout, stderr) as a user would see them."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(list(args))
        except SystemExit as exit_:  # argparse usage errors
            rc = exit_.code
    return rc, out.getvalue(), err.getvalue()


def test_console_script_describes_a_nifti():
    # The installed entry point itself, in a fresh process, once.
    proc = subprocess.run([sys.executable, "-m", "sciSR.cli", "info", ANATOMICAL], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "nifti" in proc.stdout and "(33, 41, 25)" in proc.stdout and "LAS" in proc.stdout


def test_upscale_writes_file_with_updated_geometry(tmp_path):
    target = tmp_path / "sr.nii.gz"
    assert main(["upscale", ANATOMICAL, str(target), "--model", "cubic", "--scale", "1,1,2"]) == 0
    src, out = nib.load(ANATOMICAL), nib.load(target)
    assert out.shape == (33, 41, 50)
    # The world position of the outer edge of the first slice is unchanged.
    np.testing.assert_allclose(src.affine @ [0, 0, -0.5, 1], out.affine @ [0, 0, -0.5, 1], atol=1e-5)
    assert [p.name for p in tmp_path.iterdir()] == ["sr.nii.gz"]


def test_existing_output_is_refused_without_overwrite(tmp_path):
    target = tmp_path / "sr.nii"
    target.write_bytes(b"keep me")
    rc, _, err = run("upscale", ANATOMICAL, str(target), "--scale", "2")
    assert rc == 1 and err.count("\n") == 1 and "output exists" in err and str(target) in err
    assert target.read_bytes() == b"keep me"
    assert main(["upscale", ANATOMICAL, str(target), "--scale", "1,1,2", "--overwrite"]) == 0


def test_output_equal_to_input_is_refused(tmp_path):
    src = tmp_path / "in.nii"
    shutil.copy(ANATOMICAL, src)
    before = src.read_bytes()
    rc, _, err = run("upscale", str(src), str(src), "--scale", "2", "--overwrite")
    assert rc == 1 and "is the input" in err and err.count("\n") == 1
    assert src.read_bytes() == before


@pytest.mark.parametrize(
    "args,message",
    [
        (["upscale", "missing.nii", "OUT.nii", "--scale", "2"], "no such file"),
        (["upscale", ANATOMICAL, "OUT.nii", "--scale", "0"], "positive integers"),
        (["upscale", ANATOMICAL, "OUT.nii", "--scale", "2,2"], "3 spatial axes"),
        (["upscale", ANATOMICAL, "OUT.xyz", "--scale", "2"], "unknown format"),
        (["upscale", ANATOMICAL, "/nonexistent-dir/OUT.nii", "--scale", "2"], "does not exist"),
    ],
)
def test_bad_input_is_one_line_exit_1_and_nothing_written(tmp_path, args, message):
    args = [a.replace("OUT", str(tmp_path / "out")) for a in args]
    rc, _, err = run(*args)
    assert rc == 1, err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err
    assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_unwritable_folder(tmp_path, monkeypatch, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    # Root may write anywhere, so make the permission check see what an ordinary user would.
    monkeypatch.setattr(atomic.os, "access", lambda path, mode: False)
    assert main(["upscale", ANATOMICAL, str(locked / "o.nii"), "--scale", "2"]) == 1
    err = capsys.readouterr().err
    assert "not writable" in err and err.count("\n") == 1
    locked.chmod(0o700)
    assert list(locked.iterdir()) == []


def test_usage_error_exits_2():
    rc, _, err = run("upscale", ANATOMICAL)
    assert rc == 2 and "usage" in err


def test_debug_shows_traceback(tmp_path):
    rc, _, err = run("--debug", "info", str(tmp_path / "nope.nii"))
    assert rc == 1 and "Traceback" in err
