"""Writer: layers saved through napari come back from disk with their values and geometry."""

from __future__ import annotations

from pathlib import Path

import napari
import numpy as np
import pytest
from napari.layers import Image
from napari_scisr._layers import SCISR_KEY, image_layer
from napari_scisr._reader import read_layers

import sciSR


@pytest.fixture(autouse=True)
def _plugins_registered() -> None:
    # A viewer registers the installed plugins; these tests make none, so run alone they would find no writer.
    from napari.plugins import _initialize_plugins

    _initialize_plugins()


def _save(layer: Image, path: Path) -> list[str]:
    # The route File ▸ Save takes: napari picks the sciSR writer by extension.
    return napari.save_layers(str(path), [layer], plugin="scisr")


def _reopen(path: str | Path) -> Image:
    (data, kwargs, _), = read_layers(str(path))
    return Image(data, **kwargs)


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii"])
def test_napari_writer_nifti_round_trip(nifti_path: str, tmp_path: Path, suffix: str) -> None:
    layer = _reopen(nifti_path)
    written = _save(layer, tmp_path / f"out{suffix}")
    assert written == [str(tmp_path / f"out{suffix}")]
    original, again = layer.metadata[SCISR_KEY], sciSR.read(written[0])
    np.testing.assert_array_equal(again.array, original.array)
    np.testing.assert_allclose(again.affine, original.affine)
    reopened = _reopen(written[0])
    np.testing.assert_allclose(reopened.scale, layer.scale)
    np.testing.assert_allclose(reopened.translate, layer.translate)


def test_napari_writer_upscaled_nifti_keeps_geometry(nifti_path: str, tmp_path: Path) -> None:
    img = sciSR.read(nifti_path)
    result = sciSR.upscale(img, "linear", (1, 1, 2))
    data, kwargs, _ = image_layer(result)
    written = _save(Image(data, **kwargs), tmp_path / "sr.nii.gz")
    np.testing.assert_allclose(sciSR.read(written[0]).affine, sciSR.geometry.upscale_affine(img.affine, (1, 1, 2)))


def test_napari_writer_fits_round_trip(fits_path: str, tmp_path: Path) -> None:
    layer = _reopen(fits_path)
    written = _save(layer, tmp_path / "m13.fits")
    original, again = layer.metadata[SCISR_KEY], sciSR.read(written[0])
    np.testing.assert_array_equal(again.array, original.array)
    np.testing.assert_allclose(again.wcs.wcs.crpix, original.wcs.wcs.crpix)
    np.testing.assert_allclose(again.wcs.wcs.crval, original.wcs.wcs.crval)


def test_napari_writer_dicom_series_folder(ct_path: str, tmp_path: Path) -> None:
    layer = _reopen(ct_path)
    written = _save(layer, tmp_path / "ct.dcm")
    # NAME.dcm (napari needs a suffix to pick the writer) becomes the series folder NAME.
    assert written == [str(tmp_path / "ct")]
    assert Path(written[0]).is_dir()
    reopened = _reopen(written[0])
    np.testing.assert_allclose(reopened.data, layer.data, atol=0.5)
    np.testing.assert_allclose(reopened.scale, layer.scale)
    np.testing.assert_allclose(reopened.translate, layer.translate)


def test_napari_writer_plain_layers(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    volume = Image(rng.random((4, 5, 6), dtype=np.float32), scale=(3.0, 0.5, 0.25), translate=(7.0, -2.0, 1.0))
    reopened = _reopen(_save(volume, tmp_path / "plain.nii.gz")[0])
    # [z, y, x] is stored as NIfTI [i, j, k] = [x, y, z] and shown the same way again.
    np.testing.assert_array_equal(reopened.data, volume.data)
    np.testing.assert_allclose(reopened.scale, volume.scale)
    np.testing.assert_allclose(reopened.translate, volume.translate)
    frame = Image(rng.random((7, 9), dtype=np.float32))
    again = sciSR.read(_save(frame, tmp_path / "plain.fits")[0])
    np.testing.assert_array_equal(again.array, frame.data)
