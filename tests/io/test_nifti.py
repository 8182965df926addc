"""NIfTI reader/writer: nibabel's shipped files in, files checked with nibabel directly out."""

import gzip
import os
import shutil
import struct

import nibabel as nib
import numpy as np
import pytest
from nibabel.testing import data_path

import sciSR.io
from sciSR import geometry
from sciSR.errors import SciSRError
from sciSR.image import SciImage
from sciSR.io import nifti

EXAMPLE4D = os.path.join(data_path, "example4d.nii.gz")  # NIfTI-1, oblique, x-flipped, int16, 4D
ANATOMICAL = os.path.join(data_path, "anatomical.nii")  # NIfTI-1, big-endian, codes 2/2, 3D
NIFTI2 = os.path.join(data_path, "example_nifti2.nii.gz")  # NIfTI-2 (float64 header), oblique, 4D


def upscaled(img, scale, model="cubic"):
    """The image on the FOV-preserving upscaled grid, voxels repeated (nearest)."""
    array = img.array
    for axis, factor in enumerate(scale):
        array = np.repeat(array, factor, axis=axis)
    meta = dict(img.meta, provenance=[{"step": "upscale", "model": model, "scale": list(scale)}])
    return img.replace(
        array=array,
        affine=geometry.upscale_affine(img.affine, scale),
        spacing=geometry.upscale_spacing(img.spacing, scale),
        meta=meta,
    )


def save(nii, path):
    nib.save(nii, os.fspath(path))
    return path


def test_read_4d_example():
    img = nifti.read(EXAMPLE4D)
    ref = nib.load(EXAMPLE4D)
    assert img.array.shape == (128, 96, 24, 2) and img.array.dtype == np.float32
    assert img.channel_axis == 3 and img.meta["channel_name"] == "time" and img.spatial_ndim == 3
    np.testing.assert_array_equal(img.affine, ref.affine)
    np.testing.assert_allclose(img.spacing, ref.header.get_zooms()[:3], rtol=1e-6)
    np.testing.assert_array_equal(img.array, ref.get_fdata())
    assert img.meta["format"] == "nifti" and img.meta["source"] == EXAMPLE4D
    assert img.meta["units"] == ("mm", "sec") and img.meta["spacing_unit"] == "mm"
    assert img.meta["stored_dtype"] == "int16"
    assert (img.meta["qform_code"], img.meta["sform_code"]) == (1, 1)
    assert img.meta["descrip"] == "FSL3.3"  # a C string: ends at the first NUL
    assert img.meta["intent"] == ("none", (), "")
    assert img.meta["provenance"] == [] and img.domain == "mri"
    assert isinstance(img.meta["nifti_header"], nib.Nifti1Header)


def test_read_3d_anatomical_big_endian():
    img = nifti.read(ANATOMICAL)
    ref = nib.load(ANATOMICAL)
    assert img.array.shape == (33, 41, 25) and img.channel_axis is None
    assert img.array.dtype == np.float32 and img.array.dtype.isnative
    np.testing.assert_array_equal(img.affine, ref.affine)
    assert img.spacing == (2.0, 2.0, 2.0)
    assert (img.meta["qform_code"], img.meta["sform_code"]) == (2, 2)
    assert img.meta["descrip"] == "spm - 3D normalized"


def test_domain_argument_and_inference(tmp_path):
    hu = np.full((4, 4, 3), -1000.0, np.float32)
    hu[1:3, 1:3] = 40.0
    path = save(nib.Nifti1Image(hu, np.eye(4)), tmp_path / "ct.nii")
    assert nifti.read(path).domain == "ct"
    assert nifti.read(path, domain="mri").domain == "mri"
    assert nifti.read(path, series=3).array.shape == (4, 4, 3)  # series is accepted and ignored


def test_scaling_applied_and_reset_on_write(tmp_path):
    raw = np.arange(24, dtype=np.int16).reshape(2, 3, 4)
    nii = nib.Nifti1Image(raw, np.diag([1.5, 1.5, 3.0, 1.0]))
    nii.header.set_slope_inter(0.5, -10.0)
    path = save(nii, tmp_path / "scaled.nii")
    img = nifti.read(path)
    np.testing.assert_allclose(img.array, raw * 0.5 - 10.0)
    assert img.meta["stored_dtype"] == "int16"
    nifti.write(img, tmp_path / "out.nii")
    back = nib.load(tmp_path / "out.nii")
    assert back.get_data_dtype() == np.float32
    assert back.header.get_slope_inter() == (None, None)  # no scaling stored
    np.testing.assert_allclose(back.get_fdata(), raw * 0.5 - 10.0)


@pytest.mark.parametrize("src", [EXAMPLE4D, ANATOMICAL, NIFTI2])
def test_write_keeps_header_and_sets_both_forms(tmp_path, src):
    ref = nib.load(src)
    img = nifti.read(src)
    scale = (2, 1, 3)
    out = tmp_path / "sr.nii.gz"
    nifti.write(upscaled(img, scale), out)
    back = nib.load(out)
    hdr, ref_hdr = back.header, ref.header
    expected = geometry.upscale_affine(ref.affine, scale)
    # NIfTI-1 stores the forms in float32 (NIfTI-2 in float64): compare with the value it can hold.
    stored = expected if isinstance(hdr, nib.Nifti2Header) else expected.astype(np.float32)
    np.testing.assert_allclose(hdr.get_sform(), stored, atol=1e-6, rtol=0)
    np.testing.assert_allclose(hdr.get_qform(), stored, atol=1e-6, rtol=0)
    assert type(hdr) is type(ref_hdr)
    assert (int(hdr["qform_code"]), int(hdr["sform_code"])) == (int(ref_hdr["qform_code"]), int(ref_hdr["sform_code"]))
    zooms = np.asarray(ref_hdr.get_zooms(), float)
    zooms[:3] /= scale
    np.testing.assert_allclose(hdr.get_zooms(), zooms, rtol=1e-6)  # incl. the 4th (TR) pixdim
    assert back.shape[:3] == tuple(n * s for n, s in zip(ref.shape, scale, strict=False))
    assert back.shape[3:] == ref.shape[3:]
    assert hdr.get_xyzt_units() == ref_hdr.get_xyzt_units()
    assert hdr.get_intent() == ref_hdr.get_intent()
    assert hdr.get_data_dtype().name == "float32"  # in the input's byte order
    descrip = hdr["descrip"].item().decode()
    assert descrip == f"{img.meta['descrip']}; SR x2x1x3 cubic"


@pytest.mark.parametrize(
    ("src", "scale", "atol"),
    [
        (ANATOMICAL, (2, 2, 2), 1e-6),  # axis-aligned; every number exact in float32
        (NIFTI2, (1, 1, 3), 1e-6),  # oblique, float64 header
        (EXAMPLE4D, (1, 1, 3), 1e-5),  # oblique; float32 header: ~1 ulp of ~120 mm
    ],
)
def test_world_coordinates_of_matched_points(tmp_path, src, scale, atol):
    ref = nib.load(src)
    img = nifti.read(src)
    sr = upscaled(img, scale)
    nifti.write(sr, tmp_path / "sr.nii")
    back = nib.load(tmp_path / "sr.nii")
    n, s = np.asarray(ref.shape[:3], float), np.asarray(scale, float)
    for old in (np.full(3, -0.5), (n - 1) / 2, n - 0.5):  # first outer corner, FOV centre, last corner
        new = (old + 0.5) * s - 0.5
        expected = ref.affine @ [*old, 1]
        np.testing.assert_allclose(sr.affine @ [*new, 1], expected, atol=1e-9)  # in memory
        np.testing.assert_allclose(back.affine @ [*new, 1], expected, atol=atol)  # through the file
    # Nearest upscaling: every new voxel holds the value of the old voxel it lies in.
    old_voxel = (3, 5, 7)
    new_voxel = tuple(k * f + f - 1 for k, f in zip(old_voxel, scale, strict=True))
    np.testing.assert_allclose(back.dataobj[new_voxel], ref.get_fdata()[old_voxel])


def with_pixdim(path, axis, value):
    """Patch pixdim[axis] in a little-endian NIfTI-1 file (nibabel would repair it while saving)."""
    data = bytearray(path.read_bytes())
    offset = 76 + 4 * axis  # pixdim is float32[8] at byte 76
    data[offset : offset + 4] = struct.pack("<f", value)
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("value", [0.0, -1.0])
def test_zero_pixdim_is_an_error(tmp_path, value):
    nii = nib.Nifti1Image(np.zeros((4, 5, 6), np.float32), np.eye(4))
    nii.set_sform(None, code=0)
    path = with_pixdim(save(nii, tmp_path / "bad.nii"), 2, value)
    with pytest.raises(SciSRError, match="zero pixdim") as info:
        nifti.read(path)
    assert str(info.value).startswith(f"{path}: ") and "\n" not in str(info.value)


def test_zero_pixdim_with_sform_uses_the_sform(tmp_path):
    affine = np.diag([1.0, 1.5, 2.0, 1.0])
    path = with_pixdim(save(nib.Nifti1Image(np.zeros((4, 5, 6), np.float32), affine), tmp_path / "s.nii"), 2, 0.0)
    img = nifti.read(path)
    np.testing.assert_array_equal(img.affine, affine)
    assert img.spacing == (1.0, 1.5, 2.0) and "sform gives the voxel size" in img.meta["notes"][0]


def test_2d_nifti(tmp_path):
    affine = np.diag([2.0, 3.0, 1.0, 1.0])
    affine[:3, 3] = [10, -20, 5]
    path = save(nib.Nifti1Image(np.arange(30, dtype=np.float32).reshape(6, 5), affine), tmp_path / "slice.nii")
    img = nifti.read(path)
    assert img.array.shape == (6, 5) and img.spatial_ndim == 2 and img.spacing == (2.0, 3.0)
    np.testing.assert_array_equal(img.affine, affine)
    nifti.write(upscaled(img, (2, 2)), tmp_path / "slice_x2.nii")
    back = nib.load(tmp_path / "slice_x2.nii")
    assert back.shape == (12, 10)
    np.testing.assert_allclose(back.header.get_zooms(), (1.0, 1.5))
    np.testing.assert_allclose(back.affine @ [-0.5, -0.5, 0, 1], affine @ [-0.5, -0.5, 0, 1])


def test_from_array_without_header(tmp_path):
    img = SciImage.from_array(np.ones((4, 5, 6), np.float64), spacing=(0.5, 0.7, 2.0))
    nifti.write(img, tmp_path / "plain.nii.gz")
    back = nib.load(tmp_path / "plain.nii.gz")
    expected = np.diag([0.5, 0.7, 2.0, 1.0])
    np.testing.assert_allclose(back.header.get_sform(), expected, atol=1e-6)
    np.testing.assert_allclose(back.header.get_qform(), expected, atol=1e-6)
    assert (int(back.header["qform_code"]), int(back.header["sform_code"])) == (1, 1)
    assert back.get_data_dtype() == np.float32


def test_from_array_with_affine_and_channels(tmp_path):
    affine = np.array([[0, 0, 1.2, -30], [-0.8, 0, 0, 40], [0, 0.8, 0, 12], [0, 0, 0, 1]], float)
    img = SciImage.from_array(np.zeros((7, 6, 3), np.float32), affine=affine,
                              meta={"channel_axis": 2, "channel_name": "rgb"})
    nifti.write(img, tmp_path / "rgb.nii")
    back = nib.load(tmp_path / "rgb.nii")
    assert back.shape == (7, 6, 1, 3)  # spatial axes padded so the channels are NIfTI's 4th dim
    np.testing.assert_allclose(back.header.get_qform(), affine, atol=1e-6)
    np.testing.assert_allclose(back.header.get_sform(), affine, atol=1e-6)
    assert back.header.get_xyzt_units() == ("mm", "unknown")


def test_missing_code_takes_the_other_forms(tmp_path):
    nii = nib.Nifti1Image(np.zeros((3, 4, 5), np.float32), np.diag([1.0, 1.0, 1.0, 1.0]))
    nii.set_sform(nii.affine, code="mni")
    nii.set_qform(None, code=0)
    img = nifti.read(save(nii, tmp_path / "mni.nii"))
    assert (img.meta["qform_code"], img.meta["sform_code"]) == (0, 4)
    nifti.write(img, tmp_path / "out.nii")
    hdr = nib.load(tmp_path / "out.nii").header
    assert (int(hdr["qform_code"]), int(hdr["sform_code"])) == (4, 4)


def test_intent_units_and_long_description(tmp_path):
    nii = nib.Nifti1Image(np.zeros((3, 4, 5), np.float32), np.eye(4))
    nii.header.set_intent("t test", (12,), "tstat")
    nii.header.set_xyzt_units("micron", "msec")
    nii.header["descrip"] = b"d" * 80
    img = nifti.read(save(nii, tmp_path / "stat.nii"))
    assert img.meta["intent"] == ("t test", (12.0,), "tstat") and img.meta["units"] == ("micron", "msec")
    assert img.meta["spacing_unit"] == "µm"
    nifti.write(upscaled(img, (2, 2, 2), model="/models/edsr_mri.safetensors"), tmp_path / "out.nii")
    hdr = nib.load(tmp_path / "out.nii").header
    assert hdr.get_intent() == ("t test", (12.0,), "tstat")
    assert hdr.get_xyzt_units() == ("micron", "msec")
    descrip = hdr["descrip"].item()
    assert len(descrip) == 80 and descrip.startswith(b"ddd") and descrip.endswith(b"; SR x2 edsr_mri.safetensors")


def test_shear_goes_to_sform_only(tmp_path):
    affine = np.array([[2.0, 0.5, 0, 0], [0, 2.0, 0, 0], [0, 0, 3.0, 0], [0, 0, 0, 1]])
    img = SciImage.from_array(np.zeros((3, 4, 5), np.float32), affine=affine)
    with pytest.warns(UserWarning, match="shears"):
        nifti.write(img, tmp_path / "shear.nii")
    hdr = nib.load(tmp_path / "shear.nii").header
    np.testing.assert_allclose(hdr.get_sform(), affine, atol=1e-6)
    assert int(hdr["qform_code"]) == 0 and int(hdr["sform_code"]) == 1


def test_sniff_and_registry(tmp_path):
    assert nifti.sniff(ANATOMICAL) and nifti.sniff(EXAMPLE4D) and nifti.sniff(NIFTI2)
    assert not nifti.sniff(os.path.join(data_path, "analyze.hdr"))  # 348 bytes but no NIfTI magic
    (tmp_path / "empty.nii").write_bytes(b"")
    assert not nifti.sniff(tmp_path / "empty.nii")
    # A NIfTI file without a suffix is found by content and read from the stream.
    plain, zipped = tmp_path / "scan", tmp_path / "scan_gz"
    shutil.copy(ANATOMICAL, plain)
    with open(ANATOMICAL, "rb") as f, gzip.open(zipped, "wb") as g:
        g.write(f.read())
    for path in (plain, zipped):
        img = sciSR.io.read(path)
        assert img.meta["format"] == "nifti" and img.array.shape == (33, 41, 25)
    out = sciSR.io.write(img, tmp_path / "copy.nii.gz")
    assert nib.load(out).shape == (33, 41, 25)


def test_damaged_files(tmp_path):
    with open(EXAMPLE4D, "rb") as f:
        data = f.read()
    truncated = tmp_path / "truncated.nii.gz"
    truncated.write_bytes(data[: len(data) // 2])
    garbage = tmp_path / "garbage.nii"
    garbage.write_bytes(b"not a nifti file at all" * 10)
    for path in (truncated, garbage):
        with pytest.raises(SciSRError) as info:
            nifti.read(path)
        assert str(info.value).startswith(f"{path}: ") and "\n" not in str(info.value)


def test_5d_is_refused(tmp_path):
    path = save(nib.Nifti1Image(np.zeros((3, 4, 5, 1, 3), np.float32), np.eye(4)), tmp_path / "vec.nii")
    with pytest.raises(SciSRError, match="5D"):
        nifti.read(path)
