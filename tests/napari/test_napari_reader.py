"""Readers: layer geometry (scale/translate or affine), contrast limits and metadata per format."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from astropy.visualization import ZScaleInterval
from astropy.wcs.utils import proj_plane_pixel_scales
from napari.layers import Image
from napari_scisr._layers import SCISR_KEY, image_layer
from napari_scisr._reader import napari_get_reader

import sciSR

# Signed RAS axis of each patient axis code.
_AXIS = {"R": (0, 1.0), "L": (0, -1.0), "A": (1, 1.0), "P": (1, -1.0), "S": (2, 1.0), "I": (2, -1.0)}


def _open(path: str | Path) -> Image:
    reader = napari_get_reader(str(path))
    assert callable(reader)
    (data, kwargs, layer_type), = reader(str(path))
    assert layer_type == "image"
    return Image(data, **kwargs)


def _assert_world_is_patient_mm(layer: Image, img: sciSR.SciImage) -> None:
    """World coordinate n of the layer = signed RAS coordinate named by axis label n, for any voxel."""
    rng = np.random.default_rng(0)
    n = img.spatial_ndim
    for index in rng.uniform(-0.5, np.array(img.spatial_shape) - 0.5, size=(5, n)):
        ras = img.affine[:3, :n] @ index + img.affine[:3, 3]
        world = layer.data_to_world(index[::-1])
        expected = [sign * ras[axis] for axis, sign in (_AXIS[code] for code in layer.axis_labels)]
        np.testing.assert_allclose(world, expected, atol=1e-9)


def test_napari_nifti_reader_geometry(nifti_path: str) -> None:
    layer = _open(nifti_path)
    img = layer.metadata[SCISR_KEY]
    assert isinstance(img, sciSR.SciImage)
    # anatomical.nii is LAS with 2 mm voxels: the layer shows [k, j, i] in (S, A, L) millimetres.
    assert layer.data.shape == (25, 41, 33)
    assert layer.axis_labels == ("S", "A", "L")
    np.testing.assert_allclose(layer.scale, [2.0, 2.0, 2.0])
    np.testing.assert_allclose(layer.translate, [-16.0, -40.0, -32.0])
    _assert_world_is_patient_mm(layer, img)
    np.testing.assert_array_equal(layer.data[3, 5, 7], img.array[7, 5, 3])
    assert layer.metadata["source"] == nifti_path
    np.testing.assert_allclose(layer.metadata["affine"], img.affine)
    assert [str(u) for u in layer.units] == ["millimeter"] * 3


def test_napari_dicom_file_reader_geometry(ct_path: str) -> None:
    ds = pydicom.dcmread(ct_path)
    layer = _open(ct_path)
    img = layer.metadata[SCISR_KEY]
    # An axial slice shows rows down and columns across, in DICOM patient (LPS) millimetres.
    assert layer.data.shape == (ds.Rows, ds.Columns)
    assert layer.axis_labels == ("P", "L")
    np.testing.assert_allclose(layer.scale, [float(s) for s in ds.PixelSpacing])
    np.testing.assert_allclose(layer.translate, [float(ds.ImagePositionPatient[1]), float(ds.ImagePositionPatient[0])])
    _assert_world_is_patient_mm(layer, img)
    # CT values are HU (RescaleSlope/Intercept applied); CT_small names no window: soft-tissue window.
    np.testing.assert_allclose(layer.data, ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept))
    assert layer.contrast_limits == [-160.0, 240.0]
    assert layer.metadata["domain"] == "ct"


def test_napari_ct_window_from_dicom(ct_path: str) -> None:
    img = sciSR.read(ct_path)
    img.meta["dicom_template"].WindowCenter = [50, 300]
    img.meta["dicom_template"].WindowWidth = [350, 1500]
    _, kwargs, _ = image_layer(img)
    assert kwargs["contrast_limits"] == (-125.0, 225.0)


def test_napari_dicom_folder_reader(ct_path: str, tmp_path: Path) -> None:
    series = tmp_path / "series"
    series.mkdir()
    # Extension-less DICOM files are recognised by their "DICM" magic.
    shutil.copy(ct_path, series / "IM0001")
    (series / "README.txt").write_text("not DICOM")
    layer = _open(series)
    assert layer.data.shape == (128, 128)
    assert layer.metadata["source"] is not None
    other = tmp_path / "notes"
    other.mkdir()
    (other / "a.txt").write_text("text")
    assert napari_get_reader(str(other)) is None
    assert napari_get_reader(str(other / "a.txt")) is None


def test_napari_fits_reader(fits_path: str) -> None:
    layer = _open(fits_path)
    img = layer.metadata[SCISR_KEY]
    assert layer.data.shape == (300, 300)
    # [y, x] as stored; scale = degrees per pixel from the WCS (numpy order), no translate.
    np.testing.assert_allclose(layer.scale, proj_plane_pixel_scales(img.wcs)[::-1])
    np.testing.assert_allclose(layer.translate, [0.0, 0.0])
    assert layer.metadata["wcs"] is img.wcs
    np.testing.assert_allclose(layer.contrast_limits, ZScaleInterval().get_limits(img.array))
    assert layer.metadata["domain"] == "sky"


# napari draws an oblique volume's planes without the out-of-plane part of the rotation (and says so).
@pytest.mark.filterwarnings("ignore:Non-orthogonal slicing:UserWarning")
def test_napari_oblique_volume_uses_affine(small_volume: sciSR.SciImage) -> None:
    angle = np.deg2rad(12.0)
    rotation = np.eye(4)
    rotation[1:3, 1:3] = [[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]
    img = small_volume.replace(affine=rotation @ small_volume.affine)
    data, kwargs, _ = image_layer(img)
    assert "affine" in kwargs and "scale" not in kwargs
    layer = Image(data, **kwargs)
    assert layer.axis_labels == ("S", "P", "L")
    _assert_world_is_patient_mm(layer, img)


def test_napari_tilted_slice_on_its_grid(ct_path: str) -> None:
    img = sciSR.read(ct_path)
    angle = np.deg2rad(20.0)
    tilt = np.eye(4)
    tilt[1:3, 1:3] = [[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]
    _, kwargs, _ = image_layer(img.replace(affine=tilt @ img.affine))
    # Projecting a tilted lone slice onto the (P, L) plane would shrink it: its own grid instead.
    assert "affine" not in kwargs
    np.testing.assert_allclose(kwargs["scale"], img.spacing[::-1])


def test_napari_channel_axis_is_first_slider(small_volume: sciSR.SciImage) -> None:
    stack = np.stack([small_volume.array] * 3, axis=-1)
    img = small_volume.replace(array=stack, meta={"channel_axis": 3, "channel_name": "time"})
    data, kwargs, _ = image_layer(img)
    assert data.shape == (3, 10, 8, 6)
    layer = Image(data, **kwargs)
    assert layer.axis_labels == ("time", "S", "P", "L")
    np.testing.assert_allclose(layer.scale, [1.0, 2.5, 0.7, 0.5])


@pytest.mark.parametrize("name", ["image.png", "volume.nii.bak"])
def test_napari_reader_declines_other_files(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"\0" * 200)
    assert napari_get_reader(str(path)) is None
