"""`scisr upscale FOLDER OUT --series all` and `scisr info FOLDER` on a study folder (docs/architecture.md §2.3).

The study comes from the ``dicom_study`` fixture (tests/conftest.py): series 2 "T1 SAG/post" (4 slices),
series 2 "T2 AX" (3 slices, in a sub-folder), series 7 without a description (one CT slice), "DWI b1000"
without a number (2 slices), and a localizer-only series that is left out.
"""

import os
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from nibabel.testing import data_path
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

import sciSR
from sciSR.api import series_output_name
from sciSR.cli import main
from sciSR.geometry import upscale_affine
from sciSR.io import dicom
from sciSR.io.atomic import MARKER

NAMES = ["2_T1_SAG_post", "2_T2_AX", "7", "DWI_b1000"]


def _scisr(capsys, *args):
    """Exit code, stdout and stderr of ``scisr ARGS`` (usage errors included)."""
    try:
        rc = main([os.fspath(a) for a in args])
    except SystemExit as exit_:
        rc = exit_.code
    out, err = capsys.readouterr()
    return rc, out, err


def test_upscale_series_all_writes_one_series_folder_per_series(dicom_study, tmp_path, capsys):
    folder, expected = dicom_study
    target = tmp_path / "sr"
    rc, out, err = _scisr(capsys, "upscale", folder, target, "--series", "all", "--model", "cubic", "--scale", "2")
    assert rc == 0, err
    assert sorted(p.name for p in target.iterdir()) == sorted([MARKER, *NAMES])
    assert all(str(target / name) in out for name in NAMES)
    for name, spec in zip(NAMES, expected, strict=True):
        img = sciSR.read(target / name)
        factors = (2,) * len(spec.shape)
        assert img.array.shape == tuple(2 * n for n in spec.shape)
        assert img.meta["modality"] == spec.modality
        assert img.meta["series_description"] == f"{spec.description} SR cubic".strip()
        # The field of view is kept: the outer corner of the first voxel is the same world point.
        corner = [-0.5, -0.5, -0.5 if len(spec.shape) == 3 else 0.0, 1.0]
        np.testing.assert_allclose(img.affine @ corner, spec.affine @ corner, atol=1e-4)
        np.testing.assert_allclose(img.affine, upscale_affine(spec.affine, factors), atol=1e-4)
    # The output folder is itself a study: every derived series reads back.
    assert len(sciSR.read(target, series="all")) == len(NAMES)


def test_series_name_collision_refused_before_any_work(dicom_study, tmp_path, capsys):
    folder, _ = dicom_study
    # A repeated acquisition: same SeriesNumber and SeriesDescription, another SeriesInstanceUID.
    (folder / "again").mkdir()
    for path in sorted(folder.glob("10_*.dcm")):
        ds = pydicom.dcmread(path)
        ds.SeriesInstanceUID, ds.SOPInstanceUID = "1.2.826.0.1.3680043.8.498.30", generate_uid()
        ds.save_as(folder / "again" / path.name)
    rc, _, err = _scisr(capsys, "upscale", folder, tmp_path / "sr", "--series", "all", "--scale", "2")
    assert rc == 1 and err.count("\n") == 1 and err.startswith(f"error: {folder}: ")
    assert "would both be written to 2_T1_SAG_post" in err and "1.2.826.0.1.3680043.8.498.30" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["study"]


def test_a_failing_series_leaves_nothing(dicom_study, tmp_path, capsys):
    folder, _ = dicom_study
    # Three factors suit the volumes but not the single CT slice (series 7), upscaled third.
    rc, _, err = _scisr(capsys, "upscale", folder, tmp_path / "sr", "--series", "all", "--scale", "1,1,2")
    assert rc == 1 and err.count("\n") == 1 and "series 7: " in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["study"]


def test_existing_file_as_out_is_refused(dicom_study, tmp_path, capsys):
    folder, _ = dicom_study
    target = tmp_path / "sr"
    target.write_bytes(b"keep me")
    for extra in ((), ("--overwrite",)):
        rc, _, err = _scisr(capsys, "upscale", folder, target, "--series", "all", "--scale", "2", *extra)
        assert rc == 1 and err.count("\n") == 1 and err.startswith(f"error: {target}: ")
        assert ("output exists" if not extra else "output is a file") in err
    assert target.read_bytes() == b"keep me" and sorted(p.name for p in tmp_path.iterdir()) == ["sr", "study"]


def test_series_all_of_a_file_that_is_not_dicom(tmp_path, capsys):
    source = tmp_path / "anatomical.nii"
    shutil.copy(os.path.join(data_path, "anatomical.nii"), source)
    rc, _, err = _scisr(capsys, "upscale", source, tmp_path / "sr", "--series", "all", "--scale", "2")
    assert rc == 1 and err.count("\n") == 1 and err.startswith(f"error: {source}: ")
    assert 'series="all" (--series all) reads every series of a DICOM folder; this is a nifti file' in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["anatomical.nii"]


@pytest.mark.parametrize("option", [["--batch", "--out-dir", "x"], ["--self-supervised"], ["--hdu", "1"]])
def test_series_all_usage_errors(dicom_study, tmp_path, capsys, option):
    folder, _ = dicom_study
    rc, _, err = _scisr(capsys, "upscale", folder, tmp_path / "sr", "--series", "all", "--scale", "2", *option)
    assert rc == 2 and f"cannot be combined with {option[0]}" in err
    assert not (tmp_path / "sr").exists()


def test_upscale_one_series_by_description(dicom_study, tmp_path, capsys):
    folder, _ = dicom_study
    rc, _, err = _scisr(capsys, "upscale", folder, tmp_path / "t2", "--series", "T2 AX", "--scale", "1,1,2")
    assert rc == 0, err
    assert sciSR.read(tmp_path / "t2").array.shape == (7, 4, 6)


def test_info_lists_every_series(dicom_study, capsys):
    folder, expected = dicom_study
    rc, out, err = _scisr(capsys, "info", folder)
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0].startswith(f"file:        {folder} (4 series")
    assert lines[1].split() == ["series", "description", "modality", "size", "spacing", "(mm)", "uid"]
    rows = lines[2:6]
    for row, spec in zip(rows, expected, strict=True):
        assert row.endswith(spec.uid) and spec.modality in row
        assert ("-" if spec.number is None else str(spec.number)) == row.split()[0]
        assert (spec.description or "-") in row and "×".join(map(str, spec.shape)) in row
    assert "0.6, 0.8, 2.5" in rows[0] and "0.7, 0.7" in rows[2]
    assert any(line.startswith("note:") and "left out localizer series" in line for line in lines[6:])
    # One series by description: the detailed description, as for a single-series folder.
    rc, out, _ = _scisr(capsys, "info", folder, "--series", "T2 AX")
    assert rc == 0 and "shape:       (7, 4, 3)" in out
    # A file is one series; --series all still lists it as a table.
    rc, out, _ = _scisr(capsys, "info", get_testdata_file("CT_small.dcm"), "--series", "all")
    assert rc == 0 and "(1 series" in out and "128×128" in out


@pytest.mark.parametrize("number,description,uid,name", [
    (3, "T1 AX (post)", "1.2.3", "3_T1_AX_post"),
    (12, "../../etc/passwd", "1.2.3", "12_.._.._etc_passwd"),  # one name, no separator
    (None, ".hidden  Kopf ÄÖ", "1.2.3", "hidden_Kopf_ÄÖ"),
    (4, "", "1.2.3", "4"),
    (None, "", "1.2.840.99", "1.2.840.99"),
    (None, "..", "..", "series"),
    (None, "***", "", "series"),
])
def test_series_output_name_is_one_plain_file_name(number, description, uid, name):
    series = dicom.Series(path=Path("study"), uid=uid, number=number, description=description, modality="MR",
                          files=(), notes=())
    assert series_output_name(series) == name
