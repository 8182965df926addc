"""Train dock widget: run :func:`sciSR.train.run` on a recipe in a worker thread and use the model at once.

Training data is the recipe's own (usually a generated phantom) or the image layers selected in the
viewer, written to a temporary folder as NIfTI (FITS for images with a WCS) and passed as ``data.files``.
While the run goes on, a timer reads the run's ``metrics.csv`` (flushed at the recipe's ``log_every``) into a live
loss/PSNR plot.
Stop ends the run after the current step through a Lightning callback; the model file is still written
from the weights reached so far.
"""

from __future__ import annotations

import csv
import itertools
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import lightning as L
from napari.layers import Image
from napari.qt.threading import thread_worker
from qtpy.QtCore import QPointF, Qt, QTimer
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
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

import sciSR
import sciSR.train

from ._layers import layer_to_sciimage
from ._widget import UpscaleWidget

if TYPE_CHECKING:
    import napari

BROWSE = "Browse…"
RECIPE_DATA = "Recipe data"
LAYER_DATA = "Selected image layers"
MAX_STEPS = 10_000_000
POLL_MS = 500
# The shipped recipes live beside the package in a source checkout (``<repo>/configs``).
CONFIGS_DIR = Path(sciSR.__file__).resolve().parent.parent / "configs"


@dataclass
class _Outcome:
    """What a worker hands back: the training result, or the sciSR error that stopped it."""

    result: sciSR.train.TrainResult | None = None
    error: sciSR.SciSRError | None = None


class _StopWhenSet(L.Callback):
    """Ends training after the current step once ``event`` is set (Lightning then finishes cleanly)."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        if self.event.is_set():
            trainer.should_stop = True


@thread_worker
def _train_job(recipe: str, overrides: list[str], stop: threading.Event) -> _Outcome:
    # sciSR errors (a bad recipe key, missing data, an existing model file) are outcomes shown in the
    # widget, not crashes: returning them keeps napari from raising them again in the main thread.
    try:
        return _Outcome(result=sciSR.train.run(recipe, overrides=overrides, callbacks=[_StopWhenSet(stop)]))
    except sciSR.SciSRError as err:
        return _Outcome(error=err)


def recipe_files(folder: Path = CONFIGS_DIR) -> list[Path]:
    """The YAML recipes in ``folder`` (none when sciSR is installed without its ``configs`` folder)."""
    return sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]) if folder.is_dir() else []


def latest_metrics(csv_path: Path) -> dict[str, float]:
    """The last value of each column of a Lightning ``metrics.csv`` (rows hold only what was logged then)."""
    latest: dict[str, float] = {}
    with open(csv_path, newline="") as handle:
        for row in csv.DictReader(handle):
            latest.update({key: float(value) for key, value in row.items() if key and value not in ("", None)})
    return latest


def metric_series(csv_path: Path, key: str) -> list[tuple[float, float]]:
    """``(step, value)`` of every row of a Lightning ``metrics.csv`` that logged ``key``."""
    with open(csv_path, newline="") as handle:
        return [(float(row.get("step") or 0), float(row[key])) for row in csv.DictReader(handle)
                if row.get(key) not in ("", None)]


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

    def set_series(self, name: str, points: list[tuple[float, float]]) -> None:
        """Replace the points of one curve and repaint."""
        self.series[name] = points
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
    """``"loss 0.0123 · PSNR 31.20 dB · SSIM 0.912"`` from CSV columns or :attr:`TrainResult.metrics`."""
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
    extra_overrides : list of str
        ``key.sub=value`` settings appended after the widget's own (tests shrink a recipe with them).
    upscale_widget : UpscaleWidget or None
        Where a finished model is offered; when None, the first :class:`UpscaleWidget` docked in the
        viewer's window is used.
    result : sciSR.train.TrainResult or None
        The last finished run.
    """

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        self.viewer = viewer
        self.extra_overrides: list[str] = []
        self.upscale_widget: UpscaleWidget | None = None
        self.result: sciSR.train.TrainResult | None = None
        self._run_dir: Path | None = None
        self._old_logs: set[Path] = set()
        self._started = 0.0
        # Layer files of the last run; kept until the next run because the model card names them.
        self._data_dir: tempfile.TemporaryDirectory | None = None

        self.recipe_combo = QComboBox()
        for path in recipe_files():
            self.recipe_combo.addItem(path.name, str(path))
        self.browse_button = QPushButton(BROWSE)
        self.data_combo = QComboBox()
        self.data_combo.addItems([RECIPE_DATA, LAYER_DATA])
        self.data_combo.setToolTip("Layers are written to NIfTI/FITS files with their geometry and trained on")
        self.steps_box = QSpinBox()
        self.steps_box.setRange(1, MAX_STEPS)
        self.out_edit = QLineEdit(str(Path.cwd() / "runs"))
        self.out_edit.setToolTip("Runs go to <folder>/<recipe name>: logs, checkpoints, model.safetensors")
        self.out_button = QPushButton(BROWSE)
        self.overwrite_box = QCheckBox("Replace an earlier run of this recipe")
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
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)  # copy the model path
        self.timer = QTimer(self)
        self.timer.setInterval(POLL_MS)

        recipe_row = QHBoxLayout()
        recipe_row.addWidget(self.recipe_combo, 1)
        recipe_row.addWidget(self.browse_button)
        out_row = QHBoxLayout()
        out_row.addWidget(self.out_edit, 1)
        out_row.addWidget(self.out_button)
        form = QFormLayout()
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
        self.timer.timeout.connect(self.poll_metrics)
        self._recipe_changed()

    # --- inputs -----------------------------------------------------------------------------------

    def recipe(self) -> str | None:
        """Path of the chosen recipe, or None."""
        return self.recipe_combo.currentData()

    def add_recipe(self, path: str) -> None:
        """Offer a YAML recipe and select it."""
        if self.recipe_combo.findData(path) < 0:
            self.recipe_combo.addItem(Path(path).name, path)
        self.recipe_combo.setCurrentIndex(self.recipe_combo.findData(path))

    def _browse_recipe(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "sciSR recipe", str(CONFIGS_DIR), "Recipe (*.yaml *.yml)")
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
            self.steps_box.setValue(int(sciSR.train.load_config(recipe)["train"]["max_steps"]))
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
            # Validating here reports a bad key at once and names the run folder the timer watches.
            cfg = sciSR.train.load_config(recipe, overrides)
        except sciSR.SciSRError as err:
            self.status_label.setText(f"error: {err}")
            return
        self._run_dir = Path(cfg["train"]["out_dir"]) / cfg["name"]
        self._old_logs = set((self._run_dir / "logs").glob("version_*"))
        self._started = time.perf_counter()
        self._stop.clear()
        worker = _train_job(recipe, overrides, self._stop)
        worker.returned.connect(self._on_returned)
        worker.errored.connect(self._on_errored)
        worker.finished.connect(self._on_finished)
        self.start_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self.live_label.setText("")
        self.plot.series.clear()
        self.status_label.setText(f"training {cfg['name']} for {cfg['train']['max_steps']} steps…")
        self.timer.start()
        worker.start()

    def stop(self) -> None:
        """Ask the running training to end after its current step (the model file is still written)."""
        self._stop.set()
        self.stop_button.setEnabled(False)
        self.status_label.setText("stopping after the current step…")

    def poll_metrics(self) -> None:
        """Show the latest step, loss and PSNR from this run's ``metrics.csv`` (once it is written)."""
        if self._run_dir is None:
            return
        new = sorted(set((self._run_dir / "logs").glob("version_*")) - self._old_logs)
        csv_path = new[-1] / "metrics.csv" if new else None
        if csv_path is None or not csv_path.is_file():
            return
        try:
            latest = latest_metrics(csv_path)
        except (OSError, ValueError, csv.Error):
            return  # caught mid-write: the next tick reads the whole file
        step = f"step {int(latest['step'])} · " if "step" in latest else ""
        self.live_label.setText(step + format_metrics(latest))
        for name, key in (("loss", "train/loss"), ("PSNR", "val/psnr")):
            self.plot.set_series(name, metric_series(csv_path, key))

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
        self.timer.stop()
        self.poll_metrics()  # the logger writes its last rows when the run ends
        self.start_button.setEnabled(True)
        self.stop_button.setEnabled(False)

    def find_upscale_widget(self) -> UpscaleWidget | None:
        """:attr:`upscale_widget`, else the first Super-resolution widget docked in the viewer's window."""
        if self.upscale_widget is not None:
            return self.upscale_widget
        docked = getattr(self.viewer.window, "dock_widgets", {})
        return next((widget for widget in docked.values() if isinstance(widget, UpscaleWidget)), None)
