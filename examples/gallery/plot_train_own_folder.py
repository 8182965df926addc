"""
Train a small model on your own folder of images
================================================

:func:`sciSR.train` runs a YAML recipe (``sciSR.training.list_recipes()``; ``configs/`` in the source
tree). Overrides point it at **your** folder instead of its built-in data, and shrink it for a quick look.
Low-resolution inputs are made on the fly from your high-resolution images with the recipe's degradation
(here antialiased bicubic, on the field-of-view-preserving grid).

Here "your folder" is six PNG tiles cut from two scikit-image photographs (the Moon and coins). The run is
deliberately tiny — 60 steps of a 2-block network, seconds on a CPU — so the model has barely started to
learn: a real run uses the recipe's own ``train.max_steps`` (thousands) and network size.
"""

# sphinx_gallery_thumbnail_number = 2

# %%
# The folder
# ----------
import csv
import logging
import tempfile
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from PIL import Image
from skimage import data
from skimage.metrics import peak_signal_noise_ratio

import sciSR
import sciSR.training

work = Path(tempfile.mkdtemp())
folder = work / "my_images"
folder.mkdir()
moon, coins = data.moon(), data.coins()
for n, (r, c) in enumerate([(0, 0), (0, 256), (256, 0), (256, 256)]):
    Image.fromarray(moon[r:r + 256, c:c + 256]).save(folder / f"moon_{n}.png")
Image.fromarray(coins[:, :192]).save(folder / "coins_0.png")
Image.fromarray(coins[:, 192:]).save(folder / "coins_1.png")
print(sorted(p.name for p in folder.iterdir()))
print("recipes:", ", ".join(sciSR.training.list_recipes()))

# %%
# Train
# -----
# The recipe of the shipped ``generic-x2`` model (grey-level photographs ×2), with its own image
# collection replaced by the folder. ``coins_1.png`` is kept for validation.
overrides = [
    "data.collection=[]", "data.exclude=[]", "data.generate=null",
    # Values are YAML: the pattern is quoted because a bare * starts a YAML alias.
    f"data.folder={folder}", "data.pattern='*.png'", "data.val_subjects=[coins_1]",
    "data.samples_per_epoch=256",
    "model.options={n_blocks: 2, features: 16}",
    "train.max_steps=60", "train.val_every=30", "train.log_every=5", "train.checkpoint_every=60",
    "train.accelerator=cpu", "train.ema=null", "schedule.warmup_steps=5", "optim.lr=2.0e-3",
    f"train.out_dir={work / 'runs'}",
]
# Lightning's advice for long runs (workers, loggers) is noise for a 60-step demonstration.
logging.getLogger("lightning").setLevel(logging.ERROR)
warnings.filterwarnings("ignore", module="lightning")
result = sciSR.train("shipped/generic-x2", overrides=overrides)
print("model file:", result.model_path.name, "+", result.model_path.with_suffix(".json").name)
print({key: round(value, 4) for key, value in result.metrics.items() if isinstance(value, float)})

# %%
# The run's log (``metrics.csv``, also TensorBoard) holds the loss curve and the validation PSNR:
rows = list(csv.DictReader((result.log_dir / "metrics.csv").read_text().splitlines()))
loss = [(int(r["step"]), float(r["train/loss"])) for r in rows if r.get("train/loss")]
val = [(int(r["step"]), float(r["val/psnr"])) for r in rows if r.get("val/psnr")]
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.4), constrained_layout=True)
ax1.plot(*zip(*loss, strict=True), "-o", ms=3)
ax1.set_xlabel("step")
ax1.set_ylabel("L1 loss (normalised units)")
ax1.set_title("Training loss")
ax2.plot(*zip(*val, strict=True), "-o", color="tab:orange")
ax2.set_xlabel("step")
ax2.set_ylabel("PSNR (dB, on normalised values)")
ax2.set_title("Validation PSNR on coins_1.png")
fig.suptitle("sciSR.train('shipped/generic-x2') on my_images/ — 60 steps")

# %%
# Use the model file
# ------------------
# The ``.safetensors`` file (with its JSON card) is what :func:`sciSR.upscale`, ``scisr upscale --model``
# and the napari widget take. We try it on an image it never saw — a crop of scikit-image's ``text``
# picture, reduced ×2 by 2 × 2 block means so that the truth is known — next to the cubic B-spline.
truth = data.text()[:160, :320].astype(np.float32)
low = truth.reshape(80, 2, 160, 2).mean(axis=(1, 3))
results = {"cubic": sciSR.upscale(low, "cubic", scale=2), "trained": sciSR.upscale(low, result.model_path)}
psnr = {name: peak_signal_noise_ratio(truth, sr, data_range=255.0) for name, sr in results.items()}

fig, axes = plt.subplots(1, 4, figsize=(14, 2.6), constrained_layout=True)
panels = [(low, "Input: 2×2 block mean (80 × 160)"),
          (results["cubic"], f"cubic B-spline ×2\nPSNR {psnr['cubic']:.2f} dB"),
          (results["trained"], f"the trained model ×2 (60 steps)\nPSNR {psnr['trained']:.2f} dB"),
          (truth, "Truth (160 × 320)")]
for ax, (values, title) in zip(axes, panels, strict=True):
    ax.imshow(values, cmap="gray", vmin=0, vmax=255, extent=(0, 320, 160, 0), interpolation="nearest")
    ax.set_title(title, fontsize=10)
    ax.set_axis_off()
fig.suptitle("A model trained for 60 steps on my_images/, on an unseen image")
plt.show()

# %%
# Sixty steps are a smoke test, not a model: compare the shipped ``generic-x2``, trained with the same
# recipe for thousands of steps (see :doc:`/models`). From the command line the same run is
# ``scisr train shipped/generic-x2 --set data.folder=my_images --set data.generate=null ...``.
