"""
Using the result in napari
==========================

sciSR's napari plugin reads DICOM, NIfTI and FITS with their geometry: a layer's ``scale`` is the voxel
spacing and its ``translate`` places the grid in the world. An upscaled image written by sciSR therefore
opens **exactly on top of its input**: the field of view is preserved, only the voxels are smaller.

Here ``CT_small.dcm`` is upscaled ×2 with the shipped model ``ct-x2``, written as a DICOM series, and both
are opened with the plugin's reader in a real napari window (under Xvfb during the documentation build).
The screenshot is taken with ``viewer.screenshot()`` and shown with matplotlib.
"""

# %%
# Can a window be opened?
# -----------------------
# napari needs an X display. The probe runs in a separate process because a Qt platform plugin that
# cannot start aborts its whole process instead of raising an exception.
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from pydicom.data import get_testdata_file

import sciSR

probe = "from qtpy.QtWidgets import QApplication; app = QApplication([]); print(app.platformName())"
try:
    answer = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    display_ok = answer.returncode == 0 and bool(os.environ.get("DISPLAY"))
    # Qt's first complaint names the cause ("could not connect to display", "could not load ... xcb").
    complaints = [line for line in answer.stderr.splitlines() if "could not" in line.lower()]
    why = (complaints or answer.stderr.strip().splitlines() or ["no DISPLAY variable"])[0]
except (OSError, subprocess.TimeoutExpired) as error:
    display_ok, why = False, str(error)
print("display:", os.environ.get("DISPLAY"), "->", "a window can be opened" if display_ok else f"none ({why})")

# %%
# Upscale and write
# -----------------
source = Path(get_testdata_file("CT_small.dcm"))
ct = sciSR.read(source)
sr = sciSR.upscale(ct, "ct-x2")
written = sciSR.write(sr, Path(tempfile.mkdtemp()) / "ct_small_ct-x2")
print(f"{ct.array.shape} pixels of {ct.spacing[0]:.3f} mm -> {sr.array.shape} pixels of {sr.spacing[0]:.3f} mm")
print("napari translate of the result (old pixels × spacing):", sciSR.geometry.upscale_translate(ct.spacing, (2, 2)))

# %%
# Open both in a real napari window
# ---------------------------------
# The result is opened on top of the input. The camera is zoomed on the centre of the slice and kept
# fixed; one screenshot is taken with only the input visible, one with the result shown over it, and one
# of the whole window.
if display_ok:
    import napari

    viewer = napari.Viewer(show=True, title="sciSR in napari")
    (original,) = viewer.open(source, plugin="scisr", name="CT_small.dcm (input)")
    (upscaled,) = viewer.open(written, plugin="scisr", name="ct-x2 ×2")
    for layer in (original, upscaled):
        layer.contrast_limits = (-400, 400)
    print("layers:", [(layer.name, layer.data.shape, tuple(np.round(layer.scale, 4)),
                       tuple(np.round(layer.translate, 4))) for layer in viewer.layers])


    def outer_edges(layer: napari.layers.Image) -> np.ndarray:
        """World coordinates (mm) of the outer pixel edges: centres ± half a pixel."""
        first = np.asarray(layer.translate) - np.asarray(layer.scale) / 2
        return np.stack([first, first + np.asarray(layer.data.shape) * np.asarray(layer.scale)])

    print("outer edges (mm):", {layer.name: np.round(outer_edges(layer), 3).tolist() for layer in viewer.layers})
    print("same field of view:", np.allclose(outer_edges(original), outer_edges(upscaled), atol=1e-4))

    window_shot = viewer.screenshot(canvas_only=False, flash=False)
    viewer.camera.zoom *= 3
    upscaled.visible = False
    input_shot = viewer.screenshot(canvas_only=True, flash=False)
    upscaled.visible = True
    result_shot = viewer.screenshot(canvas_only=True, flash=False)
    viewer.close()

    fig, ax = plt.subplots(figsize=(11, 6.5), constrained_layout=True)
    ax.imshow(window_shot)
    ax.set_axis_off()
    ax.set_title("napari (a real window): CT_small.dcm and its ct-x2 ×2 result, both opened with the sciSR reader;\n"
                 "the result (top layer) covers the input exactly")

    fig, axes = plt.subplots(1, 2, figsize=(12, 5), constrained_layout=True)
    for ax, shot, title in ((axes[0], input_shot, "napari, zoomed ×3: input layer only\n(128 × 128, 0.66 mm pixels)"),
                            (axes[1], result_shot, "napari, same camera: ct-x2 ×2 layer on top\n"
                             "(256 × 256, 0.33 mm pixels, same field of view)")):
        ax.imshow(shot)
        ax.set_axis_off()
        ax.set_title(title, fontsize=11)
else:
    # Without a display the page says so instead of showing a picture it could not take.
    fig, ax = plt.subplots(figsize=(8, 2))
    ax.set_axis_off()
    ax.text(0.5, 0.5, "No X display could be opened while this page was built,\nso there is no napari "
            f"screenshot here.\n\n{textwrap.fill(why, 90)}", ha="center", va="center", fontsize=10)
    ax.set_title("napari screenshot skipped: no display")
plt.show()

# %%
# In the window, the two layers keep their geometry when you pan, zoom or switch off grid mode: the
# result lies exactly over the input. The same happens for a result made in napari with the
# Super-resolution widget, which places its output layer with the new spacing as ``scale`` and a
# ``translate`` of ``(1/s − 1)/2`` old pixels.
