"""Batch upscaling: loop and Dask LocalCluster give identical results; failures are reported, not fatal."""

import nibabel as nib
import numpy as np
import pytest

import sciSR
from sciSR.cli import main


@pytest.fixture
def volumes(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        affine = np.diag([0.5, 0.5, 2.0 + i, 1.0])
        nib.save(nib.Nifti1Image(rng.random((8, 7, 5)).astype(np.float32), affine), src / f"v{i}.nii.gz")
    (src / "broken.nii.gz").write_bytes(b"not a nifti file")
    return src


def test_loop_reports_each_file_and_keeps_going(volumes, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    results = sciSR.api.upscale_batch([volumes], out, "cubic", (1, 1, 2))
    assert [r.ok for r in results] == [False, True, True, True]
    assert "broken.nii.gz" in results[0].error and "\n" not in results[0].error
    for i in range(3):
        img = nib.load(out / f"v{i}.nii.gz")
        assert img.shape == (8, 7, 10)
        np.testing.assert_allclose(img.header.get_zooms(), (0.5, 0.5, (2.0 + i) / 2), rtol=1e-6)
    assert not (out / "broken.nii.gz").exists()


def test_dask_local_cluster_matches_loop(volumes, tmp_path):
    distributed = pytest.importorskip("distributed")
    loop_dir, dask_dir = tmp_path / "loop", tmp_path / "dask"
    loop_dir.mkdir()
    dask_dir.mkdir()
    files = sorted(volumes.glob("v*.nii.gz"))
    sciSR.api.upscale_batch(files, loop_dir, "cubic", (2, 2, 1))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        results = sciSR.api.upscale_batch(files, dask_dir, "cubic", (2, 2, 1), scheduler=client)
    assert all(r.ok for r in results)
    for f in files:
        a, b = nib.load(loop_dir / f.name), nib.load(dask_dir / f.name)
        np.testing.assert_array_equal(a.get_fdata(), b.get_fdata())
        np.testing.assert_array_equal(a.affine, b.affine)


def test_cli_batch_exit_code_and_summary(volumes, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    rc = main(["upscale", "--batch", str(volumes / "*.nii.gz"), "--out-dir", str(out), "--scale", "2"])
    captured = capsys.readouterr()
    assert rc == 1
    assert "error: " in captured.err and "broken.nii.gz" in captured.err
    assert "3 of 4 upscaled, 1 failed" in captured.err
    assert sorted(p.name for p in out.iterdir()) == ["v0.nii.gz", "v1.nii.gz", "v2.nii.gz"]


def test_two_inputs_with_one_output_name_are_refused_before_any_work(volumes, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "v0.nii.gz").write_bytes((volumes / "v0.nii.gz").read_bytes())
    out = tmp_path / "out"
    out.mkdir()
    clash = r"in/v0\.nii\.gz and .*other/v0\.nii\.gz would both be written to v0\.nii\.gz"
    with pytest.raises(sciSR.SciSRError, match=clash):
        sciSR.api.upscale_batch([volumes / "v0.nii.gz", other / "v0.nii.gz"], out, "cubic", (1, 1, 2))
    # Case-insensitive file systems (macOS, Windows) would write V0 and v0 to one file.
    (other / "V0.nii.gz").write_bytes((volumes / "v0.nii.gz").read_bytes())
    with pytest.raises(sciSR.SciSRError, match=r"would both be written to V0\.nii\.gz"):
        sciSR.api.upscale_batch([volumes / "v0.nii.gz", other / "V0.nii.gz"], out, "cubic", (1, 1, 2))
    assert list(out.iterdir()) == []


def test_a_dicom_study_folder_is_one_input_with_every_series(dicom_study, tmp_path):
    """Its slices are never upscaled one by one: the study becomes one folder with one output per series,
    named as ``upscale_file(..., series="all")`` names them; a one-series folder stays one series."""
    study, expected = dicom_study
    out = tmp_path / "out"
    out.mkdir()
    results = sciSR.upscale_batch([study], out, "linear", 2)
    assert [r.ok for r in results] == [True] and results[0].output == str(out / study.name)
    names = sorted(p.name for p in (out / study.name).iterdir() if not p.name.startswith("."))
    series = sciSR.io.list_series(study)
    assert names == sorted(sciSR.api.series_output_name(s) for s in series) and len(names) == len(expected)
    for s in series:
        result = sciSR.read(out / study.name / sciSR.api.series_output_name(s))
        assert result.spatial_shape[:2] == tuple(2 * n for n in s.read().spatial_shape[:2])
    single = sciSR.upscale_batch([study / "dwi"], out, "linear", 2)
    assert single[0].ok and sciSR.read(out / "dwi").array.ndim >= 2
