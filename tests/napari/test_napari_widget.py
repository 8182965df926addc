"""Upscale widget in a real napari window: placement of results, preview, cancel, errors, compare."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from napari.layers import Image
from napari_scisr._layers import SCISR_KEY, image_layer
from napari_scisr._widget import UpscaleWidget

import sciSR

TIMEOUT_MS = 20_000


@pytest.fixture
def viewer_with_volume(make_napari_viewer: Callable, small_volume: sciSR.SciImage) -> tuple[Any, Image, UpscaleWidget]:
    viewer = make_napari_viewer()
    data, kwargs, _ = image_layer(small_volume, name="vol")
    layer = viewer.add_image(data, **kwargs)
    widget = UpscaleWidget(viewer)
    viewer.window.add_dock_widget(widget)
    return viewer, layer, widget


def _wait(widget: UpscaleWidget, qtbot: Any) -> None:
    """Until the worker has finished (the run button comes back)."""
    qtbot.waitUntil(widget.run_button.isEnabled, timeout=TIMEOUT_MS)


def _assert_overlay(source: Image, result: Image, factors: tuple[int, ...],
                    start: tuple[int, ...] | None = None) -> None:
    """Input voxel i and output voxel (i − start + 0.5)·s − 0.5 sit at the same world position."""
    s = np.asarray(factors, dtype=float)
    begin = np.zeros(len(factors)) if start is None else np.asarray(start, dtype=float)
    rng = np.random.default_rng(0)
    low = begin
    high = begin + np.asarray(result.data.shape) / s - 1
    points = [*rng.integers(low, high + 1, size=(5, len(factors))), low - 0.5, high + 0.5]  # voxels, FOV corners
    for index in points:
        np.testing.assert_allclose(result.data_to_world((index - begin + 0.5) * s - 0.5),
                                   source.data_to_world(index), atol=1e-9)


def test_napari_widget_upscale_overlays_volume(viewer_with_volume: tuple, qtbot: Any,
                                               small_volume: sciSR.SciImage) -> None:
    viewer, layer, widget = viewer_with_volume
    assert widget.input_layer() is layer
    assert len(widget._scale_boxes) == 3
    widget.set_scale(2, 2, 2)
    widget.run_button.click()
    _wait(widget, qtbot)
    assert widget.status_label.text().startswith("done")
    result = viewer.layers["vol SR cubic x2"]
    assert result.data.shape == (20, 16, 12)
    assert result.contrast_limits == layer.contrast_limits
    assert result.axis_labels == layer.axis_labels
    _assert_overlay(layer, result, (2, 2, 2))
    expected = sciSR.upscale(small_volume, "cubic", 2)
    np.testing.assert_allclose(result.data, expected.array.transpose(2, 1, 0), rtol=1e-6)
    # The kept SciImage is sciSR's upscaled geometry, and reading it places it where the widget did.
    upscaled = result.metadata[SCISR_KEY]
    np.testing.assert_allclose(upscaled.affine, sciSR.geometry.upscale_affine(small_volume.affine, (2, 2, 2)))
    _, again, _ = image_layer(upscaled)
    np.testing.assert_allclose(again["scale"], result.scale)
    np.testing.assert_allclose(again["translate"], result.translate)
    # Compare helpers: flick the result over the input, or put the layers side by side.
    assert widget.result_layer is result
    widget.blink_button.click()
    assert not result.visible
    widget.blink_button.click()
    assert result.visible
    widget.side_by_side_button.click()
    assert viewer.canvas.grid.enabled
    widget.side_by_side_button.click()
    assert not viewer.canvas.grid.enabled


def test_napari_widget_upscale_plain_layer_with_translate(make_napari_viewer: Callable, qtbot: Any) -> None:
    viewer = make_napari_viewer()
    data = np.random.default_rng(2).random((20, 30), dtype=np.float32)
    layer = viewer.add_image(data, name="plain", scale=(2.0, 3.0), translate=(10.0, -5.0))
    widget = UpscaleWidget(viewer)
    assert len(widget._scale_boxes) == 1
    widget.set_scale(3)
    widget.run_button.click()
    _wait(widget, qtbot)
    result = viewer.layers["plain SR cubic x3"]
    assert result.data.shape == (60, 90)
    _assert_overlay(layer, result, (3, 3))
    # Input translate + (1/s − 1)/2 of the old spacing.
    expected = np.array([10.0, -5.0]) + sciSR.geometry.upscale_translate((2.0, 3.0), (3, 3))
    np.testing.assert_allclose(result.translate, expected)


def test_napari_widget_preview_current_plane(viewer_with_volume: tuple, qtbot: Any,
                                             small_volume: sciSR.SciImage) -> None:
    viewer, layer, widget = viewer_with_volume
    viewer.dims.set_current_step(0, 4)
    # In-plane factors: the current plane only.
    widget.set_scale(1, 2, 2)
    widget.preview_button.click()
    _wait(widget, qtbot)
    preview = viewer.layers["vol SR cubic x1x2x2 preview"]
    assert preview.data.shape == (1, 16, 12)
    assert SCISR_KEY not in preview.metadata
    _assert_overlay(layer, preview, (1, 2, 2), start=(4, 0, 0))
    whole = sciSR.upscale(small_volume, "cubic", (2, 2, 1)).array.transpose(2, 1, 0)
    np.testing.assert_allclose(preview.data[0], whole[4], rtol=1e-5, atol=1e-4)
    # Through-plane factor: a slab of ±2 planes around the current one.
    widget.set_scale(3, 1, 1)
    widget.preview_button.click()
    _wait(widget, qtbot)
    slab = viewer.layers["vol SR cubic x3x1x1 preview"]
    assert slab.data.shape == (15, 8, 6)
    _assert_overlay(layer, slab, (3, 1, 1), start=(2, 0, 0))


def test_napari_widget_learned_model_file(viewer_with_volume: tuple, qtbot: Any, tmp_path: Any) -> None:
    from sciSR.hub import save_model
    from sciSR.models import create_model

    viewer, layer, widget = viewer_with_volume
    # What "Browse…" does with a chosen file: an untrained 2D ESPCN ×2 saved as safetensors + card.
    path = save_model(create_model("espcn", scale=2, spatial_dims=2), tmp_path / "espcn.safetensors")
    widget.add_model_file(str(path))
    widget.set_scale(1, 2, 2)
    widget.run_button.click()
    _wait(widget, qtbot)
    result = viewer.layers["vol SR espcn x1x2x2"]
    assert result.data.shape == (10, 16, 12)
    _assert_overlay(layer, result, (1, 2, 2))
    # A scale the model cannot produce is reported, not resampled.
    widget.set_scale(2, 1, 1)
    widget.run_button.click()
    _wait(widget, qtbot)
    assert widget.status_label.text().startswith("error: ")


def test_napari_widget_cancel_and_errors(viewer_with_volume: tuple, qtbot: Any, monkeypatch: pytest.MonkeyPatch,
                                         tmp_path: Any) -> None:
    viewer, _, widget = viewer_with_volume
    reached, release = threading.Event(), threading.Event()
    real_upscale = sciSR.upscale

    def held_upscale(img: Any, model: Any, scale: Any, *, progress: Callable[[float], None], **options: Any) -> Any:
        # Stop the worker inside upscale's progress callback until the test has pressed Cancel.
        def hold(fraction: float) -> None:
            progress(fraction)
            reached.set()
            release.wait(TIMEOUT_MS / 1000)

        return real_upscale(img, model, scale, progress=hold, **options)

    monkeypatch.setattr(sciSR, "upscale", held_upscale)
    n_layers = len(viewer.layers)
    widget.run_button.click()
    qtbot.waitUntil(reached.is_set, timeout=TIMEOUT_MS)
    # The first progress report has reached the bar (the worker is now held inside the next one).
    qtbot.waitUntil(lambda: widget.progress_bar.value() > widget.progress_bar.minimum(), timeout=TIMEOUT_MS)
    assert widget.cancel_button.isEnabled() and not widget.run_button.isEnabled()
    widget.cancel_button.click()
    release.set()
    _wait(widget, qtbot)
    assert widget.status_label.text() == "cancelled"
    assert len(viewer.layers) == n_layers
    assert not widget.cancel_button.isEnabled()
    # A sciSR error (here a model file that does not exist) is shown, and no layer is added either.
    monkeypatch.setattr(sciSR, "upscale", real_upscale)
    widget.add_model_file(str(tmp_path / "missing.safetensors"))
    assert widget.model_combo.currentText() == "missing"
    widget.run_button.click()
    _wait(widget, qtbot)
    assert widget.status_label.text().startswith("error: ")
    assert len(viewer.layers) == n_layers
