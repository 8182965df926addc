"""Derived DICOM that standard software accepts (docs/architecture.md §4.1).

Every kind of derived series the writer makes is read back by SimpleITK (ITK's GDCM-based series reader, an
implementation independent of pydicom and of our reader) and must have the geometry our reader gives it
(size, spacing, origin and direction in LPS, to 1e-4) and the same values (Hounsfield units for CT). The
files must also pass pydicom's own value checks and carry every Type 1/2 attribute of their IOD; a
template that lacks what cannot be made up is refused.
"""

import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK
from pydicom import config
from pydicom.data import get_testdata_file
from pydicom.dataelem import DataElement
from pydicom.uid import CTImageStorage, MRImageStorage, SecondaryCaptureImageStorage

import sciSR
from sciSR.errors import SciSRError
from sciSR.io import dicom, dicom_iod
from sciSR.io.atomic import MARKER

LPS = np.diag([-1.0, -1.0, 1.0, 1.0])
# A five-slice CT series that pydicom ships (16 x 16 pixels, 2.5 mm slices).
CT_SERIES = Path(get_testdata_file("dicomdirtests/98892001/CT5N/2062")).parent


def _ct_series():
    return sciSR.read(CT_SERIES)


def _reversed_slices():
    # Slice index running against the slice normal: readers must re-sort, not trust the file order.
    img = _ct_series()
    flip = np.diag([1.0, 1.0, -1.0, 1.0])
    flip[2, 3] = img.array.shape[2] - 1
    return img.replace(array=np.ascontiguousarray(img.array[:, :, ::-1]), affine=img.affine @ flip)


def _oblique_mr_without_template():
    # A NIfTI-like float MR volume: no DICOM template, oblique axes, values that need a rescale.
    c, s = np.cos(np.pi / 7), np.sin(np.pi / 7)
    affine = np.array([[0.9 * c, -1.1 * s, 0, 30], [0.9 * s, 1.1 * c, 0, -20], [0, 0, 2.5, 5], [0, 0, 0, 1]])
    values = np.random.default_rng(0).random((7, 5, 3)).astype(np.float32) * 300.0
    return sciSR.SciImage.from_array(values, affine=affine, domain="mri")


CASES = {
    "ct-volume": _ct_series,
    "ct-volume-reversed-slices": _reversed_slices,
    "ct-volume-upscaled-cubic": lambda: sciSR.upscale(_ct_series(), "cubic", scale=2),
    "enhanced-ct-volume": lambda: sciSR.read(get_testdata_file("eCT_Supplemental.dcm")),
    "enhanced-mr-volume": lambda: sciSR.read(get_testdata_file("emri_small.dcm")),
    "mr-volume-oblique-no-template": _oblique_mr_without_template,
    "ct-single-slice": lambda: sciSR.read(get_testdata_file("CT_small.dcm")),
    "mr-single-slice-upscaled-cubic": lambda: sciSR.upscale(sciSR.read(get_testdata_file("MR_small.dcm")), "cubic",
                                                            scale=2),
    "secondary-capture-raster": lambda: sciSR.SciImage.from_array(np.arange(12.0).reshape(3, 4) * 100),
}


def written_files(folder):
    return sorted(p for p in folder.iterdir() if p.name != MARKER)


def assert_values_follow_their_vr(ds):
    """pydicom's VR rules (length, characters, range), raising: its reader converts without checking them."""
    for element in [*ds.file_meta, *ds.iterall()]:
        value = element.value
        if element.VR == "PN" and value is not None:  # PersonName objects are not checked, their text is
            value = str(value)
        DataElement(element.tag, element.VR, value, validation_mode=config.RAISE)


def read_with_simpleitk(folder):
    """The series in ``folder`` as SimpleITK reads it: GDCM sorts the files and applies the rescale."""
    reader = SimpleITK.ImageSeriesReader()
    names = reader.GetGDCMSeriesFileNames(str(folder))
    assert len(names) == len(written_files(folder))
    reader.SetFileNames(names)
    return reader.Execute()


@pytest.mark.parametrize("case", CASES)
def test_simpleitk_reads_the_geometry_and_values_we_read(tmp_path, case):
    img = CASES[case]()
    out = sciSR.write(img, tmp_path / case)
    ours = sciSR.read(out)
    itk = read_with_simpleitk(out)

    n = ours.spatial_ndim
    shape = ours.array.shape if n == 3 else (*ours.array.shape, 1)
    assert itk.GetSize() == shape
    lps = LPS @ ours.affine
    np.testing.assert_allclose(itk.GetSpacing()[:n], ours.spacing, atol=1e-4)
    np.testing.assert_allclose(itk.GetOrigin(), lps[:3, 3], atol=1e-4)
    # ITK's direction columns: row direction, column direction, slice normal (also for a single slice).
    direction = np.reshape(itk.GetDirection(), (3, 3))
    np.testing.assert_allclose(direction, lps[:3, :3] / np.linalg.norm(lps[:3, :3], axis=0), atol=1e-4)

    # SimpleITK's array is [slice, row, column]; ours is [column, row, slice].
    values = np.transpose(SimpleITK.GetArrayFromImage(itk)).astype(np.float64)
    np.testing.assert_allclose(values, ours.array.reshape(shape), atol=1e-4 * max(1.0, np.abs(ours.array).max()))
    first = pydicom.dcmread(written_files(out)[0])
    if first.Modality == "CT":
        assert first.RescaleType == "HU" and values.min() < -500  # air in Hounsfield units, after the rescale
    # And what was written is what SimpleITK sees, to within half a stored step, clipped to the stored range
    # (MR keeps the source's; cubic overshoots it).
    expected = img.array if img.affine is not None else img.array.T  # a raster [y, x] is written transposed
    if case == "ct-volume-reversed-slices":
        expected = expected[:, :, ::-1]  # readers sort the slices along the normal
    expected = np.clip(expected, ours.array.min(), ours.array.max()).reshape(shape)
    np.testing.assert_allclose(values, expected, atol=float(first.get("RescaleSlope") or 1.0) / 2 + 1e-4)


@pytest.mark.parametrize("case, sop_class", [("ct-volume-upscaled-cubic", CTImageStorage),
                                             ("mr-volume-oblique-no-template", MRImageStorage),
                                             ("enhanced-mr-volume", MRImageStorage),
                                             ("secondary-capture-raster", SecondaryCaptureImageStorage)])
def test_every_instance_carries_its_iods_type_1_and_2_attributes(tmp_path, case, sop_class):
    out = sciSR.write(CASES[case](), tmp_path / case)
    types = dicom_iod.attribute_types(sop_class)
    for path in written_files(out):
        ds = pydicom.dcmread(path)
        assert_values_follow_their_vr(ds)
        assert ds.SOPClassUID == sop_class
        for keyword, kind in types.items():
            if kind == 1:
                assert ds.get(keyword) not in (None, ""), keyword
        for module in dicom_iod.IODS[sop_class][1]:
            for keyword in module.type2:
                assert keyword in ds, keyword
    if sop_class != SecondaryCaptureImageStorage:
        assert len(ds.ImageType) == 3  # Value 3 is required for CT and MR images
        assert "PatientPosition" in ds
    else:
        assert "PatientOrientation" in ds and ds.ConversionType == "WSD"
    if case == "enhanced-mr-volume":
        # Classic MR needs these Type 1 values; the enhanced source has none, so they are marked as placeholders.
        assert (ds.ScanningSequence, ds.SequenceVariant) == ("RM", "NONE")
        assert "ScanningSequence and SequenceVariant are placeholders" in ds.DerivationDescription
        assert "RepetitionTime" in ds  # Type 2C: required unless echo planar


def ct_template():
    return pydicom.dcmread(get_testdata_file("CT_small.dcm"), stop_before_pixels=True)


def with_template(template):
    img = sciSR.read(get_testdata_file("CT_small.dcm"))
    return img.replace(meta={**img.meta, "dicom_template": template})


def assert_refused(img, out, *words):
    with pytest.raises(SciSRError) as info:
        sciSR.write(img, out)
    message = str(info.value)
    assert "\n" not in message and str(out) in message
    for word in words:
        assert word in message
    assert not out.exists()


@pytest.mark.parametrize("value", [None, "", "1.2.03.4"])
def test_template_without_a_usable_study_uid_is_refused(tmp_path, value):
    """StudyInstanceUID (Type 1) cannot be made up for a series that claims the template's study."""
    template = ct_template()
    if value is None:
        del template.StudyInstanceUID
    else:
        with warnings.catch_warnings():  # pydicom only warns when an invalid value is set
            warnings.simplefilter("ignore")
            template.StudyInstanceUID = value
    assert_refused(with_template(template), tmp_path / "out", "StudyInstanceUID")


def test_template_values_that_are_not_valid_dicom_are_emptied_or_left_out(tmp_path):
    template = ct_template()
    with pytest.warns(UserWarning):  # pydicom, by default, only warns when an invalid value is set
        template.StudyDate = "1994.11.05"  # ACR-NEMA style: not a DA; Type 2, so written empty
        template.PatientAge = "22Y"  # not an AS; optional, so left out
    out = sciSR.write(with_template(template), tmp_path / "out")
    (path,) = written_files(out)
    ds = pydicom.dcmread(path)
    assert_values_follow_their_vr(ds)
    assert ds.StudyDate == "" and "PatientAge" not in ds
    assert "written empty: StudyDate" in ds.DerivationDescription
    assert "left out: PatientAge" in ds.DerivationDescription


def test_a_value_pydicom_cannot_encode_is_refused_and_the_validation_mode_restored(tmp_path, monkeypatch):
    monkeypatch.setattr(config.settings, "writing_validation_mode", config.WARN)
    template = ct_template()
    # A lone surrogate: pydicom in its default (warn) mode would write a replacement character.
    template.PatientName = "Doe^J\udc80ne"
    assert_refused(with_template(template), tmp_path / "out", "PatientName", "encode")
    assert config.settings.writing_validation_mode == config.WARN
    sciSR.write(with_template(ct_template()), tmp_path / "ok")
    assert config.settings.writing_validation_mode == config.WARN


def test_the_writer_checks_and_saves_every_instance_with_validation_set_to_raise(tmp_path, monkeypatch):
    modes = []

    def check(ds, path):
        modes.append(config.settings.writing_validation_mode)
        dicom_iod.check_instance(ds, path)

    monkeypatch.setattr(dicom, "check_instance", check)
    monkeypatch.setattr(config.settings, "writing_validation_mode", config.WARN)  # pydicom 3's default
    sciSR.write(_ct_series(), tmp_path / "ct")
    assert modes == [config.RAISE] * 5
    assert config.settings.writing_validation_mode == config.WARN


def test_strict_writing_raises_inside_and_restores_after_an_exception(monkeypatch):
    monkeypatch.setattr(config.settings, "writing_validation_mode", config.IGNORE)
    with pytest.raises(RuntimeError), dicom_iod.strict_writing():
        assert config.settings.writing_validation_mode == config.RAISE
        raise RuntimeError("boom")
    assert config.settings.writing_validation_mode == config.IGNORE


def test_check_instance_completes_type_2_and_refuses_missing_type_1(tmp_path):
    out = sciSR.write(with_template(ct_template()), tmp_path / "ct")
    ds = pydicom.dcmread(written_files(out)[0])
    del ds.KVP, ds.PatientPosition
    dicom_iod.check_instance(ds, tmp_path / "ct")
    assert ds.KVP is None and ds.PatientPosition is None  # Type 2 (and 2C for CT): present, empty

    del ds.PixelSpacing
    with pytest.raises(SciSRError, match=r"PixelSpacing \(Image Plane module, DICOM PS3\.3 C\.7\.6\.2\)"):
        dicom_iod.check_instance(ds, tmp_path / "ct")
    ds.PixelSpacing = [0.5, 0.5]
    with pytest.warns(UserWarning):
        ds.SeriesDescription = "x" * 65  # LO holds 64 characters
    with pytest.raises(SciSRError, match="cannot write SeriesDescription"):
        dicom_iod.check_instance(ds, tmp_path / "ct")
