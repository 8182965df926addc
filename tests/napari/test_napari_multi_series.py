"""The napari reader on a study folder: one layer per DICOM series, each placed by its own geometry (§8).

The study comes from the ``dicom_study`` fixture (tests/conftest.py).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from napari.layers import Image
from napari_scisr._layers import SCISR_KEY, layer_geometry
from napari_scisr._reader import napari_get_reader

import sciSR

NAMES = ["T1 SAG/post", "T2 AX", "series 7", "DWI b1000"]
# Signed RAS axis of each patient axis code.
_AXIS = {"R": (0, 1.0), "L": (0, -1.0), "A": (1, 1.0), "P": (1, -1.0), "S": (2, 1.0), "I": (2, -1.0)}


def test_reader_gives_one_layer_per_series(dicom_study: tuple[Path, list]) -> None:
    folder, expected = dicom_study
    reader = napari_get_reader(str(folder))
    assert callable(reader)
    layers = reader(str(folder))
    assert [kwargs["name"] for _, kwargs, _ in layers] == NAMES
    rng = np.random.default_rng(0)
    for (data, kwargs, kind), spec in zip(layers, expected, strict=True):
        img = kwargs["metadata"][SCISR_KEY]
        assert kind == "image" and img.meta["series_uid"] == spec.uid
        # The same placement as the series read on its own.
        alone = layer_geometry(sciSR.read(folder, series=spec.uid))
        np.testing.assert_allclose(kwargs["scale"], alone["scale"])
        np.testing.assert_allclose(kwargs["translate"], alone["translate"])
        assert kwargs["axis_labels"] == alone["axis_labels"]
        # World coordinates of the layer are the series' own patient millimetres.
        layer = Image(data, **kwargs)
        n = len(spec.shape)
        for index in rng.uniform(-0.5, np.array(spec.shape) - 0.5, size=(3, n)):
            ras = spec.affine[:3, :n] @ index + spec.affine[:3, 3]
            world = [sign * ras[axis] for axis, sign in (_AXIS[code] for code in layer.axis_labels)]
            np.testing.assert_allclose(layer.data_to_world(index[::-1]), world, atol=1e-9)


def test_folder_with_series_only_in_sub_folders_is_claimed(dicom_study: tuple[Path, list]) -> None:
    folder, _ = dicom_study
    nested = folder / "sub"  # holds only the folder ax/ with series "T2 AX"
    reader = napari_get_reader(str(nested))
    assert callable(reader)
    (_, kwargs, _), = reader(str(nested))
    # A single series keeps the folder's name, as before.
    assert kwargs["name"] == "sub" and kwargs["metadata"][SCISR_KEY].array.shape == (7, 4, 3)


def test_viewer_opens_every_series(make_napari_viewer: Callable, dicom_study: tuple[Path, list]) -> None:
    folder, expected = dicom_study
    viewer = make_napari_viewer()
    viewer.open(str(folder), plugin="scisr")
    assert [layer.name for layer in viewer.layers] == NAMES
    assert [layer.data.shape for layer in viewer.layers] == [tuple(reversed(s.shape)) for s in expected]
