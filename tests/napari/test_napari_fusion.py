"""Upscale widget with multi-input models: extra stacks picker and reference layer, in a real window."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from napari_scisr._layers import image_layer
from napari_scisr._widget import UpscaleWidget

import sciSR
from sciSR.data.multi_input_samples import simulate_stacks
from sciSR.data.phantoms import knee_phantom
from sciSR.hub import save_model
from sciSR.models import create_model

TIMEOUT_MS = 60_000


def _viewer(make_napari_viewer: Callable, images: dict[str, sciSR.SciImage]) -> tuple[Any, UpscaleWidget]:
    viewer = make_napari_viewer()
    for name, img in images.items():
        data, kwargs, _ = image_layer(img, name=name)
        viewer.add_image(data, **kwargs)
    widget = UpscaleWidget(viewer)
    viewer.window.add_dock_widget(widget)
    return viewer, widget


def _model_file(tmp_path: Any, arch: str, **options: Any) -> str:
    torch.manual_seed(0)
    path = tmp_path / f"{arch}.safetensors"
    save_model(create_model(arch, **options), path, normalisation={"method": "percentile"})
    return str(path)


def test_extra_stacks_are_fused(make_napari_viewer: Callable, qtbot: Any, tmp_path: Any) -> None:
    hr = knee_phantom((16, 16, 16), seed=2).replace(affine=np.diag([0.5, 0.5, 0.5, 1.0]))
    a, b = simulate_stacks(hr, [(1, 1, 4), (4, 1, 1)])
    _, widget = _viewer(make_napari_viewer, {"axial": a, "sagittal": b})
    widget.layer_combo.setCurrentText("axial")
    assert widget.stacks_list.isHidden() and widget.reference_combo.isHidden()  # cubic takes one image
    model = _model_file(tmp_path, "oktay-multi", scale=(1, 1, 4), spatial_dims=3, features=4, stream_layers=1,
                        refine_layers=1)
    widget.add_model_file(model)
    assert not widget.stacks_list.isHidden() and widget.reference_combo.isHidden()
    assert [widget.stacks_list.item(i).text() for i in range(widget.stacks_list.count())] == ["sagittal"]
    widget.set_stacks("sagittal")
    widget.set_scale(4, 1, 1)  # layer axes are displayed (k, j, i)
    widget.preview_button.click()
    assert "preview works on one image" in widget.status_label.text()
    widget.run_button.click()
    qtbot.waitUntil(widget.run_button.isEnabled, timeout=TIMEOUT_MS)
    assert widget.status_label.text().startswith("done"), widget.status_label.text()
    expected = sciSR.upscale([a, b], model, device="cpu")
    result = widget.result_layer
    assert result.data.shape == tuple(reversed(expected.array.shape))
    np.testing.assert_allclose(result.data, expected.array.transpose(2, 1, 0), rtol=1e-5, atol=1e-3)


def test_reference_layer_guides_the_model(make_napari_viewer: Callable, qtbot: Any, tmp_path: Any) -> None:
    plane = knee_phantom((32, 32, 3), seed=3).array[..., 1]
    affine = np.diag([0.5, 0.5, 1.0, 1.0])
    hr = sciSR.SciImage.from_array(plane, affine=affine, domain="mri")
    lr = simulate_stacks(hr, [(2, 2)], degradation="bin")[0]
    _, widget = _viewer(make_napari_viewer, {"low": lr, "ref": hr})
    widget.layer_combo.setCurrentText("low")
    model = _model_file(tmp_path, "ttsr", scale=2, spatial_dims=2, features=4, n_blocks=1, tail_blocks=1,
                        texture_features=4, search_radius=1)
    widget.add_model_file(model)
    assert widget.stacks_list.isHidden() and not widget.reference_combo.isHidden()
    widget.reference_combo.setCurrentText("ref")
    widget.set_scale(2)
    widget.run_button.click()
    qtbot.waitUntil(widget.run_button.isEnabled, timeout=TIMEOUT_MS)
    assert widget.status_label.text().startswith("done"), widget.status_label.text()
    expected = sciSR.upscale(lr, model, reference=hr, device="cpu")
    np.testing.assert_allclose(widget.result_layer.data, expected.array.transpose(1, 0), rtol=1e-5, atol=1e-3)
