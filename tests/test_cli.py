"""`scisr` CLI: exit codes, one-line errors, nothing half-written (docs/architecture.md §2)."""

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

import sciSR
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


@pytest.mark.parametrize(
    "options,message",
    [
        (["--scale", "0"], "must be ≥ 1"),
        (["--scale", "-2"], "must be ≥ 1"),
        (["--scale", "2,a"], "integers like 2"),
        (["--scale", "2", "--tile", "0"], "positive integer"),
        (["--scale", "2", "--tile", "-5"], "positive integer"),
        (["--model", "generic-x2", "--tile", "0"], "positive integer"),
        (["--scale", "2", "--device", "banana"], "device must be"),
        ([], "needs --scale"),
        (["--scale", "2", "--tile", "64"], "--tile applies to networks"),
    ],
)
def test_bad_options_are_usage_errors_exit_2(tmp_path, options, message):
    rc, _, err = run("upscale", ANATOMICAL, str(tmp_path / "out.nii"), *options)
    assert rc == 2 and message in err, err
    assert list(tmp_path.iterdir()) == []


def test_debug_shows_traceback(tmp_path):
    rc, _, err = run("--debug", "info", str(tmp_path / "nope.nii"))
    assert rc == 1 and "Traceback" in err


# --- multi-input upscaling: --stack and --reference ------------------------------------------------------------


def _stacks_of_anatomical(tmp_path):
    """Two thick-slice stacks (along k and along i) of nibabel's anatomical.nii, written as NIfTI."""
    import sciSR
    from sciSR.data.multi_input_samples import simulate_stacks

    img = sciSR.read(ANATOMICAL)
    img = img.replace(array=img.array[:16, :4, :12])
    paths = []
    for n, stack in enumerate(simulate_stacks(img, [(1, 1, 2), (2, 1, 1)])):
        paths.append(str(tmp_path / f"stack{n}.nii.gz"))
        sciSR.write(stack.replace(domain="mri"), paths[-1])
    return img, paths


def test_stacks_are_fused_onto_the_first_stacks_grid(tmp_path):
    img, (a, b) = _stacks_of_anatomical(tmp_path)
    target = tmp_path / "fused.nii.gz"
    rc, out, err = run("upscale", "--stack", a, "--stack", b, str(target), "--model", "linear", "--scale", "1,1,2")
    assert rc == 0, err
    fused = nib.load(target)
    assert fused.shape == (16, 4, 12)
    np.testing.assert_allclose(fused.affine, img.affine, atol=1e-4)  # stack a's grid ×(1,1,2) = the HR grid
    assert "->" in out


def test_reference_guided_upscale_from_files(tmp_path):
    import torch

    from sciSR.hub import save_model
    from sciSR.models import create_model

    _, (a, _) = _stacks_of_anatomical(tmp_path)
    torch.manual_seed(0)
    net = create_model("ttsr", scale=(1, 2), spatial_dims=2, features=4, n_blocks=1, tail_blocks=1,
                       texture_features=4, search_radius=1)
    model = save_model(net, tmp_path / "ttsr.safetensors", normalisation={"method": "percentile"})
    target = tmp_path / "sr.nii.gz"
    rc, _, err = run("upscale", a, str(target), "--model", str(model), "--reference", ANATOMICAL, "--device", "cpu",
                     "--scale", "1,1,2")
    assert rc == 0, err
    assert nib.load(target).shape == (16, 4, 12)


def test_multi_input_errors_are_one_line_and_write_nothing(tmp_path):
    _, (a, b) = _stacks_of_anatomical(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    out = str(tmp_path / "o.nii.gz")
    rc, _, err = run("upscale", a, out, "--model", "cubic", "--scale", "1,1,2", "--reference", b)
    assert rc == 1 and "takes no reference" in err and err.count("\n") == 1
    rc, _, err = run("upscale", "--stack", a, "--stack", str(tmp_path / "missing.nii"), out, "--scale", "2")
    assert rc == 1 and "missing.nii" in err and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    rc, _, err = run("upscale", "--stack", a, "--stack", b, "x.nii", out)
    assert rc == 2 and "one OUT" in err
    rc, _, err = run("upscale", "--stack", a, out, "--reference", b)
    assert rc == 2 and "not both" in err


def _thick_knee(tmp_path):
    """A 20 × 20 × 5 knee phantom slab: 2 mm slices over 0.5 mm pixels, as a NIfTI file."""
    from sciSR.data.phantoms import knee_phantom
    from sciSR.degrade.mri import thick_slice

    thick = thick_slice(knee_phantom((20, 20, 20), seed=4).array, (1, 1, 4))
    path = tmp_path / "thick.nii.gz"
    nib.save(nib.Nifti1Image(thick, np.diag([0.5, 0.5, 2.0, 1.0])), path)
    return path


def test_self_supervised_upscale_from_the_header(tmp_path):
    import torch

    source, target = _thick_knee(tmp_path), tmp_path / "iso.nii.gz"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a shared CPU: two threads mostly wait for each other
    try:
        rc, out, err = run("upscale", str(source), str(target), "--self-supervised", "--time-budget", "2",
                           "--device", "cpu")
    finally:
        torch.set_num_threads(threads)
    assert rc == 0, err
    assert "self-supervised" in out and "[1, 1, 4]" in out
    written = nib.load(target)
    assert written.shape == (20, 20, 20)
    np.testing.assert_allclose(written.header.get_zooms(), (0.5, 0.5, 0.5))
    # FOV kept: the first output slice centre sits 3/8 of a thick slice before the first input slice centre.
    np.testing.assert_allclose(written.affine[2, 3], -0.75)

    # Consistency (default on) makes the result thick-slice back to the input; --consistency off does not.
    from sciSR.degrade.mri import thick_slice

    torch.set_num_threads(1)
    try:
        rc, _, err = run("upscale", str(source), str(tmp_path / "raw.nii.gz"), "--self-supervised", "--time-budget",
                         "2", "--device", "cpu", "--consistency", "off")
    finally:
        torch.set_num_threads(threads)
    assert rc == 0, err
    lr = np.asarray(nib.load(source).dataobj, dtype=np.float64)
    residual = {name: np.abs(thick_slice(np.asarray(nib.load(tmp_path / name).dataobj, dtype=np.float64),
                                         (1, 1, 4)) - lr).max() for name in ("iso.nii.gz", "raw.nii.gz")}
    assert residual["iso.nii.gz"] < 1e-3 * np.abs(lr).max() < residual["raw.nii.gz"], residual


def test_self_supervised_usage_and_data_errors(tmp_path):
    source = _thick_knee(tmp_path)
    out = str(tmp_path / "o.nii.gz")
    rc, _, err = run("upscale", "--batch", str(source), "--out-dir", str(tmp_path), "--self-supervised")
    assert rc == 2 and "--self-supervised takes IN OUT" in err
    rc, _, err = run("upscale", str(source), out, "--self-supervised", "--model", "linear")
    assert rc == 2 and "--model" in err
    rc, _, err = run("upscale", str(source), out, "--self-supervised", "--axis", "5")
    assert rc == 1 and "axis 5 is out of range" in err and err.count("\n") == 1
    rc, _, err = run("upscale", str(source), out, "--self-supervised", "--time-budget", "0")
    assert rc == 1 and "time_budget_s must be positive" in err
    assert not (tmp_path / "o.nii.gz").exists()


def test_runaway_scale_is_refused_before_any_work(tmp_path):
    png = tmp_path / "in.png"
    sciSR.write(sciSR.SciImage.from_array(np.zeros((96, 96), np.float32)), png)
    rc, _, err = run("upscale", str(png), str(tmp_path / "out.png"), "--scale", "1000")
    assert rc == 1 and "1000000 output voxels" in err and "34.3 GiB" in err and "--force" in err
    assert err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png"]


def test_a_closed_pipe_ends_the_output_quietly(tmp_path):
    """``scisr info IN | head -0``: the reader is gone before anything is written; no error line, no traceback."""
    from PIL import Image as PILImage

    image = tmp_path / "in.png"
    PILImage.fromarray(np.zeros((8, 8), np.uint8)).save(image)
    process = subprocess.Popen([sys.executable, "-m", "sciSR.cli", "info", str(image)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    process.stdout.close()  # long before the interpreter has imported sciSR and printed anything
    err = process.stderr.read().decode()
    process.wait(timeout=120)
    assert "BrokenPipe" not in err and "Traceback" not in err and "error" not in err
