"""Sample data opens from the napari menu route and draws a non-blank canvas."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from napari_scisr._sample_data import KNEE_SHAPE, KNEE_SPACING, knee_phantom


def test_napari_knee_phantom_is_deterministic() -> None:
    first, second = knee_phantom(), knee_phantom()
    np.testing.assert_array_equal(first.array, second.array)
    assert first.array.shape == KNEE_SHAPE
    np.testing.assert_allclose(first.spacing, KNEE_SPACING)


SAMPLES = {"knee_mri": ((24, 96, 96), ("R", "I", "P")), "ct_slice": ((128, 128), ("P", "L")),
           "telescope_frame": ((300, 300), None)}


def test_napari_sample_data_opens_and_draws(make_napari_viewer: Callable) -> None:
    # A shown window: an unshown one renders a blank canvas under Xvfb.
    viewer = make_napari_viewer(show=True)
    for key, (shape, labels) in SAMPLES.items():
        viewer.layers.clear()
        layer, = viewer.open_sample("scisr", key)
        assert layer.data.shape == shape
        assert labels is None or layer.axis_labels == labels
        grey = viewer.screenshot(canvas_only=True, flash=False)[..., :3].mean(axis=-1)
        # Not blank: the image covers much of the canvas with many grey levels.
        assert grey.std() > 10, key
        assert len(np.unique(grey)) > 50, key
