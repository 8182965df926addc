"""Upscale dock widget: run :func:`sciSR.upscale` on an image layer in a worker thread.

The result overlays its input exactly (see :func:`napari_scisr._layers.upscaled_placement`). The model
picker also offers :data:`SELF_SUPERVISED`: :func:`sciSR.self_supervised` trains a network on the layer
itself within the chosen time budget, through the same worker, progress bar and Cancel button.

The dock fits beside the canvas of a 1400-pixel window (about 400 pixels wide): long texts wrap or live in
tooltips, and each model's tooltip is its card summary (:func:`sciSR.hub.summary_line`).
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
from qtpy.QtCore import Qt, Signal
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

import sciSR
from sciSR.pipeline import parse_spacing

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
SELF_SUPERVISED = "self-supervised (learn from this image)"
DEFAULT_BUDGET_S = 300
MAX_BUDGET_S = 24 * 3600
CONSISTENCY = ("auto", "on", "off")
# Characters a combo box reserves: it otherwise grows to its longest item (a model file's name, the
# self-supervised entry) and pushes the dock past the width it has beside the canvas.
COMBO_CHARS = 14


@dataclass
class _Outcome:
    """What a worker hands back: the upscaled image, or the sciSR error (cancellation included)."""

    image: sciSR.SciImage | None = None
    error: sciSR.SciSRError | None = None
    spread: sciSR.SciImage | None = None


@thread_worker
def _upscale_job(img: sciSR.SciImage | list[sciSR.SciImage], model: str, scale: tuple[int, ...] | None,
                 **options: Any) -> _Outcome:
    # sciSR errors (a wrong scale, a bad model file, a cancellation) are outcomes shown in the widget,
    # not crashes: returning them keeps napari from raising them again in the main thread.
    try:
        result = sciSR.upscale(img, model, scale, **options)
        if options.get("uncertainty"):
            return _Outcome(image=result[0], spread=result[1])
        return _Outcome(image=result)
    except sciSR.SciSRError as err:
        return _Outcome(error=err)


@thread_worker
def _self_supervised_job(img: sciSR.SciImage, scale: tuple[int, ...] | None, **options: Any) -> _Outcome:
    try:
        return _Outcome(image=sciSR.self_supervised(img, scale, **options))
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
    in_shape: tuple[int, ...] = ()
    by_spacing: bool = False

    def placement_factors(self, result: sciSR.SciImage) -> tuple[float, ...]:
        """Factor per layer axis: the scale boxes', or ``n'/n`` of the result when a spacing chose the grid."""
        if not self.by_spacing:
            return self.factors
        shape = result.array.transpose(self.order).shape
        return tuple(m / n for m, n in zip(shape, self.in_shape, strict=True))


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
    ``"<input> SR <model> ×<factor per spatial axis>"`` (e.g. ``"knee SR mri-thick-x4 ×1×1×4"``, factors in
    the layer's axis order), copies the input's contrast limits and colormap, and keeps the upscaled
    SciImage (affine, WCS and header updated by sciSR) for the writer. Learned models get the
    "Consistency" and "Guard" choices of :func:`sciSR.upscale`; after their run the status line shows the
    self-check (model vs the strongest baseline on the input's own degraded copy).
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
            self._add_model(name, name)
        self._add_model(SELF_SUPERVISED, SELF_SUPERVISED)
        self.model_combo.setCurrentText("cubic")
        for combo in (self.layer_combo, self.model_combo):
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(COMBO_CHARS)
        self.consistency_label = QLabel("Consistency")
        self.consistency_combo = QComboBox()
        self.consistency_combo.addItems(CONSISTENCY)
        self.consistency_combo.setToolTip("Learned models: project the result onto the input under the acquisition's "
                                          "forward model (auto: unless the self-check shows it loses)")
        self.guard_box = QCheckBox("Guard")
        self.guard_box.setToolTip("Return the baseline when the self-check shows a loss")
        self.uncertainty_box = QCheckBox("Uncertainty")
        self.uncertainty_box.setToolTip("Average the model over flips and axis swaps (8 passes for ×2 in 2D) and "
                                        "add a layer of the per-pixel spread between them (not with Guard)")
        self.adapt_label = QLabel("Adapt")
        self.adapt_box = QSpinBox()
        self.adapt_box.setRange(0, MAX_BUDGET_S)
        self.adapt_box.setSpecialValueText("off")
        self.adapt_box.setSuffix(" s")
        self.adapt_box.setToolTip("2D networks: fine-tune on this image first for this many seconds (test-time "
                                  "adaptation; the adapted weights run only when they beat the shipped ones on "
                                  "rows held out from it)")
        self.browse_button = QPushButton(BROWSE)
        self.budget_label = QLabel("Time budget")
        self.budget_box = QSpinBox()
        self.budget_box.setRange(1, MAX_BUDGET_S)
        self.budget_box.setValue(DEFAULT_BUDGET_S)
        self.budget_box.setSuffix(" s")
        self.budget_box.setToolTip("Self-supervised: wall-clock seconds for training on this image plus inference")
        self.scale_row = QHBoxLayout()
        self.spacing_edit = QLineEdit()
        self.spacing_edit.setPlaceholderText("off: use Scale")
        self.spacing_edit.setToolTip("Output voxel size instead of Scale: one value, or one per spatial axis in the "
                                     "file's axis order, in the image's units (mm; deg on the sky) or with a unit "
                                     "(0.5mm, 0.2arcsec); the field of view is kept")
        self.isotropic_box = QCheckBox("Isotropic")
        self.isotropic_box.setToolTip("Output voxel size = the finest input spacing on every axis (instead of Scale)")
        self.device_combo = QComboBox()
        self.device_combo.addItems(DEVICES)
        self.tile_box = QSpinBox()
        self.tile_box.setRange(0, MAX_TILE)
        self.tile_box.setSpecialValueText("auto")
        self.tile_box.setToolTip("Tile size in input voxels for learned models (0: automatic)")
        # Extra inputs of multi-input models, shown only when the chosen model takes them.
        self.stacks_label = QLabel("Extra stacks")
        self.stacks_list = QListWidget()
        self.stacks_list.setToolTip("Further low-res stacks of the same object (checked ones are fused; the "
                                    "output is on the input layer's grid × scale; layers need an affine)")
        self.reference_label = QLabel("Reference")
        self.reference_combo = QComboBox()
        self.reference_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.reference_combo.setMinimumContentsLength(COMBO_CHARS)
        self.reference_combo.setToolTip("High-res reference layer (another contrast or an earlier scan)")
        self._model_inputs: dict[str, tuple[bool, bool]] = {}
        # Three rows tall: wide enough for the dock, short enough to leave room for the rest.
        self.stacks_list.setMaximumHeight(3 * self.stacks_list.fontMetrics().lineSpacing() + 8)
        self.preview_button = QPushButton("Preview")
        self.preview_button.setToolTip("Upscale the current plane (a thin slab for through-plane scales) in view")
        self.run_button = QPushButton("Run on whole image")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, PROGRESS_STEPS)
        self.status_label = QLabel("ready")
        self.status_label.setWordWrap(True)
        # The label takes the dock's width instead of setting it: a long message (a path, an error) wraps
        # rather than widening the dock past what fits beside the canvas.
        self.status_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
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
        # Rows wrap (label above field) only when the dock is narrower than label + field.
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        form.addRow("Input", self.layer_combo)
        form.addRow("Model", model_row)
        form.addRow("Scale", self.scale_row)
        spacing_row = QHBoxLayout()
        spacing_row.addWidget(self.spacing_edit, 1)
        spacing_row.addWidget(self.isotropic_box)
        form.addRow("Spacing", spacing_row)
        form.addRow("Device", self.device_combo)
        form.addRow("Tile", self.tile_box)
        consistency_row = QHBoxLayout()
        consistency_row.addWidget(self.consistency_combo, 1)
        consistency_row.addWidget(self.guard_box)
        consistency_row.addWidget(self.uncertainty_box)
        form.addRow(self.consistency_label, consistency_row)
        form.addRow(self.adapt_label, self.adapt_box)
        form.addRow(self.budget_label, self.budget_box)
        form.addRow(self.stacks_label, self.stacks_list)
        form.addRow(self.reference_label, self.reference_combo)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(run_row)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.status_label)
        layout.addLayout(compare_row)
        layout.addStretch(1)

        self.browse_button.clicked.connect(self._browse_model)
        self.model_combo.currentIndexChanged.connect(self._show_extra_inputs)
        self.layer_combo.currentTextChanged.connect(self._refresh_extra_layers)
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
        self._refresh_extra_layers()

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

    def requested_spacing(self) -> Any:
        """What Spacing asks for: None (use Scale), ``"isotropic"``, or :func:`sciSR.pipeline.parse_spacing`'s value.

        Raises
        ------
        ValueError
            Text that is not a spacing.
        """
        if self.isotropic_box.isChecked():
            return "isotropic"
        text = self.spacing_edit.text().strip()
        return parse_spacing(text) if text else None

    def _browse_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "sciSR model file", "", "sciSR model (*.safetensors)")
        if path:
            self.add_model_file(path)

    def add_model_file(self, path: str) -> None:
        """Offer a model file (``.safetensors`` + card) and select it."""
        if self.model_combo.findData(path) < 0:
            self._add_model(Path(path).stem, path)
        self.model_combo.setCurrentIndex(self.model_combo.findData(path))

    def _add_model(self, text: str, model: str) -> None:
        """Add a picker entry whose tooltip says what the model is (for a learned model: its card summary)."""
        if model == SELF_SUPERVISED:
            tip = "Train a network on this image itself within the time budget, then upscale it"
        elif sciSR.pipeline.is_interpolator(model):
            tip = f"{model} interpolation: the baseline, nothing learned"
        else:
            try:
                tip = f"{model}: {sciSR.hub.summary_line(sciSR.hub.model_summary(model))}"
            except sciSR.SciSRError as err:
                tip = f"error: {err}"
        self.model_combo.addItem(text, model)
        self.model_combo.setItemData(self.model_combo.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)

    def learned_model(self) -> bool:
        """Whether the chosen model is a network (not an interpolation, not self-supervised)."""
        model = str(self.model_combo.currentData())
        return not sciSR.pipeline.is_interpolator(model) and model != SELF_SUPERVISED

    # --- extra inputs of multi-input models -------------------------------------------------------

    def model_takes(self) -> tuple[bool, bool]:
        """``(stacks, reference)``: whether the chosen model fuses several stacks / takes a reference."""
        model = str(self.model_combo.currentData())
        if sciSR.pipeline.is_interpolator(model) or model == SELF_SUPERVISED:
            return False, False
        if model not in self._model_inputs:
            try:
                # The card alone says what the model takes: the network is not built for this question.
                inputs = sciSR.hub.read_spec(model).inputs
                self._model_inputs[model] = (inputs == "stacks", inputs == "reference")
            except sciSR.SciSRError as err:
                self.status_label.setText(f"error: {err}")
                return False, False
        return self._model_inputs[model]

    def _show_extra_inputs(self, *_: Any) -> None:
        stacks, reference = self.model_takes()
        for widget in (self.stacks_label, self.stacks_list):
            widget.setVisible(stacks)
        for widget in (self.reference_label, self.reference_combo):
            widget.setVisible(reference)
        for widget in (self.budget_label, self.budget_box):
            widget.setVisible(self.model_combo.currentData() == SELF_SUPERVISED)
        for widget in (self.consistency_label, self.consistency_combo, self.guard_box, self.uncertainty_box,
                       self.adapt_label, self.adapt_box):
            widget.setEnabled(self.learned_model())

    def _refresh_extra_layers(self, *_: Any) -> None:
        """Offer every other image layer as an extra stack (checks kept) and as the reference."""
        current = self.layer_combo.currentText()
        names = [layer.name for layer in self.viewer.layers if isinstance(layer, Image) and layer.name != current]
        checked = set(self.checked_stacks())
        self.stacks_list.clear()
        for name in names:
            item = QListWidgetItem(name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if name in checked else Qt.CheckState.Unchecked)
            self.stacks_list.addItem(item)
        reference = self.reference_combo.currentText()
        self.reference_combo.clear()
        self.reference_combo.addItems(["(none)", *names])
        self.reference_combo.setCurrentText(reference if reference in names else "(none)")
        self._show_extra_inputs()

    def checked_stacks(self) -> list[str]:
        """Names of the layers checked as extra stacks."""
        items = (self.stacks_list.item(i) for i in range(self.stacks_list.count()))
        return [item.text() for item in items if item.checkState() == Qt.CheckState.Checked]

    def set_stacks(self, *names: str) -> None:
        """Check exactly these layers as extra stacks."""
        for i in range(self.stacks_list.count()):
            item = self.stacks_list.item(i)
            item.setCheckState(Qt.CheckState.Checked if item.text() in names else Qt.CheckState.Unchecked)

    def extra_inputs(self, img: sciSR.SciImage) -> tuple[sciSR.SciImage | list[sciSR.SciImage], dict[str, Any]]:
        """What :func:`sciSR.upscale` gets: the input plus checked stacks, or the input and a reference."""
        stacks, reference = self.model_takes()
        layers = {layer.name: layer for layer in self.viewer.layers}
        if stacks and self.checked_stacks():
            return [img, *(layer_to_sciimage(layers[name])[0] for name in self.checked_stacks())], {}
        if reference and self.reference_combo.currentText() in layers:
            return img, {"reference": layer_to_sciimage(layers[self.reference_combo.currentText()])[0]}
        return img, {}

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
        try:
            spacing = self.requested_spacing()
        except ValueError as err:
            self.status_label.setText(f"error: {err}")
            return
        img, order = layer_to_sciimage(layer)
        factors = self.layer_factors(layer)
        # SciImage axis order[d] is layer axis d; channel axes get no factor.
        scale = None if spacing is not None else tuple(factors[list(order).index(a)] for a in range(img.spatial_ndim))
        start = None
        model = str(self.model_combo.currentData())
        if preview and model == SELF_SUPERVISED:
            self.status_label.setText("self-supervised learns from the whole image: use Run on whole image")
            return
        if preview:
            bounds = self._preview_crop(layer, factors)
            start = tuple(low for low, _ in bounds)
            img = _crop(img, order, bounds)
        spatial = [factors[d] for d in self._spatial_axes(layer)]
        grid = f"×{'×'.join(map(str, spatial))}" if spacing is None else f"spacing {spacing}"
        name = f"{layer.name} SR {self.model_combo.currentText()} {grid}"
        self._job = _Job(layer, order, factors, start, f"{name} preview" if preview else name, time.perf_counter(),
                         in_shape=tuple(img.array.transpose(order).shape), by_spacing=spacing is not None)
        grid_option = {} if spacing is None else {"spacing": spacing}
        self._cancel = threading.Event()
        tile = self.tile_box.value() or None
        inputs, extra = self.extra_inputs(img)
        if preview and (extra or inputs is not img):  # a preview crop has no geometry to resample them onto
            self.status_label.setText("preview works on one image: run on the whole image with extra inputs")
            self._job = None
            return
        if model == SELF_SUPERVISED:
            worker = _self_supervised_job(img, scale, **grid_option, time_budget_s=float(self.budget_box.value()),
                                          device=self.device_combo.currentText(),
                                          progress=self.progress_changed.emit, cancel=self._cancel)
        else:
            if self.learned_model():
                # Interpolation has no forward model to be consistent with and no self-check to guard by.
                extra.update(consistency=self.consistency_combo.currentText(), guard=self.guard_box.isChecked())
                if self.adapt_box.value() > 0 and inputs is img and "reference" not in extra:
                    extra["adapt"] = float(self.adapt_box.value())
                if self.uncertainty_box.isChecked() and inputs is img and "reference" not in extra:
                    extra.update(ensemble=True, uncertainty=True)
            worker = _upscale_job(inputs, model, scale, **grid_option, tile=tile,
                                  device=self.device_combo.currentText(), progress=self.progress_changed.emit,
                                  cancel=self._cancel, **extra)
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
            **upscaled_placement(job.layer, job.placement_factors(result), job.start),
        )
        spread_name = f"{job.name} uncertainty"
        if spread_name in self.viewer.layers:
            self.viewer.layers.remove(spread_name)
        if outcome.spread is not None and not job.layer.rgb:
            self.viewer.add_image(outcome.spread.array.transpose(job.order), name=spread_name, colormap="magma",
                                  blending="additive", visible=False,
                                  metadata={"source": job.layer.metadata.get("source"), "quantity": "ensemble std"},
                                  **upscaled_placement(job.layer, job.placement_factors(result), job.start))
        done = f"done: {job.name} ({time.perf_counter() - job.started:.1f} s)"
        self.status_label.setText("; ".join([done, *self_check_text(result.meta)]))

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


def self_check_text(meta: dict[str, Any]) -> list[str]:
    """Status phrases for the self-check in an upscaled image's provenance (none for interpolation).

    Parameters
    ----------
    meta : dict
        ``SciImage.meta`` of a :func:`sciSR.upscale` result; its ``meta["provenance"][-1]`` may hold
        ``"self_check"`` (``model_psnr``, ``baseline_psnr`` in dB, ``baseline`` name, ``delta_db``) or, when
        the guard returned the baseline, ``"guard"`` (``replaced`` model name and that ``self_check``).

    Returns
    -------
    list of str
        E.g. ``["self-check: model 31.2 dB vs zerofill 30.8 dB (+0.4)"]``, plus
        ``"guard: returned zerofill instead of <model>"`` when the guard stepped in, and after a test-time
        adaptation (``"adaptation"``) ``"adapted: 412 steps, weights used"`` (or ``"shipped weights kept"``;
        ``"not adapted: <why>; shipped weights kept"`` when it was skipped), and ``"kept 75 % of the detail
        beyond the input's band"`` when the result kept only a share of it (``"detail_share"``).
    """
    provenance = meta.get("provenance") or [{}]
    last = provenance[-1] if isinstance(provenance[-1], dict) else {}
    guard = last.get("guard") or {}
    check = last.get("self_check") or guard.get("self_check")
    if not check:
        return []
    phrases = [f"self-check: model {check['model_psnr']:.1f} dB vs {check['baseline']} "
               f"{check['baseline_psnr']:.1f} dB ({check['delta_db']:+.1f})"]
    adaptation = last.get("adaptation")
    if adaptation and adaptation.get("skipped"):
        phrases.append(f"not adapted: {adaptation['skipped']}; shipped weights kept")
    elif adaptation:
        kept = "weights used" if adaptation.get("used") else "shipped weights kept"
        phrases.append(f"adapted: {adaptation.get('steps', 0)} steps, {kept}")
    if last.get("detail_share") is not None:
        phrases.append(f"kept {100 * last['detail_share']:.0f} % of the detail beyond the input's band")
    if guard:
        phrases.append(f"guard: returned {check['baseline']} instead of {guard.get('replaced', 'the model')}")
    return phrases


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
