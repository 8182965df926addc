"""DICOM reader/writer: pydicom's test files plus small synthetic series written in tmp_path.

Geometry is checked in world coordinates (LPS from the DICOM attributes, RAS from the affine), not only
through shapes.
"""

import random
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

import sciSR
from sciSR.errors import SciSRError
from sciSR.geometry import upscale_affine
from sciSR.io import dicom
from sciSR.io.atomic import MARKER

LPS = np.diag([-1.0, -1.0, 1.0, 1.0])
# An oblique stack: rows along (cos 30°, sin 30°, 0), columns along -z; normal = row x column.
ROW = np.array([np.cos(np.pi / 6), np.sin(np.pi / 6), 0.0])
COL = np.array([0.0, 0.0, -1.0])
NORMAL = np.cross(ROW, COL)
ORIGIN = np.array([-20.0, 35.5, 12.25])
ROWS, COLS = 6, 5  # different, so a transpose cannot go unnoticed
PIXEL_SPACING = (0.8, 0.6)  # (row spacing, column spacing)


def slice_pixels(k, c=0):
    """Stored values that say which slice (k) and channel (c) they belong to."""
    return (1000 + 100 * k + 10 * c + np.arange(ROWS * COLS).reshape(ROWS, COLS)).astype(np.uint16)


def write_slice(path, pixels, *, position, series_uid, instance, orientation=(*ROW, *COL), **extra):
    """One classic MR single-frame file; ``None`` leaves ImagePositionPatient / ImageOrientationPatient out."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = MRImageStorage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.Modality = "MR"
    ds.PatientName, ds.PatientID = "Synthetic^Phantom", "P1"
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.1001"
    ds.FrameOfReferenceUID = "1.2.826.0.1.3680043.8.498.1002"
    ds.SeriesInstanceUID = series_uid
    ds.InstanceNumber = instance
    if orientation is not None:
        ds.ImageOrientationPatient = [float(v) for v in orientation]
    if position is not None:
        ds.ImagePositionPatient = [float(v) for v in position]
    ds.PixelSpacing = list(PIXEL_SPACING)
    ds.SliceThickness = 9.9  # deliberately wrong: spacing must come from the positions
    for key, value in extra.items():
        setattr(ds, key, value)
    ds.set_pixel_data(pixels, "MONOCHROME2", 16, generate_instance_uid=False)
    ds.save_as(path, enforce_file_format=True)


def write_series(folder, positions, *, channels=1, series_uid=None, **extra):
    """Slices at ``positions`` (LPS mm), ``channels`` cine phases each; files and InstanceNumbers shuffled."""
    folder.mkdir(parents=True, exist_ok=True)
    series_uid = series_uid or generate_uid()
    rng = random.Random(7)
    jobs = [(k, c) for k in range(len(positions)) for c in range(channels)]
    numbers = rng.sample(range(1, len(jobs) + 1), len(jobs))
    rng.shuffle(jobs)
    for (k, c), number in zip(jobs, numbers, strict=True):
        cine = {"TriggerTime": 40.0 * c} if channels > 1 else {}
        write_slice(folder / f"{generate_uid()[-12:]}.dcm", slice_pixels(k, c), position=positions[k],
                    series_uid=series_uid, instance=number, **cine, **extra)
    return series_uid


def regular_positions(n=4, spacing=3.0):
    return [ORIGIN + k * spacing * NORMAL for k in range(n)]


def world_lps(ds, r, c):
    """LPS mm of pixel (row r, column c) of a pydicom dataset."""
    iop = np.array(ds.ImageOrientationPatient, float)
    dr, dc = (float(v) for v in ds.PixelSpacing)
    return np.array(ds.ImagePositionPatient, float) + c * dc * iop[:3] + r * dr * iop[3:]


def read_folder(folder):
    # The marker is sciSR's proof that it wrote the folder (it may replace it later), not an instance.
    assert (folder / MARKER).is_file()
    files = (p for p in folder.iterdir() if p.name != MARKER)
    return sorted((pydicom.dcmread(p) for p in files), key=lambda d: int(d.InstanceNumber))


# ------------------------------------------------------------------------------------------- reading


def test_registry_contract(tmp_path):
    assert dicom.SUFFIXES == (".dcm", ".dicom", ".ima")
    assert dicom.sniff(get_testdata_file("CT_small.dcm"))
    (tmp_path / "x.txt").write_text("not dicom")
    assert not dicom.sniff(tmp_path / "x.txt") and not dicom.sniff(tmp_path)


def test_ct_small_hu_and_affine():
    path = get_testdata_file("CT_small.dcm")
    ref = pydicom.dcmread(path)
    img = sciSR.read(path)
    assert img.domain == "ct" and img.meta["units"] == "HU" and img.meta["modality"] == "CT"
    assert img.array.dtype == np.float32 and img.array.shape == (128, 128)
    np.testing.assert_array_equal(img.array, ref.pixel_array.T.astype(np.float32) - 1024)
    assert img.array.min() < -500
    ps = 0.661468
    expected = LPS @ np.array([[ps, 0, 0, -158.135803], [0, ps, 0, -179.035797], [0, 0, 5.0, -75.699997],
                               [0, 0, 0, 1]])
    np.testing.assert_allclose(img.affine, expected, atol=1e-9)
    np.testing.assert_allclose(img.spacing, (ps, ps))
    assert img.meta["stored_range"] == (float(ref.pixel_array.min()), float(ref.pixel_array.max()))
    assert img.meta["stored_dtype"] == "int16" and img.meta["provenance"] == []
    assert "PixelData" not in img.meta["dicom_template"]
    # A voxel index maps to the pixel's DICOM world position (LPS -> RAS).
    np.testing.assert_allclose(img.affine @ [17, 101, 0, 1], LPS @ [*world_lps(ref, 101, 17), 1], atol=1e-9)


def test_mr_small():
    path = get_testdata_file("MR_small.dcm")
    img = sciSR.read(path)
    assert img.domain == "mri" and img.meta["units"] is None
    np.testing.assert_array_equal(img.array, pydicom.dcmread(path).pixel_array.T)
    np.testing.assert_allclose(img.spacing, (0.3125, 0.3125))
    np.testing.assert_allclose(img.affine[:3, 2], [0, 0, 0.8])  # single slice: normal x SliceThickness
    assert sciSR.read(path, domain="generic").domain == "generic"


def test_scanner_interpolation_is_read_from_the_acquisition_matrix(tmp_path):
    plain = sciSR.read(get_testdata_file("MR_small.dcm"))
    assert "acquired" not in plain.meta and not plain.meta["notes"]
    ds = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    # 32 frequency samples along each row (64 columns) and 24 phase lines down the columns covering 75 % of
    # the frequency field of view: 24 / (0.75 · 64) of the lines across the rows.
    ds.AcquisitionMatrix, ds.InPlanePhaseEncodingDirection, ds.PercentPhaseFieldOfView = [32, 0, 0, 24], "COL", 75
    ds.save_as(tmp_path / "zip.dcm")
    img = sciSR.read(tmp_path / "zip.dcm")
    assert img.meta["acquired"] == pytest.approx((0.5, 0.5))
    assert "reconstructed as 64 x 64 from 32 frequency x 24 phase lines" in img.meta["notes"][-1]
    ds.InPlanePhaseEncodingDirection = "ROW"  # phase across the columns now: (24 / 48, 32 / 64)
    ds.AcquisitionMatrix = [0, 32, 36, 0]
    ds.save_as(tmp_path / "row.dcm")
    assert sciSR.read(tmp_path / "row.dcm").meta["acquired"] == pytest.approx((0.75, 0.5))
    ds.AcquisitionMatrix, ds.PercentPhaseFieldOfView = [0, 64, 64, 0], 100  # as acquired: nothing to say
    ds.save_as(tmp_path / "full.dcm")
    assert "acquired" not in sciSR.read(tmp_path / "full.dcm").meta


def test_series_sorted_by_position_not_instance_number(tmp_path):
    positions = regular_positions(5, spacing=3.0)
    write_series(tmp_path / "s" / "sub", positions)
    (tmp_path / "s" / "notes.txt").write_text("not a DICOM file")
    img = sciSR.read(tmp_path / "s")
    assert img.array.shape == (COLS, ROWS, 5)
    for k in range(5):
        np.testing.assert_array_equal(img.array[:, :, k], slice_pixels(k).T)
    np.testing.assert_allclose(img.spacing, (0.6, 0.8, 3.0), atol=1e-9)
    expected = np.eye(4)
    expected[:3, :4] = np.column_stack([ROW * 0.6, COL * 0.8, NORMAL * 3.0, ORIGIN])
    np.testing.assert_allclose(img.affine, LPS @ expected, atol=1e-9)
    assert any("not DICOM" in note for note in img.meta["notes"])
    assert img.channel_axis is None


def test_localizer_left_out(tmp_path):
    uid = write_series(tmp_path, regular_positions(3))
    write_slice(tmp_path / "loc.dcm", slice_pixels(9), position=ORIGIN + 50 * NORMAL, series_uid=uid,
                instance=99, ImageType=["ORIGINAL", "PRIMARY", "LOCALIZER"])
    img = sciSR.read(tmp_path)
    assert img.array.shape[2] == 3
    assert any("localizer" in note for note in img.meta["notes"])


def test_enhanced_ct_geometry_from_functional_groups():
    path = get_testdata_file("eCT_Supplemental.dcm")
    ref = pydicom.dcmread(path)
    img = sciSR.read(path)
    shared = ref.SharedFunctionalGroupsSequence[0]
    ps = [float(v) for v in shared.PixelMeasuresSequence[0].PixelSpacing]
    frames = ref.PerFrameFunctionalGroupsSequence
    z = [float(f.PlanePositionSequence[0].ImagePositionPatient[2]) for f in frames]  # -159, -149
    assert img.array.shape == (512, 512, 2) and img.domain == "ct"
    np.testing.assert_allclose(img.spacing, (ps[1], ps[0], abs(z[1] - z[0])))
    # IOP rows (-1,0,0) x columns (0,1,0): the normal is -z, so frame 1 (z = -149) comes first.
    np.testing.assert_array_equal(img.array[:, :, 0], ref.pixel_array[1].T.astype(np.float32) - 1024)
    np.testing.assert_allclose(img.affine[:3, 3], LPS[:3, :3] @ [99.5, -301.5, -149.0])


def test_emri_small_without_geometry_keeps_stated_spacing():
    """emri_small.dcm has no functional groups at all: stored frame order, SpacingBetweenSlices, notes."""
    path = get_testdata_file("emri_small.dcm")
    ref = pydicom.dcmread(path)
    img = sciSR.read(path)
    assert img.array.shape == (64, 64, 10) and img.domain == "mri"
    np.testing.assert_allclose(img.spacing, (1.0, 1.0, float(ref.SpacingBetweenSlices)))
    np.testing.assert_array_equal(img.array, np.transpose(ref.pixel_array, (2, 1, 0)))
    assert any("PixelSpacing" in note for note in img.meta["notes"])


def test_enhanced_mr_functional_groups(tmp_path):
    """emri_small with functional groups added: per-frame positions (shuffled), shared measures, rescale."""
    ds = pydicom.dcmread(get_testdata_file("emri_small.dcm"))
    order = [3, 0, 9, 5, 1, 7, 2, 8, 4, 6]  # frame f sits at slice position order[f]
    shared = Dataset()
    measures, plane, transform = Dataset(), Dataset(), Dataset()
    measures.PixelSpacing, measures.SliceThickness = [0.5, 0.7], 3.0
    plane.ImageOrientationPatient = [*ROW, *COL]
    transform.RescaleSlope, transform.RescaleIntercept, transform.RescaleType = 2, -10, "US"
    shared.PixelMeasuresSequence = Sequence([measures])
    shared.PlaneOrientationSequence = Sequence([plane])
    shared.PixelValueTransformationSequence = Sequence([transform])
    per_frame = []
    for f in range(10):
        item, position = Dataset(), Dataset()
        position.ImagePositionPatient = [float(v) for v in ORIGIN + 1.5 * order[f] * NORMAL]
        item.PlanePositionSequence = Sequence([position])
        per_frame.append(item)
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    ds.PerFrameFunctionalGroupsSequence = Sequence(per_frame)
    ds.save_as(tmp_path / "emri_fg.dcm")

    img = sciSR.read(tmp_path / "emri_fg.dcm")
    np.testing.assert_allclose(img.spacing, (0.7, 0.5, 1.5), atol=1e-9)
    stored = pydicom.dcmread(get_testdata_file("emri_small.dcm")).pixel_array
    for f in range(10):
        np.testing.assert_array_equal(img.array[:, :, order[f]], 2.0 * stored[f].T - 10)
    np.testing.assert_allclose(img.affine[:3, 3], LPS[:3, :3] @ ORIGIN, atol=1e-9)
    assert img.meta["rescale"] == (2.0, -10.0)


@pytest.mark.parametrize(("compressed", "plain"), [
    ("MR_small_RLE.dcm", "MR_small.dcm"),
    ("MR_small_jp2klossless.dcm", "MR_small.dcm"),
    ("MR_small_jpeg_ls_lossless.dcm", "MR_small.dcm"),
    ("emri_small_jpeg_2k_lossless.dcm", "emri_small.dcm"),
])
def test_compressed_decodes_like_uncompressed(compressed, plain):
    a, b = sciSR.read(get_testdata_file(compressed)), sciSR.read(get_testdata_file(plain))
    np.testing.assert_array_equal(a.array, b.array)
    np.testing.assert_allclose(a.affine, b.affine)


def test_rt_dose_frame_offsets_and_scaling():
    path = get_testdata_file("rtdose.dcm")
    ref = pydicom.dcmread(path)
    img = sciSR.read(path)
    np.testing.assert_allclose(img.spacing, (10.0, 10.0, 5.0))
    np.testing.assert_allclose(img.array[:, :, 3], ref.pixel_array[3].T * float(ref.DoseGridScaling), rtol=1e-6)


def test_cine_becomes_channel_axis_and_survives_write(tmp_path):
    write_series(tmp_path / "cine", regular_positions(3), channels=4)
    img = sciSR.read(tmp_path / "cine")
    assert img.array.shape == (COLS, ROWS, 3, 4)
    assert img.meta["channel_axis"] == 3 and img.meta["channel_name"] == "TriggerTime"
    assert [v["TriggerTime"] for v in img.meta["channel_values"]] == [0.0, 40.0, 80.0, 120.0]
    for k in range(3):
        for c in range(4):
            np.testing.assert_array_equal(img.array[:, :, k, c], slice_pixels(k, c).T)
    np.testing.assert_allclose(img.spacing, (0.6, 0.8, 3.0), atol=1e-9)

    out = sciSR.write(img, tmp_path / "cine_out")
    written = read_folder(out)
    assert len(written) == 12
    assert [float(d.TriggerTime) for d in written[:4]] == [0.0, 40.0, 80.0, 120.0]
    back = sciSR.read(out)
    np.testing.assert_array_equal(back.array, img.array)
    np.testing.assert_allclose(back.affine, img.affine, atol=1e-6)


# ------------------------------------------------------------------------------------------- writing


def test_write_ct_then_read_back(tmp_path):
    src = get_testdata_file("CT_small.dcm")
    ref = pydicom.dcmread(src)
    img = sciSR.read(src)
    out = sciSR.write(img, tmp_path / "ct")
    (ds,) = read_folder(out)
    assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID != ref.SOPInstanceUID
    assert ds.SeriesInstanceUID != ref.SeriesInstanceUID
    assert ds.StudyInstanceUID == ref.StudyInstanceUID and ds.FrameOfReferenceUID == ref.FrameOfReferenceUID
    assert ds.PatientName == ref.PatientName and ds.SOPClassUID == ref.SOPClassUID
    # Value 3 is required for CT (PS3.3 C.8.2.1.1.1); the template's AXIAL is kept.
    assert list(ds.ImageType) == ["DERIVED", "SECONDARY", "AXIAL"]
    assert (float(ds.RescaleSlope), float(ds.RescaleIntercept)) == (1.0, -1024.0)
    assert ds.pixel_array.dtype == np.int16 and (ds.Rows, ds.Columns) == (ref.Rows, ref.Columns)
    np.testing.assert_allclose(np.array(ds.ImagePositionPatient, float), np.array(ref.ImagePositionPatient, float))
    np.testing.assert_allclose(float(ds.SliceThickness), 5.0)
    back = sciSR.read(out)
    np.testing.assert_allclose(back.affine, img.affine, atol=1e-6)
    np.testing.assert_array_equal(back.array, img.array)


def test_write_ct_out_of_range_refits_rescale(tmp_path):
    img = sciSR.read(get_testdata_file("CT_small.dcm"))
    wide = img.replace(array=img.array * 40.0)  # up to ~47000 HU: does not fit int16 with slope 1
    (ds,) = read_folder(sciSR.write(wide, tmp_path / "wide"))
    slope = float(ds.RescaleSlope)
    assert slope > 1
    np.testing.assert_allclose(sciSR.read(tmp_path / "wide").array, wide.array, atol=slope / 2 + 1e-3)


def test_upscaled_series_geometry_round_trip(tmp_path):
    write_series(tmp_path / "in", regular_positions(4, spacing=3.0))
    img = sciSR.read(tmp_path / "in")
    scale = (2, 3, 2)
    array = img.array
    for axis, s in enumerate(scale):
        array = np.repeat(array, s, axis=axis)
    meta = dict(img.meta, provenance=[{"step": "upscale", "model": "cubic", "scale": list(scale)}])
    sr = img.replace(array=array, affine=upscale_affine(img.affine, scale), spacing=(), meta=meta)
    out = sciSR.write(sr, tmp_path / "sr")
    written = read_folder(out)
    assert len(written) == 8
    ds0 = written[0]
    assert (ds0.Rows, ds0.Columns) == (ROWS * 3, COLS * 2)
    np.testing.assert_allclose([float(v) for v in ds0.PixelSpacing], [0.8 / 3, 0.6 / 2])
    np.testing.assert_allclose(float(ds0.SpacingBetweenSlices), 1.5)
    np.testing.assert_allclose(float(ds0.SliceThickness), 1.5)
    np.testing.assert_allclose(np.array(ds0.ImageOrientationPatient, float), [*ROW, *COL], atol=1e-12)
    for k, ds in enumerate(written):
        lps = LPS @ sr.affine @ [0, 0, k, 1]
        np.testing.assert_allclose(np.array(ds.ImagePositionPatient, float), lps[:3], atol=1e-6)
    assert "cubic" in ds0.DerivationDescription
    assert ds0.ImageComments == "super-resolved by cubic — not for diagnostic use"
    assert len({ds.SOPInstanceUID for ds in written}) == 8 and ds0.SeriesInstanceUID != img.meta["series_uid"]
    # Matched points: the FOV corner (-0.5 voxel) and the centre of input voxel (i, j, k) are the same
    # place in the world before and after; the output index of input index i is (i + 0.5)·s − 0.5.
    for ijk in [(-0.5, -0.5, -0.5), (2, 3, 1), (COLS - 0.5, ROWS - 0.5, 3.5)]:
        out_ijk = (np.asarray(ijk) + 0.5) * scale - 0.5
        before = (LPS @ img.affine @ [*ijk, 1])[:3]
        k = int(np.clip(np.floor(out_ijk[2]), 0, len(written) - 1))
        ds = written[k]
        normal = np.cross(*np.reshape(np.array(ds.ImageOrientationPatient, float), (2, 3)))
        after = world_lps(ds, out_ijk[1], out_ijk[0]) + (out_ijk[2] - k) * float(ds.SpacingBetweenSlices) * normal
        np.testing.assert_allclose(after, before, atol=1e-6)
    back = sciSR.read(out)
    np.testing.assert_allclose(back.affine, sr.affine, atol=1e-6)
    np.testing.assert_array_equal(back.array, sr.array)


def test_mr_values_rounded_and_clipped_to_stored_range(tmp_path):
    img = sciSR.read(get_testdata_file("MR_small.dcm"))
    lo, hi = img.meta["stored_range"]
    noisy = img.array + np.where(np.arange(img.array.size).reshape(img.array.shape) % 2, 0.4, -0.3)
    noisy[0, 0], noisy[1, 1] = hi + 100, lo - 50  # overshoot, as cubic interpolation produces
    (ds,) = read_folder(sciSR.write(img.replace(array=noisy.astype(np.float32)), tmp_path / "mr"))
    stored = ds.pixel_array.T
    assert ds.pixel_array.dtype == np.uint16 and "RescaleSlope" not in ds
    assert stored.min() == lo and stored.max() == hi
    np.testing.assert_array_equal(stored[2:, 2:], np.clip(np.rint(noisy[2:, 2:]), lo, hi))
    assert "rounded" in ds.DerivationDescription and "2 voxel(s) clipped" in ds.DerivationDescription
    assert ds.ImageComments == "derived by sciSR — not for diagnostic use"


def test_write_without_template(tmp_path):
    rng = np.random.default_rng(0)
    affine = np.array([[0, -0.9, 0, 30], [1.1, 0, 0, -20], [0, 0, 2.5, 5], [0, 0, 0, 1]], float)
    values = rng.random((7, 5, 3)).astype(np.float32) * 3.0  # float MR-like values: need a rescale
    img = sciSR.SciImage.from_array(values, affine=affine, domain="mri")
    out = sciSR.write(img, tmp_path / "vol")
    written = read_folder(out)
    assert len(written) == 3 and written[0].SOPClassUID == MRImageStorage and written[0].Modality == "MR"
    assert written[0].StudyInstanceUID and written[0].FrameOfReferenceUID
    back = sciSR.read(out)
    np.testing.assert_allclose(back.affine, affine, atol=1e-6)
    np.testing.assert_allclose(back.array, values, atol=float(written[0].RescaleSlope) / 2 + 1e-6)

    raster = (np.arange(12).reshape(3, 4) * 100).astype(np.float32)  # [y, x], no geometry
    out2 = sciSR.write(sciSR.SciImage.from_array(raster), tmp_path / "raster")
    (ds,) = read_folder(out2)
    assert (ds.Rows, ds.Columns) == (3, 4) and ds.Modality == "OT"
    np.testing.assert_array_equal(ds.pixel_array, raster)


# ---------------------------------------------------------------------------------------- bad inputs


def assert_one_line_error(call, name, *words):
    with pytest.raises(SciSRError) as info:
        call()
    text = str(info.value)
    assert "\n" not in text and name in text, text
    for word in words:
        assert word in text, text
    return text


@pytest.mark.parametrize("cut", [0.04, 0.5])
def test_truncated_file(tmp_path, cut):
    data = Path(get_testdata_file("CT_small.dcm")).read_bytes()
    path = tmp_path / "cut_ct.dcm"
    path.write_bytes(data[: int(len(data) * cut)])
    assert_one_line_error(lambda: sciSR.read(path), "cut_ct.dcm")


def test_truncated_slice_in_folder_names_the_file(tmp_path):
    write_series(tmp_path / "s", regular_positions(3))
    victim = sorted((tmp_path / "s").iterdir())[1]
    victim.write_bytes(victim.read_bytes()[:-20])
    assert_one_line_error(lambda: sciSR.read(tmp_path / "s"), victim.name, "decode")


def test_corrupt_file(tmp_path):
    path = tmp_path / "junk.dcm"
    path.write_bytes(b"\0" * 128 + b"DICM" + bytes(range(256)) * 4)
    assert_one_line_error(lambda: dicom.read(path), "junk.dcm")


def test_two_series_need_series_argument(tmp_path):
    uid_a = write_series(tmp_path / "two", regular_positions(3), SeriesNumber=2, SeriesDescription="T1 AX")
    uid_b = write_series(tmp_path / "two", regular_positions(2), SeriesNumber=5, SeriesDescription="T2 AX")
    text = assert_one_line_error(lambda: sciSR.read(tmp_path / "two"), "two", uid_a, uid_b, "series=")
    assert "T1 AX" in text and "3 images" in text
    assert sciSR.read(tmp_path / "two", series=uid_b).array.shape[2] == 2
    assert sciSR.read(tmp_path / "two", series=2).array.shape[2] == 3
    assert sciSR.read(tmp_path / "two", series="5").meta["series_uid"] == uid_b
    assert sciSR.read(tmp_path / "two", series="T1 AX").meta["series_uid"] == uid_a
    assert_one_line_error(lambda: sciSR.read(tmp_path / "two", series="T3"), "two", uid_a)


def test_non_uniform_spacing(tmp_path):
    positions = [ORIGIN + d * NORMAL for d in (0.0, 3.0, 6.0, 10.0, 13.0)]
    write_series(tmp_path / "gaps", positions)
    assert_one_line_error(lambda: sciSR.read(tmp_path / "gaps"), "gaps", "non-uniform", "3 to 4 mm")


def test_gantry_tilt(tmp_path):
    positions = [ORIGIN + k * (3.0 * NORMAL + 0.3 * COL) for k in range(4)]
    write_series(tmp_path / "tilt", positions)
    assert_one_line_error(lambda: sciSR.read(tmp_path / "tilt"), "tilt", "gantry tilt", "5.71°")


@pytest.mark.parametrize("missing", ["ImagePositionPatient", "ImageOrientationPatient"])
def test_missing_geometry(tmp_path, missing):
    (tmp_path / "nogeo").mkdir()
    for k, position in enumerate(regular_positions(3)):
        write_slice(tmp_path / "nogeo" / f"{k}.dcm", slice_pixels(k), series_uid="1.2.3", instance=k,
                    position=None if missing == "ImagePositionPatient" else position,
                    orientation=None if missing == "ImageOrientationPatient" else (*ROW, *COL))
    assert_one_line_error(lambda: sciSR.read(tmp_path / "nogeo"), "nogeo", missing)
