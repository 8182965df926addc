"""Upscale dock widget: run :func:`sciSR.upscale` on an image layer in a worker thread.

The result overlays its input exactly (see :func:`napari_scisr._layers.upscaled_placement`). A
self-supervised mode is not offered: sciSR has no self-supervised training engine yet.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from napari.layers import Image
from napari.qt.threading import thread_worker
from qtpy.QtCore import Signal
from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

import sciSR

from ._layers import ORDER_KEY, SCISR_KEY, SLAB_HALF_WIDTH, layer_to_sciimage, upscaled_placement

if TYPE_CHECKING:
    import napari

DEVICES = ("auto", "cpu", "cuda")
BROWSE = "Browse…"
MAX_SCALE = 16
MAX_TILE = 8192
# Input pixels kept around the visible region of a preview, so its borders see real neighbours.
PREVIEW_MARGIN = 4
PROGRESS_STEPS = 1000


@dataclass
class _Outcome:
    """What a worker hands back: the upscaled image, or the sciSR error (cancellation included)."""

    image: sciSR.SciImage | None = None
    error: sciSR.SciSRError | None = None


@thread_worker
def _upscale_job(img: sciSR.SciImage, model: str, scale: tuple[int, ...], **options: Any) -> _Outcome:
    # sciSR errors (a wrong scale, a bad model file, a cancellation) are outcomes shown in the widget,
    # not crashes: returning them keeps napari from raising them again in the main thread.
    try:
        return _Outcome(image=sciSR.upscale(img, model, scale, **options))
    except sciSR.SciSRError as err:
        return _Outcome(error=err)


@dataclass
class _Job:
    """The input side of a running upscale, kept to place the result when it returns."""

    layer: Image
    order: tuple[int, ...]
    factors: tuple[int, ...]
    start: tuple[int, ...] | None
    name: str
    started: float


class UpscaleWidget(QWidget):
    """Super-resolve an image layer with an interpolation baseline or a sciSR model.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
        Injected by napari.

    Notes
    -----
    "Preview" upscales the current plane (a slab of ±2 planes when an axis off the screen is scaled)
    cropped to the visible region; "Run on whole image" upscales everything. The result layer is named
    ``"<input> SR <model> x<scale>"``, copies the input's contrast limits and colormap, and keeps the
    upscaled SciImage (affine, WCS and header updated by sciSR) for the writer.
    """

    progress_changed = Signal(float)

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        self.viewer = viewer
        self.result_layer: Image | None = None
        self._cancel: threading.Event | None = None
        self._job: _Job | None = None
        self._scale_boxes: list[QSpinBox] = []

        self.layer_combo = QComboBox()
        self.model_combo = QComboBox()
        for name in sciSR.list_models():
            self.model_combo.addItem(name, name)
        self.model_combo.setCurrentText("cubic")
        self.browse_button = QPushButton(BROWSE)
        self.scale_row = QHBoxLayout()
        self.device_combo = QComboBox()
        self.device_combo.addItems(DEVICES)
        self.tile_box = QSpinBox()
        self.tile_box.setRange(0, MAX_TILE)
        self.tile_box.setSpecialValueText("auto")
        self.tile_box.setToolTip("Tile size in input voxels for learned models (0: automatic)")
        self.preview_button = QPushButton("Preview")
        self.preview_button.setToolTip("Upscale the current plane (a thin slab for through-plane scales) in view")
        self.run_button = QPushButton("Run on whole image")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, PROGRESS_STEPS)
        self.status_label = QLabel("ready")
        self.status_label.setWordWrap(True)
        # Room for two lines: a wrapped label in a dock otherwise gets clipped to one.
        self.status_label.setMinimumHeight(2 * self.status_label.fontMetrics().lineSpacing())
        self.side_by_side_button = QPushButton("Side by side")
        self.side_by_side_button.setCheckable(True)
        self.side_by_side_button.setToolTip("napari grid mode: every visible layer in its own view")
        self.blink_button = QPushButton("Show/hide SR")
        self.blink_button.setToolTip("Toggle the last result to flick between it and the input beneath")

        model_row = QHBoxLayout()
        model_row.addWidget(self.model_combo, 1)
        model_row.addWidget(self.browse_button)
        run_row = QHBoxLayout()
        for button in (self.preview_button, self.run_button, self.cancel_button):
            run_row.addWidget(button)
        compare_row = QHBoxLayout()
        compare_row.addWidget(self.side_by_side_button)
        compare_row.addWidget(self.blink_button)
        form = QFormLayout()
        form.addRow("Input layer", self.layer_combo)
        form.addRow("Model", model_row)
        form.addRow("Scale", self.scale_row)
        form.addRow("Device", self.device_combo)
        form.addRow("Tile", self.tile_box)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(run_row)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.status_label)
        layout.addLayout(compare_row)
        layout.addStretch(1)

        self.browse_button.clicked.connect(self._browse_model)
        self.layer_combo.currentTextChanged.connect(self._rebuild_scale_boxes)
        self.preview_button.clicked.connect(lambda: self.start(preview=True))
        self.run_button.clicked.connect(lambda: self.start(preview=False))
        self.cancel_button.clicked.connect(self.cancel)
        self.progress_changed.connect(self._show_progress)
        self.side_by_side_button.toggled.connect(self._side_by_side)
        self.blink_button.clicked.connect(self._blink)
        viewer.layers.events.inserted.connect(self._refresh_layers)
        viewer.layers.events.removed.connect(self._refresh_layers)
        viewer.layers.events.moved.connect(self._refresh_layers)
        self._refresh_layers()

    # --- inputs -----------------------------------------------------------------------------------

    def _refresh_layers(self, event: Any = None) -> None:
        """Offer the image layers; keep the choice, else take the selected layer."""
        current = self.layer_combo.currentText()
        names = [layer.name for layer in self.viewer.layers if isinstance(layer, Image)]
        active = self.viewer.layers.selection.active
        if current not in names:
            current = active.name if isinstance(active, Image) else (names[-1] if names else "")
        for layer in self.viewer.layers:
            # Follow renames; napari ignores a second connection of the same callback.
            layer.events.name.connect(self._refresh_layers)
        self.layer_combo.blockSignals(True)
        self.layer_combo.clear()
        self.layer_combo.addItems(names)
        self.layer_combo.setCurrentText(current)
        self.layer_combo.blockSignals(False)
        self._rebuild_scale_boxes()

    def input_layer(self) -> Image | None:
        """The chosen image layer, or None."""
        name = self.layer_combo.currentText()
        return next((layer for layer in self.viewer.layers if layer.name == name and isinstance(layer, Image)), None)

    def _spatial_axes(self, layer: Image) -> list[int]:
        """Layer axes that are spatial (a SciImage's channel axis is a slider but is never scaled)."""
        img = layer.metadata.get(SCISR_KEY)
        order = layer.metadata.get(ORDER_KEY)
        if isinstance(img, sciSR.SciImage) and order is not None and len(order) == layer.ndim:
            return [d for d, axis in enumerate(order) if axis < img.spatial_ndim]
        return list(range(layer.ndim))

    def _rebuild_scale_boxes(self, *_: Any) -> None:
        """One factor per spatial axis of a volume, one for all axes of a 2D image."""
        layer = self.input_layer()
        axes = self._spatial_axes(layer) if layer is not None else []
        labels = [str(layer.axis_labels[d]) for d in axes] if len(axes) > 2 else ["all axes"]
        old = [box.value() for box in self._scale_boxes]
        while self.scale_row.count():
            widget = self.scale_row.takeAt(0).widget()
            if widget is not None:
                widget.deleteLater()
        self._scale_boxes = []
        for i, label in enumerate(labels):
            box = QSpinBox()
            box.setRange(1, MAX_SCALE)
            box.setValue(old[i] if len(old) == len(labels) else 2)
            box.setPrefix(f"{label} ×" if len(labels) > 1 else "×")
            box.setToolTip(f"factor along {label}")
            self.scale_row.addWidget(box)
            self._scale_boxes.append(box)

    def set_scale(self, *factors: int) -> None:
        """Set the factors shown in the scale boxes (one per box)."""
        for box, factor in zip(self._scale_boxes, factors, strict=True):
            box.setValue(int(factor))

    def layer_factors(self, layer: Image) -> tuple[int, ...]:
        """Factor per layer axis from the scale boxes (1 on channel axes)."""
        axes = self._spatial_axes(layer)
        values = [box.value() for box in self._scale_boxes]
        per_axis = values * len(axes) if len(values) == 1 else values
        factors = [1] * layer.ndim
        for d, value in zip(axes, per_axis, strict=True):
            factors[d] = value
        return tuple(factors)

    def _browse_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "sciSR model file", "", "sciSR model (*.safetensors)")
        if path:
            self.add_model_file(path)

    def add_model_file(self, path: str) -> None:
        """Offer a model file (``.safetensors`` + card) and select it."""
        if self.model_combo.findData(path) < 0:
            self.model_combo.addItem(Path(path).stem, path)
        self.model_combo.setCurrentIndex(self.model_combo.findData(path))

    # --- running ----------------------------------------------------------------------------------

    def _preview_crop(self, layer: Image, factors: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
        """Start and stop per layer axis of the preview: the visible region of the current plane."""
        dims = self.viewer.dims
        offset = dims.ndim - layer.ndim
        displayed = {d - offset for d in dims.displayed if d >= offset}
        point = layer.world_to_data(dims.point)
        corners = np.asarray(layer.corner_pixels)
        if layer.multiscale:
            # corner_pixels are indices into the pyramid level on screen, not level 0.
            factors_level = np.asarray(layer.downsample_factors[layer.data_level])
            corners = np.stack([corners[0] * factors_level, (corners[1] + 1) * factors_level - 1])
        bounds = []
        for d, n in enumerate(layer.data.shape[: layer.ndim]):
            if d in displayed:
                low, high = int(corners[0, d]) - PREVIEW_MARGIN, int(corners[1, d]) + 1 + PREVIEW_MARGIN
                if high - low <= 2 * PREVIEW_MARGIN + 1:
                    # Nothing drawn yet (corner pixels unset): take the whole axis.
                    low, high = 0, n
            else:
                centre = int(np.clip(np.round(point[d]), 0, n - 1))
                half = SLAB_HALF_WIDTH if factors[d] > 1 else 0
                low, high = centre - half, centre + half + 1
            bounds.append((max(0, low), min(n, high)))
        return tuple(bounds)

    def start(self, *, preview: bool = False) -> None:
        """Upscale the chosen layer (or its preview crop) in a worker thread."""
        layer = self.input_layer()
        if layer is None:
            self.status_label.setText("choose an image layer")
            return
        img, order = layer_to_sciimage(layer)
        factors = self.layer_factors(layer)
        # SciImage axis order[d] is layer axis d; channel axes get no factor.
        scale = tuple(factors[list(order).index(a)] for a in range(img.spatial_ndim))
        start = None
        if preview:
            bounds = self._preview_crop(layer, factors)
            start = tuple(low for low, _ in bounds)
            img = _crop(img, order, bounds)
        model = str(self.model_combo.currentData())
        spatial = [factors[d] for d in self._spatial_axes(layer)]
        scale_text = str(spatial[0]) if len(set(spatial)) == 1 else "x".join(map(str, spatial))
        name = f"{layer.name} SR {self.model_combo.currentText()} x{scale_text}"
        self._job = _Job(layer, order, factors, start, f"{name} preview" if preview else name, time.perf_counter())
        self._cancel = threading.Event()
        tile = self.tile_box.value() or None
        worker = _upscale_job(img, model, scale, tile=tile, device=self.device_combo.currentText(),
                              progress=self.progress_changed.emit, cancel=self._cancel)
        worker.returned.connect(self._on_returned)
        worker.errored.connect(self._on_errored)
        worker.finished.connect(self._on_finished)
        self._set_running(True)
        self.progress_bar.setValue(0)
        self.status_label.setText(f"running {self._job.name}…")
        worker.start()

    def cancel(self) -> None:
        """Ask the running upscale to stop; it ends with :class:`sciSR.Cancelled`."""
        if self._cancel is not None:
            self._cancel.set()
            self.status_label.setText("cancelling…")

    def _set_running(self, running: bool) -> None:
        self.preview_button.setEnabled(not running)
        self.run_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)

    def _show_progress(self, fraction: float) -> None:
        self.progress_bar.setValue(round(fraction * PROGRESS_STEPS))

    def _on_returned(self, outcome: _Outcome) -> None:
        job = self._job
        if outcome.image is None:
            if isinstance(outcome.error, sciSR.Cancelled):
                self.status_label.setText("cancelled")
                return
            # sciSR names axes in the file's order, which the display reverses for medical images.
            hint = " (sciSR lists factors in the file's axis order)" if list(job.order) != sorted(job.order) else ""
            self.status_label.setText(f"error: {outcome.error}{hint}")
            return
        result = outcome.image
        metadata: dict[str, Any] = {"source": job.layer.metadata.get("source")}
        if job.start is None:
            # A preview crop carries no geometry of its own; a whole-image result is saveable.
            metadata.update({SCISR_KEY: result, ORDER_KEY: job.order, "affine": result.affine,
                             "wcs": result.wcs, "spacing": result.spacing})
        if job.name in self.viewer.layers:
            self.viewer.layers.remove(job.name)
        self.result_layer = self.viewer.add_image(
            result.array.transpose(job.order),
            name=job.name,
            rgb=job.layer.rgb,
            colormap=job.layer.colormap.name,
            contrast_limits=job.layer.contrast_limits,
            metadata=metadata,
            **upscaled_placement(job.layer, job.factors, job.start),
        )
        self.status_label.setText(f"done: {job.name} ({time.perf_counter() - job.started:.1f} s)")

    def _on_errored(self, error: Exception) -> None:
        # Unexpected failures also reach napari's notifications (with the traceback).
        self.status_label.setText(f"error: {type(error).__name__}: {error}")

    def _on_finished(self) -> None:
        self._set_running(False)
        self._cancel = None

    # --- comparing --------------------------------------------------------------------------------

    def _side_by_side(self, enabled: bool) -> None:
        # napari 0.9 moved the grid to viewer.canvas; older versions have viewer.grid.
        canvas = getattr(self.viewer, "canvas", self.viewer)
        canvas.grid.enabled = enabled

    def _blink(self) -> None:
        if self.result_layer is not None and self.result_layer in self.viewer.layers:
            self.result_layer.visible = not self.result_layer.visible


def _crop(img: sciSR.SciImage, order: tuple[int, ...], bounds: tuple[tuple[int, int], ...]) -> sciSR.SciImage:
    """``img`` cut to ``bounds`` (per layer axis) for a preview, without affine or WCS.

    The preview's placement comes from the input layer, so only the values, spacing, domain, units and
    the NaN mask (cut alike) matter for upscaling it.
    """
    index = [slice(None)] * img.array.ndim
    for d, (low, high) in enumerate(bounds):
        index[order[d]] = slice(low, high)
    meta = dict(img.meta)
    if meta.get("mask") is not None:
        meta["mask"] = np.asarray(meta["mask"])[tuple(index)]
    return img.replace(array=img.array[tuple(index)], affine=None, wcs=None, meta=meta)
