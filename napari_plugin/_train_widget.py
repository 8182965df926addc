"""Train dock widget: run :func:`sciSR.training.run` on a recipe in a worker thread and use the model at once.

Recipes are the ones installed with sciSR (:func:`sciSR.training.list_recipes`) or a YAML file. Training
data is the recipe's own (usually a generated phantom) or the image layers selected in the viewer, written
to a temporary folder as NIfTI (FITS for images with a WCS) and passed as ``data.files``.
The run reports its metrics through ``on_metrics`` (every ``train.log_every`` steps and at validation) in
the worker thread; a Qt signal carries them to the UI thread, which draws the live loss/PSNR plot.
Stop sets the run's ``stop`` event: it ends after the current step and still writes the model file from
the weights reached so far. Like the upscale dock, it fits beside the canvas of a 1400-pixel window.
"""

from __future__ import annotations

import itertools
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from napari.layers import Image
from napari.qt.threading import thread_worker
from qtpy.QtCore import QPointF, Qt, Signal
from qtpy.QtGui import QColor, QPainter, QPen
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

import sciSR
import sciSR.training

from ._layers import layer_to_sciimage
from ._widget import COMBO_CHARS, UpscaleWidget

if TYPE_CHECKING:
    import napari

BROWSE = "Browse…"
RECIPE_DATA = "Recipe data"
LAYER_DATA = "Selected image layers"
MAX_STEPS = 10_000_000
# Which logged metric each live curve shows.
CURVES = {"loss": "train/loss", "PSNR": "val/psnr"}


@dataclass
class _Outcome:
    """What a worker hands back: the training result, or the sciSR error that stopped it."""

    result: sciSR.training.TrainResult | None = None
    error: sciSR.SciSRError | None = None


@thread_worker
def _train_job(recipe: str, overrides: list[str], on_metrics: Callable[[dict[str, float]], None],
               stop: threading.Event) -> _Outcome:
    # sciSR errors (a bad recipe key, missing data, an existing model file) are outcomes shown in the
    # widget, not crashes: returning them keeps napari from raising them again in the main thread.
    try:
        return _Outcome(result=sciSR.training.run(recipe, overrides=overrides, on_metrics=on_metrics, stop=stop))
    except sciSR.SciSRError as err:
        return _Outcome(error=err)


class CurvePlot(QWidget):
    """A small live plot: each series against the step, scaled to its own range, drawn with QPainter.

    Loss falls and PSNR rises on very different scales, so each curve gets the full height and the legend
    gives its latest value.
    """

    COLORS: ClassVar[dict[str, tuple[int, int, int]]] = {"loss": (230, 120, 40), "PSNR": (60, 150, 230)}

    def __init__(self) -> None:
        super().__init__()
        self.series: dict[str, list[tuple[float, float]]] = {}
        self.setMinimumHeight(120)

    def add_point(self, name: str, step: float, value: float) -> None:
        """Append a point to one curve and repaint."""
        self.series.setdefault(name, []).append((step, value))
        self.update()

    def paintEvent(self, event: Any) -> None:  # noqa: N802 - Qt's name
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        width, height = self.width(), self.height()
        painter.setPen(QPen(QColor(128, 128, 128)))
        painter.drawRect(0, 0, width - 1, height - 1)
        steps = [step for points in self.series.values() for step, _ in points]
        if not steps:
            return
        s0, s1 = min(steps), max(max(steps), min(steps) + 1)
        for row, (name, points) in enumerate(self.series.items()):
            if not points:
                continue
            values = [value for _, value in points]
            v0, v1 = min(values), max(max(values), min(values) + 1e-12)
            color = QColor(*self.COLORS.get(name, (200, 200, 200)))
            painter.setPen(QPen(color, 2))
            xy = [QPointF(4 + (width - 8) * (step - s0) / (s1 - s0), height - 4 - (height - 8) * (v - v0) / (v1 - v0))
                  for step, v in points]
            for a, b in itertools.pairwise(xy):
                painter.drawLine(a, b)
            painter.drawText(8, 16 + 16 * row, f"{name} {values[-1]:.4g}")


def format_metrics(metrics: Mapping[str, Any]) -> str:
    """``"loss 0.0123 · PSNR 31.20 dB · SSIM 0.912"`` from ``on_metrics`` reports or :attr:`TrainResult.metrics`."""
    parts = []
    for keys, label, fmt in ((("train/loss",), "loss", ".4g"), (("val/psnr", "val_psnr"), "PSNR", ".2f"),
                             (("val/ssim", "val_ssim"), "SSIM", ".3f")):
        value = next((metrics[key] for key in keys if key in metrics), None)
        if value is not None:
            parts.append(f"{label} {value:{fmt}}{' dB' if label == 'PSNR' else ''}")
    return " · ".join(parts)


def _yaml_text(text: str) -> str:
    """``text`` as a YAML single-quoted string.

    Override values are parsed as YAML, and a path may hold ``: ``, ``#`` or backslashes (which a
    double-quoted string would read as escapes).
    """
    return "'" + text.replace("'", "''") + "'"


class TrainWidget(QWidget):
    """Train a super-resolution model from a recipe, on its own data or on image layers.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
        Injected by napari.

    Attributes
    ----------
    metrics_received : Signal
        Carries each ``on_metrics`` report (a ``dict[str, float]``) from the training thread to the UI thread.
    extra_overrides : list of str
        ``key.sub=value`` settings appended after the widget's own (tests shrink a recipe with them).
    upscale_widget : UpscaleWidget or None
        Where a finished model is offered; when None, the first :class:`UpscaleWidget` docked in the
        viewer's window is used.
    result : sciSR.training.TrainResult or None
        The last finished run.
    """

    metrics_received = Signal(dict)

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        self.viewer = viewer
        self.extra_overrides: list[str] = []
        self.upscale_widget: UpscaleWidget | None = None
        self.result: sciSR.training.TrainResult | None = None
        self._latest: dict[str, float] = {}
        self._started = 0.0
        # Layer files of the last run; kept until the next run because the model card names them.
        self._data_dir: tempfile.TemporaryDirectory | None = None

        self.recipe_combo = QComboBox()
        for name in sciSR.training.list_recipes():
            self.recipe_combo.addItem(name, name)
        self.browse_button = QPushButton(BROWSE)
        self.data_combo = QComboBox()
        self.data_combo.addItems([RECIPE_DATA, LAYER_DATA])
        for combo in (self.recipe_combo, self.data_combo):
            # A combo box otherwise grows to its longest item (a recipe file's name) and widens the dock.
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(COMBO_CHARS)
        self.data_combo.setToolTip("Layers are written to NIfTI/FITS files with their geometry and trained on")
        self.steps_box = QSpinBox()
        self.steps_box.setRange(1, MAX_STEPS)
        self.out_edit = QLineEdit(str(Path.cwd() / "runs"))
        self.out_edit.setToolTip("Runs go to <folder>/<recipe name>: logs, checkpoints, model.safetensors")
        self.out_button = QPushButton(BROWSE)
        self.overwrite_box = QCheckBox("Replace earlier run")
        self.overwrite_box.setToolTip("Replace an earlier run of this recipe in the output folder")
        self.start_button = QPushButton("Start")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.stop_button.setToolTip("End after the current step and save the model reached so far")
        self._stop = threading.Event()
        self.plot = CurvePlot()
        self.live_label = QLabel("")
        self.status_label = QLabel("ready")
        for label in (self.live_label, self.status_label):
            label.setWordWrap(True)
            # Long messages (the model path) wrap within the dock instead of widening it.
            label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)  # copy the model path

        recipe_row = QHBoxLayout()
        recipe_row.addWidget(self.recipe_combo, 1)
        recipe_row.addWidget(self.browse_button)
        out_row = QHBoxLayout()
        out_row.addWidget(self.out_edit, 1)
        out_row.addWidget(self.out_button)
        form = QFormLayout()
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        form.addRow("Recipe", recipe_row)
        form.addRow("Data", self.data_combo)
        form.addRow("Max steps", self.steps_box)
        form.addRow("Output folder", out_row)
        form.addRow("", self.overwrite_box)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.stop_button)
        layout.addLayout(buttons)
        layout.addWidget(self.plot)
        layout.addWidget(self.live_label)
        layout.addWidget(self.status_label)
        layout.addStretch(1)

        self.recipe_combo.currentIndexChanged.connect(self._recipe_changed)
        self.browse_button.clicked.connect(self._browse_recipe)
        self.out_button.clicked.connect(self._browse_out_dir)
        self.start_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(self.stop)
        self.metrics_received.connect(self.show_metrics)
        self._recipe_changed()

    # --- inputs -----------------------------------------------------------------------------------

    def recipe(self) -> str | None:
        """Name of the chosen installed recipe or path of a chosen YAML file, or None."""
        return self.recipe_combo.currentData()

    def add_recipe(self, path: str) -> None:
        """Offer a YAML recipe and select it."""
        if self.recipe_combo.findData(path) < 0:
            self.recipe_combo.addItem(Path(path).name, path)
        self.recipe_combo.setCurrentIndex(self.recipe_combo.findData(path))

    def _browse_recipe(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "sciSR recipe", str(Path.cwd()), "Recipe (*.yaml *.yml)")
        if path:
            self.add_recipe(path)

    def _browse_out_dir(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Output folder", self.out_edit.text())
        if path:
            self.out_edit.setText(path)

    def _recipe_changed(self, *_: Any) -> None:
        """Show the recipe's own step count, so editing it starts from what the recipe asks for."""
        recipe = self.recipe()
        if recipe is None:
            return
        try:
            self.steps_box.setValue(int(sciSR.training.load_config(recipe)["train"]["max_steps"]))
        except sciSR.SciSRError as err:
            self.status_label.setText(f"error: {err}")

    def training_layers(self) -> list[Image]:
        """The selected image layers, in the layer list's order."""
        selected = self.viewer.layers.selection
        return [layer for layer in self.viewer.layers if layer in selected and isinstance(layer, Image)]

    def _layer_overrides(self) -> list[str]:
        """Write the selected layers to a temporary folder; the overrides that train on those files."""
        layers = self.training_layers()
        if not layers:
            raise sciSR.SciSRError("select one or more image layers to train on")
        if self._data_dir is not None:
            self._data_dir.cleanup()
        self._data_dir = tempfile.TemporaryDirectory(prefix="scisr-train-")
        files = []
        for i, layer in enumerate(layers):
            img, _ = layer_to_sciimage(layer)
            # FITS keeps a sky image's WCS; NIfTI keeps a medical image's affine (and suits the rest).
            suffix = ".fits" if img.wcs is not None else ".nii.gz"
            files.append(str(sciSR.write(img, Path(self._data_dir.name) / f"layer{i}{suffix}")))
        return ["data.generate=null", "data.folder=null", f"data.files=[{', '.join(map(_yaml_text, files))}]"]

    def overrides(self) -> list[str]:
        """The settings the widget adds to the recipe (writing the layer files when training on layers)."""
        items = [f"train.max_steps={self.steps_box.value()}", f"train.out_dir={_yaml_text(self.out_edit.text())}"]
        if self.overwrite_box.isChecked():
            items.append("output.overwrite=true")
        if self.data_combo.currentText() == LAYER_DATA:
            items += self._layer_overrides()
        return [*items, *self.extra_overrides]

    # --- running ----------------------------------------------------------------------------------

    def start(self) -> None:
        """Check the recipe with its overrides, then train in a worker thread."""
        recipe = self.recipe()
        if recipe is None:
            self.status_label.setText(f"choose a recipe ({BROWSE})")
            return
        try:
            overrides = self.overrides()
            # Validating here reports a bad key at once, before a worker thread starts.
            cfg = sciSR.training.load_config(recipe, overrides)
        except sciSR.SciSRError as err:
            self.status_label.setText(f"error: {err}")
            return
        self._started = time.perf_counter()
        self._stop.clear()
        # Emitting the signal from the training thread queues the report for the UI thread.
        worker = _train_job(recipe, overrides, self.metrics_received.emit, self._stop)
        worker.returned.connect(self._on_returned)
        worker.errored.connect(self._on_errored)
        worker.finished.connect(self._on_finished)
        self.start_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self.live_label.setText("")
        self._latest.clear()
        self.plot.series.clear()
        self.status_label.setText(f"training {cfg['name']} for {cfg['train']['max_steps']} steps…")
        worker.start()

    def stop(self) -> None:
        """Ask the running training to end after its current step (the model file is still written)."""
        self._stop.set()
        self.stop_button.setEnabled(False)
        self.status_label.setText("stopping after the current step…")

    def show_metrics(self, metrics: Mapping[str, float]) -> None:
        """Show one ``on_metrics`` report: the latest step, loss and PSNR, and extend the live curves.

        Parameters
        ----------
        metrics : Mapping of str to float
            ``step`` plus ``train/...`` (a logging step) or ``val/...`` (a validation) values.
        """
        self._latest.update(metrics)
        for name, key in CURVES.items():
            if key in metrics:
                self.plot.add_point(name, metrics["step"], metrics[key])
        self.live_label.setText(f"step {int(self._latest['step'])} · {format_metrics(self._latest)}")

    def _on_returned(self, outcome: _Outcome) -> None:
        if outcome.result is None:
            self.status_label.setText(f"error: {outcome.error}")
            return
        self.result = result = outcome.result
        path = str(result.model_path)
        target = self.find_upscale_widget()
        if target is not None:
            target.add_model_file(path)
        elapsed = time.perf_counter() - self._started
        offered = " — selected in Super-resolution" if target is not None else ""
        self.status_label.setText(f"done in {elapsed:.1f} s, {result.metrics['iterations']} iterations: "
                                  f"{format_metrics(result.metrics)}\nmodel: {path}{offered}")

    def _on_errored(self, error: Exception) -> None:
        # Unexpected failures also reach napari's notifications (with the traceback).
        self.status_label.setText(f"error: {type(error).__name__}: {error}")

    def _on_finished(self) -> None:
        self.start_button.setEnabled(True)
        self.stop_button.setEnabled(False)

    def find_upscale_widget(self) -> UpscaleWidget | None:
        """:attr:`upscale_widget`, else the first Super-resolution widget docked in the viewer's window."""
        if self.upscale_widget is not None:
            return self.upscale_widget
        docked = getattr(self.viewer.window, "dock_widgets", {})
        return next((widget for widget in docked.values() if isinstance(widget, UpscaleWidget)), None)
