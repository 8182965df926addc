"""Upscale widget, self-supervised choice: trains on the layer itself through the worker, progress, cancel."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from napari_scisr._layers import ORDER_KEY, SCISR_KEY, image_layer
from napari_scisr._widget import SELF_SUPERVISED, UpscaleWidget

import sciSR
from sciSR.data.phantoms import knee_phantom
from sciSR.degrade.mri import thick_slice

TIMEOUT_MS = 60_000


@pytest.fixture(autouse=True)
def one_torch_thread():
    """One thread: on a shared, oversubscribed CPU two OpenMP threads mostly wait for each other."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def thick_volume() -> sciSR.SciImage:
    """24 × 24 × 6 knee phantom slab with 2 mm slices over 0.5 mm pixels, RAS affine."""
    hr = knee_phantom((24, 24, 24), seed=2).array
    affine = np.diag([0.5, 0.5, 2.0, 1.0])
    return sciSR.SciImage(array=thick_slice(hr, (1, 1, 4)), affine=affine, spacing=(0.5, 0.5, 2.0), domain="mri")


@pytest.fixture
def widget_on(make_napari_viewer: Callable, thick_volume: sciSR.SciImage) -> tuple[Any, Any, UpscaleWidget]:
    viewer = make_napari_viewer()
    data, kwargs, _ = image_layer(thick_volume, name="thick")
    layer = viewer.add_image(data, **kwargs)
    widget = UpscaleWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.model_combo.setCurrentIndex(widget.model_combo.findData(SELF_SUPERVISED))
    order = layer.metadata[ORDER_KEY]
    widget.set_scale(*(4 if order[d] == 2 else 1 for d in range(3)))  # ×4 along the file's slice axis
    return viewer, layer, widget


def test_self_supervised_choice_trains_on_the_layer(widget_on: tuple, qtbot: Any) -> None:
    _, layer, widget = widget_on
    assert widget.budget_box.isVisibleTo(widget) and widget.budget_box.value() == 300
    widget.budget_box.setValue(2)
    seen: list[float] = []
    widget.progress_changed.connect(seen.append)
    widget.run_button.click()
    qtbot.waitUntil(widget.run_button.isEnabled, timeout=TIMEOUT_MS)
    assert widget.status_label.text().startswith("done"), widget.status_label.text()
    result = widget.result_layer
    upscaled = result.metadata[SCISR_KEY]
    assert upscaled.array.shape == (24, 24, 24)
    step = upscaled.meta["provenance"][-1]
    assert step["model"] == "self-supervised" and step["axis"] == 2 and step["steps"] >= 1
    # Input voxel i and output voxel (i + 0.5)·s − 0.5 sit at the same world position.
    factors = np.array(result.data.shape) / np.array(layer.data.shape)
    for index in ([1.0, 2.0, 3.0], [5.0, 0.0, 20.0]):
        np.testing.assert_allclose(result.data_to_world((np.array(index) + 0.5) * factors - 0.5),
                                   layer.data_to_world(index), atol=1e-9)
    assert seen and seen[-1] == pytest.approx(1.0, abs=1e-3)
    # The budget box belongs to the self-supervised choice only.
    widget.model_combo.setCurrentText("cubic")
    assert not widget.budget_box.isVisibleTo(widget)


def test_self_supervised_cancel_and_no_preview(widget_on: tuple, qtbot: Any) -> None:
    viewer, _, widget = widget_on
    widget.preview_button.click()
    assert "whole image" in widget.status_label.text()
    widget.budget_box.setValue(600)
    widget.run_button.click()
    widget.cancel_button.click()
    qtbot.waitUntil(widget.run_button.isEnabled, timeout=TIMEOUT_MS)
    assert widget.status_label.text() == "cancelled"
    assert [layer.name for layer in viewer.layers] == ["thick"]
