"""Upscale widget in a real napari window: placement of results, preview, cancel, errors, compare."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from napari.layers import Image
from napari_scisr._layers import SCISR_KEY, image_layer
from napari_scisr._widget import UpscaleWidget, self_check_text

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
    result = viewer.layers["vol SR cubic ×2×2×2"]
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
    result = viewer.layers["plain SR cubic ×3×3"]
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
    preview = viewer.layers["vol SR cubic ×1×2×2 preview"]
    assert preview.data.shape == (1, 16, 12)
    assert SCISR_KEY not in preview.metadata
    _assert_overlay(layer, preview, (1, 2, 2), start=(4, 0, 0))
    whole = sciSR.upscale(small_volume, "cubic", (2, 2, 1)).array.transpose(2, 1, 0)
    np.testing.assert_allclose(preview.data[0], whole[4], rtol=1e-5, atol=1e-4)
    # Through-plane factor: a slab of ±2 planes around the current one.
    widget.set_scale(3, 1, 1)
    widget.preview_button.click()
    _wait(widget, qtbot)
    slab = viewer.layers["vol SR cubic ×3×1×1 preview"]
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
    result = viewer.layers["vol SR espcn ×1×2×2"]
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


def test_napari_widget_fits_a_1400_pixel_window(viewer_with_volume: tuple) -> None:
    viewer, _, widget = viewer_with_volume
    from napari_scisr._train_widget import TrainWidget

    train = TrainWidget(viewer)
    # A long model file name, the self-supervised entry and a long status must not widen the docks.
    widget.add_model_file("/some/where/a_model_file_with_a_rather_long_descriptive_name.safetensors")
    widget.status_label.setText("done: " + "a long status message " * 20)
    train.status_label.setText("model: /a/long/path/" + "runs/" * 30 + "model.safetensors")
    for dock in (widget, train):
        for hint in (dock.sizeHint(), dock.minimumSizeHint()):
            assert hint.width() <= 450, (type(dock).__name__, hint.width())


def test_napari_widget_model_tooltips_are_card_summaries(viewer_with_volume: tuple) -> None:
    from qtpy.QtCore import Qt

    _, _, widget = viewer_with_volume
    combo = widget.model_combo
    tips = {combo.itemData(i): combo.itemData(i, Qt.ItemDataRole.ToolTipRole) for i in range(combo.count())}
    for name in sciSR.hub.shipped_models():
        summary = sciSR.hub.model_summary(name)
        assert tips[name] == f"{name}: {sciSR.hub.summary_line(summary)}"
        assert f"{summary['gain_db']:+.2f} dB vs cubic" in tips[name]
    assert "interpolation" in tips["cubic"]


def _spy_upscale(monkeypatch: pytest.MonkeyPatch, **learned: Any) -> list[dict[str, Any]]:
    """Replace sciSR.upscale by cubic that records each call's options; a learned model's result gets the
    provenance a real one holds (the self-check of sciSR.pipeline.self_check, plus ``learned``)."""
    calls: list[dict[str, Any]] = []
    real_upscale = sciSR.upscale
    check = {"model_psnr": 31.24, "baseline_psnr": 30.81, "baseline": "zerofill", "delta_db": 0.43}

    def spy(img: Any, model: Any, scale: Any, **options: Any) -> Any:
        calls.append({"model": model, **options})
        result = real_upscale(img, "cubic", scale, progress=options["progress"], cancel=options["cancel"])
        if model != "cubic":
            result.meta["provenance"][-1].update(self_check=check, **learned)
        return result

    monkeypatch.setattr(sciSR, "upscale", spy)
    return calls


def test_napari_widget_passes_consistency_and_guard_to_learned_models(
        viewer_with_volume: tuple, qtbot: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    viewer, _, widget = viewer_with_volume
    calls = _spy_upscale(monkeypatch)
    widget.set_scale(1, 2, 2)
    widget.model_combo.setCurrentIndex(widget.model_combo.findData("mri-x2"))
    assert widget.consistency_combo.isEnabled() and widget.guard_box.isEnabled()
    widget.consistency_combo.setCurrentText("off")
    widget.guard_box.setChecked(True)
    widget.run_button.click()
    _wait(widget, qtbot)
    assert calls[-1]["model"] == "mri-x2"
    assert calls[-1]["consistency"] == "off" and calls[-1]["guard"] is True
    assert widget.status_label.text().endswith("; self-check: model 31.2 dB vs zerofill 30.8 dB (+0.4)")
    assert "vol SR mri-x2 ×1×2×2" in viewer.layers
    widget.consistency_combo.setCurrentText("on")
    widget.guard_box.setChecked(False)
    widget.run_button.click()
    _wait(widget, qtbot)
    assert calls[-1]["consistency"] == "on" and calls[-1]["guard"] is False
    # Interpolation gets neither (sciSR.upscale of a baseline has no forward model or self-check).
    widget.model_combo.setCurrentText("cubic")
    assert not widget.consistency_combo.isEnabled() and not widget.guard_box.isEnabled()
    widget.run_button.click()
    _wait(widget, qtbot)
    assert calls[-1]["model"] == "cubic" and "consistency" not in calls[-1] and "guard" not in calls[-1]
    assert "self-check" not in widget.status_label.text()



def test_napari_adapt_box_passes_seconds_to_learned_models_only(
        viewer_with_volume: tuple, qtbot: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    _, _, widget = viewer_with_volume
    calls = _spy_upscale(monkeypatch, adaptation={"steps": 412, "used": False})
    widget.set_scale(1, 2, 2)
    widget.model_combo.setCurrentIndex(widget.model_combo.findData("mri-x2"))
    assert widget.adapt_box.isEnabled() and widget.adapt_box.value() == 0
    widget.run_button.click()
    _wait(widget, qtbot)
    assert "adapt" not in calls[-1]  # 0 s reads "off"
    widget.adapt_box.setValue(45)
    widget.run_button.click()
    _wait(widget, qtbot)
    assert calls[-1]["model"] == "mri-x2" and calls[-1]["adapt"] == 45.0
    assert widget.status_label.text().endswith("; adapted: 412 steps, shipped weights kept")
    widget.model_combo.setCurrentText("cubic")
    assert not widget.adapt_box.isEnabled()
    widget.run_button.click()
    _wait(widget, qtbot)
    assert calls[-1]["model"] == "cubic" and "adapt" not in calls[-1]


def test_napari_uncertainty_adds_the_ensemble_mean_and_a_spread_layer(viewer_with_volume: tuple, qtbot: Any) -> None:
    viewer, layer, widget = viewer_with_volume
    widget.set_scale(1, 2, 2)
    widget.model_combo.setCurrentIndex(widget.model_combo.findData("mri-x2"))
    assert widget.uncertainty_box.isEnabled()
    widget.uncertainty_box.setChecked(True)
    widget.run_button.click()
    _wait(widget, qtbot)
    name = "vol SR mri-x2 ×1×2×2"
    result, spread = viewer.layers[name], viewer.layers[f"{name} uncertainty"]
    assert result.data.shape == spread.data.shape
    assert np.isfinite(spread.data).all() and spread.data.max() > 0 and not spread.visible
    _assert_overlay(layer, spread, (1, 2, 2))
    assert result.metadata[SCISR_KEY].meta["provenance"][-1]["ensemble"] == 16
    widget.model_combo.setCurrentText("cubic")
    assert not widget.uncertainty_box.isEnabled()

def test_self_check_text_reports_the_guard() -> None:
    from napari_scisr._widget import self_check_text

    check = {"model_psnr": 29.0, "baseline_psnr": 30.5, "baseline": "cubic", "delta_db": -1.5}
    assert self_check_text({"provenance": [{"self_check": check}]}) == [
        "self-check: model 29.0 dB vs cubic 30.5 dB (-1.5)"]
    assert self_check_text({"provenance": [{"guard": {"replaced": "mri-x2", "self_check": check}}]}) == [
        "self-check: model 29.0 dB vs cubic 30.5 dB (-1.5)", "guard: returned cubic instead of mri-x2"]
    assert self_check_text({"provenance": [{"model": "cubic"}]}) == []
    assert self_check_text({}) == []
    shared = self_check_text({"provenance": [{"self_check": check, "detail_share": 0.75}]})
    assert shared[-1] == "kept 75 % of the detail beyond the input's band"


def test_napari_widget_spacing_and_isotropic_put_a_non_integer_grid_on_the_input(
        viewer_with_volume: tuple, qtbot: Any, small_volume: sciSR.SciImage) -> None:
    viewer, layer, widget = viewer_with_volume
    widget.isotropic_box.setChecked(True)
    widget.run_button.click()
    _wait(widget, qtbot)
    assert widget.status_label.text().startswith("done"), widget.status_label.text()
    result = viewer.layers["vol SR cubic spacing isotropic"]
    finest = min(small_volume.spacing)
    n = np.asarray(layer.data.shape, dtype=float)
    expected = np.round(n * np.asarray(layer.scale) / finest)
    assert result.data.shape == tuple(int(m) for m in expected)
    _assert_overlay(layer, result, tuple(expected / n))
    assert result.metadata[SCISR_KEY].meta["provenance"][-1]["grid"]["method"] == "cubic (direct)"
    widget.isotropic_box.setChecked(False)
    widget.spacing_edit.setText("0")
    widget.run_button.click()
    assert widget.status_label.text().startswith("error: spacing must be positive")


def test_status_says_why_an_adaptation_was_skipped() -> None:
    check = {"model_psnr": 30.0, "baseline": "zerofill", "baseline_psnr": 29.5, "delta_db": 0.5}
    why = "hamming window with noise σ 0.0223 of the 99th percentile (limit 0.008)"
    meta = {"provenance": [{"self_check": check, "adaptation": {"steps": 0, "used": False, "skipped": why}}]}
    assert self_check_text(meta)[-1] == f"not adapted: {why}; shipped weights kept"


def test_napari_adapts_a_real_slice_off_the_ui_thread(make_napari_viewer: Callable, qtbot: Any) -> None:
    from scipy import ndimage

    rng = np.random.default_rng(4)
    yy, xx = np.mgrid[:64, :64]
    slice_ = sum(rng.uniform(50, 200) * ((yy - rng.uniform(0, 64)) ** 2 + (xx - rng.uniform(0, 64)) ** 2
                                        < rng.uniform(4, 14) ** 2) for _ in range(10))
    image = sciSR.SciImage.from_array(ndimage.gaussian_filter(slice_.astype(np.float32), 1.0), spacing=(1.0, 1.0),
                                      domain="mri", meta={"source": "blobs"})
    viewer = make_napari_viewer()
    data, kwargs, _ = image_layer(image, name="slice")
    viewer.add_image(data, **kwargs)
    widget = UpscaleWidget(viewer)
    widget.model_combo.setCurrentIndex(widget.model_combo.findData("mri-x2"))
    widget.adapt_box.setValue(2)
    widget.run_button.click()
    qtbot.waitUntil(widget.run_button.isEnabled, timeout=120_000)
    assert "adapted: " in widget.status_label.text(), widget.status_label.text()
    result = viewer.layers[-1]
    assert result.data.shape == (128, 128)
    assert result.metadata[SCISR_KEY].meta["provenance"][-1]["adaptation"]["seconds"] == 2.0
