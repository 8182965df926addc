"""Multi-series DICOM folders: ``read(path, series="all")`` and ``list_series`` (docs/architecture.md §2.1, §4.1).

The study comes from the ``dicom_study`` fixture (tests/conftest.py): four series, in the folder itself
and in sub-folders, and a localizer-only series.
"""

import shutil

import nibabel as nib
import numpy as np
import pytest
from astropy.io import fits
from pydicom.data import get_testdata_file

import sciSR
from sciSR.errors import SciSRError
from sciSR.io import dicom, list_series


def test_read_all_series_count_order_and_geometry(dicom_study):
    folder, expected = dicom_study
    images = sciSR.read(folder, series="all")
    assert [img.meta["series_uid"] for img in images] == [s.uid for s in expected]
    for img, spec in zip(images, expected, strict=True):
        assert img.array.shape == spec.shape
        np.testing.assert_allclose(img.affine, spec.affine, atol=1e-9)
        assert img.domain == ("ct" if spec.modality == "CT" else "mri")
        assert img.meta["series_description"] == spec.description and img.meta["source"] == str(folder)
        # The pixels are this series' own (slice k of series s holds spec.values(k)).
        stored = spec.values(spec.slices - 1).T.astype(np.float32) - (1024 if spec.modality == "CT" else 0)
        np.testing.assert_array_equal(img.array[..., -1] if spec.slices > 1 else img.array, stored)
        assert any("left out localizer series" in note for note in img.meta["notes"])


def test_read_all_equals_reading_each_series(dicom_study):
    folder, expected = dicom_study
    for img, spec in zip(sciSR.read(folder, series="all"), expected, strict=True):
        one = sciSR.read(folder, series=spec.uid)
        np.testing.assert_array_equal(img.array, one.array)
        np.testing.assert_array_equal(img.affine, one.affine)
        # Reading every series also says which localizer series it left out.
        notes = [n for n in img.meta["notes"] if not n.startswith("left out localizer series")]
        assert notes == one.meta["notes"] and img.meta["files"] == one.meta["files"]


def test_list_series_reads_headers_only(dicom_study, monkeypatch):
    folder, expected = dicom_study
    monkeypatch.setattr(dicom, "pixel_array", lambda *a, **k: pytest.fail("list_series decoded pixels"))
    found = list_series(folder)
    assert [(s.uid, s.number, s.description, s.modality, len(s.files)) for s in found] == [
        (s.uid, s.number, s.description, s.modality, s.slices) for s in expected]
    assert found[0].label == "series 2 ('T1 SAG/post')" and found[2].label == "series 7"


def test_single_series_gives_a_list_of_one(tmp_path):
    path = get_testdata_file("CT_small.dcm")
    images = sciSR.read(path, series="all")
    assert len(images) == 1 and images[0].array.shape == sciSR.read(path).array.shape
    folder = tmp_path / "one"
    folder.mkdir()
    shutil.copy(path, folder / "IM1")
    np.testing.assert_array_equal(sciSR.read(folder, series="all")[0].affine, sciSR.read(path).affine)


def test_multi_series_without_series_still_refused(dicom_study):
    folder, _ = dicom_study
    with pytest.raises(SciSRError, match=r"folder holds 4 series; pass series=.*'all'"):
        sciSR.read(folder)
    assert sciSR.read(folder, series="T2 AX").array.shape == (7, 4, 3)


def test_a_broken_series_is_named(dicom_study):
    folder, expected = dicom_study
    # Remove the second of the four slices of "T1 SAG/post": its slice gaps become uneven.
    (folder / expected[0].folder / "10_1.dcm").unlink()
    with pytest.raises(SciSRError) as err:
        sciSR.read(folder, series="all")
    message = str(err.value)
    assert "\n" not in message and str(folder) in message
    assert "series 2 ('T1 SAG/post'): non-uniform slice spacing" in message


@pytest.mark.parametrize("name", ["frame.fits", "volume.nii"])
def test_other_formats_refuse_all(tmp_path, name):
    path = tmp_path / name
    values = np.ones((4, 5), np.float32)
    if name.endswith(".fits"):
        fits.PrimaryHDU(values).writeto(path)
    else:
        nib.save(nib.Nifti1Image(values[..., None], np.eye(4)), path)
    for call in (lambda: sciSR.read(path, series="all"), lambda: list_series(path)):
        with pytest.raises(SciSRError, match=r'series="all" \(--series all\) reads every series of a DICOM folder'):
            call()
