"""Train widget in a real napari window: a shrunk recipe trains, reports metrics and feeds the Upscale widget."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from napari_scisr._layers import image_layer
from napari_scisr._train_widget import LAYER_DATA, CurvePlot, TrainWidget
from napari_scisr._widget import UpscaleWidget

import sciSR

TIMEOUT_MS = 60_000
# A recipe shrunk to train in seconds on a CPU (as in tests/test_cli_train.py); the step count comes
# from the widget's spin box.
SHRINK = [
    "data.count=3", "data.options.shape=[64, 64]", "data.samples_per_epoch=16", "data.batch_size=4",
    "model.options.n_blocks=1", "model.options.features=8", "train.val_every=4", "train.checkpoint_every=4",
    "train.log_every=2", "train.accelerator=cpu",
]


@pytest.fixture
def widgets(make_napari_viewer: Callable, tmp_path: Path) -> tuple[Any, TrainWidget, UpscaleWidget]:
    viewer = make_napari_viewer()
    upscale = UpscaleWidget(viewer)
    viewer.window.add_dock_widget(upscale, name="Super-resolution")
    train = TrainWidget(viewer)
    viewer.window.add_dock_widget(train, name="Train")
    train.recipe_combo.setCurrentText("ct_x2")
    train.steps_box.setValue(4)
    train.out_edit.setText(str(tmp_path / "runs"))
    train.extra_overrides = list(SHRINK)
    return viewer, train, upscale


def _train(widget: TrainWidget, qtbot: Any) -> None:
    """Start and wait until the worker has finished (the start button comes back)."""
    widget.start_button.click()
    assert not widget.start_button.isEnabled()
    qtbot.waitUntil(widget.start_button.isEnabled, timeout=TIMEOUT_MS)


def test_napari_train_widget_lists_the_installed_recipes(make_napari_viewer: Callable, tmp_path: Path) -> None:
    widget = TrainWidget(make_napari_viewer())
    names = [widget.recipe_combo.itemText(i) for i in range(widget.recipe_combo.count())]
    assert names == sciSR.training.list_recipes()
    widget.recipe_combo.setCurrentText("knee_mri_throughplane_x4")
    assert widget.recipe() == "knee_mri_throughplane_x4"
    assert widget.steps_box.value() == sciSR.training.load_config(widget.recipe())["train"]["max_steps"]
    # A recipe file of one's own is offered by its file name and used by its path.
    own = tmp_path / "mine.yaml"
    own.write_text(sciSR.training.recipe_path("ct_x2").read_text().replace("max_steps: ", "max_steps: 1"))
    widget.add_recipe(str(own))
    assert widget.recipe_combo.currentText() == "mine.yaml" and widget.recipe() == str(own)
    assert widget.steps_box.value() == sciSR.training.load_config(own)["train"]["max_steps"]


def test_napari_train_widget_trains_recipe_and_offers_model(widgets: tuple, qtbot: Any) -> None:
    _, train, upscale = widgets
    _train(train, qtbot)
    status = train.status_label.text()
    assert status.startswith("done"), status
    model_path = train.result.model_path
    assert model_path.is_file() and str(model_path) in status
    assert train.result.metrics["iterations"] == 4 and "PSNR" in status
    # The run's on_metrics reports reached the live readout: logged steps 2 and 4, validations at 0, 4, 4.
    assert train.live_label.text().startswith("step 4 · loss") and "PSNR" in train.live_label.text()
    assert [step for step, _ in train.plot.series["loss"]] == [2, 4]
    assert [step for step, _ in train.plot.series["PSNR"]] == [0, 4, 4]
    # Found among the docked widgets, offered and selected.
    assert upscale.model_combo.currentData() == str(model_path)
    # A second run without "replace" is refused by sciSR and shown, not raised.
    _train(train, qtbot)
    assert train.status_label.text().startswith("error:") and "overwrite" in train.status_label.text()


def test_napari_train_widget_trains_on_selected_layers(widgets: tuple, qtbot: Any) -> None:
    viewer, train, upscale = widgets
    rng = np.random.default_rng(0)
    layers = []
    for i in range(3):
        hu = rng.normal(0, 300, (64, 64)).astype(np.float32)
        ct = sciSR.SciImage.from_array(hu, spacing=(0.8, 0.8), domain="ct")
        data, kwargs, _ = image_layer(ct, name=f"ct{i}")
        layers.append(viewer.add_image(data, **kwargs))
    viewer.layers.selection = set(layers)
    train.data_combo.setCurrentText(LAYER_DATA)
    train.upscale_widget = upscale
    _train(train, qtbot)
    assert train.status_label.text().startswith("done"), train.status_label.text()
    card = sciSR.load_model(train.result.model_path).card
    assert len(card["training"]["data"]["files"]) == 3 and card["training"]["data"]["generate"] is None
    assert upscale.model_combo.currentData() == str(train.result.model_path)


def test_napari_train_widget_stop_ends_early_and_still_saves(widgets: tuple, qtbot: Any) -> None:
    _, train, _ = widgets
    train.steps_box.setValue(100_000)
    train.start_button.click()
    assert train.stop_button.isEnabled()
    # Let it take at least one logged step, then stop.
    qtbot.waitUntil(lambda: train.live_label.text() != "", timeout=TIMEOUT_MS)
    train.stop_button.click()
    qtbot.waitUntil(train.start_button.isEnabled, timeout=TIMEOUT_MS)
    assert train.status_label.text().startswith("done"), train.status_label.text()
    assert train.result is not None and train.result.model_path.exists()
    assert 0 < train.result.metrics["iterations"] < 100_000
    assert not train.stop_button.isEnabled()
    # The live plot holds the loss curve reported by the run and draws it.
    assert len(train.plot.series["loss"]) >= 1
    image = train.plot.grab().toImage()
    loss_rgb = CurvePlot.COLORS["loss"]
    drawn = [image.pixelColor(x, y).getRgb()[:3] for x in range(0, image.width(), 2)
             for y in range(0, image.height(), 2)]
    assert loss_rgb in drawn
