"""
CT ×2 in Hounsfield units
=========================

Upscale pydicom's ``CT_small.dcm`` (a 128 × 128 CT slice) by 2 in-plane with the shipped model ``ct-x2``
and with the cubic B-spline baseline, and check that the values stay Hounsfield units (HU).

Two questions, two experiments:

1. **Is the model better than cubic?** Only measurable where the truth is known: we simulate a 64 × 64
   low-resolution copy of the slice on the same field of view with the CT degradation ``ct-x2`` was
   trained for (reconstruction blur, 2 × 2 detector averaging, noise in HU), upscale it ×2 and compare
   with the original 128 × 128 slice.
2. **Are HU preserved?** We upscale the real 128 × 128 slice to 256 × 256, write it as a derived DICOM
   series, read it back and compare HU statistics.
"""

# %%
# Read the slice
# --------------
# DICOM arrays are ``[column, row]``: ``array.T`` shows the slice as a viewer does. Values are HU
# (``RescaleSlope``/``RescaleIntercept`` applied on read).
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from pydicom.data import get_testdata_file
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

import sciSR

ct = sciSR.read(get_testdata_file("CT_small.dcm"))
print(f"{ct.array.shape} pixels of {ct.spacing[0]:.3f} mm, domain {ct.domain!r}, units {ct.meta.get('units')!r}")
print(f"HU range {ct.array.min():.0f} … {ct.array.max():.0f}")

# %%
# Model against cubic where the truth is known
# --------------------------------------------
# ``sciSR.degrade.ct_downsample`` blurs (FWHM in high-resolution pixels), averages 2 × 2 blocks and adds
# noise; low-resolution pixel ``n`` is centred on high-resolution position ``2n + 0.5``, exactly where
# ``sciSR.upscale`` puts it (see *Concepts → The field-of-view-preserving grid*). ``ct-x2`` was trained
# with FWHM 1–2.5 pixels and noise σ 0–20 HU; the figure uses the middle of that range.
truth = ct.array.astype(np.float32)
value_range = float(truth.max() - truth.min())
model = sciSR.load_model("ct-x2")


def simulate(fwhm: float, noise_hu: float) -> sciSR.SciImage:
    """A 64 × 64 low-resolution copy of the slice (1.32 mm pixels), in HU."""
    values = sciSR.degrade.ct_downsample(truth, (2, 2), fwhm=fwhm, noise_std=noise_hu, rng=np.random.default_rng(0))
    return sciSR.SciImage.from_array(values, spacing=tuple(2 * s for s in ct.spacing), domain="ct",
                                     meta={"units": "HU"})


def score(sr: np.ndarray) -> tuple[float, float]:
    """PSNR (dB) and SSIM against the original slice."""
    return (peak_signal_noise_ratio(truth, sr, data_range=value_range),
            structural_similarity(truth, sr, data_range=value_range))


low = simulate(1.75, 10.0)
results = {"cubic": sciSR.upscale(low, "cubic", scale=2).array, "ct-x2": sciSR.upscale(low, model).array}
scores = {name: score(sr) for name, sr in results.items()}

# A soft-tissue window (W 800, L 0 HU) shows both bone edges and tissue.
window = {"cmap": "gray", "vmin": -400, "vmax": 400, "interpolation": "nearest"}
fig, axes = plt.subplots(1, 4, figsize=(13, 3.8), constrained_layout=True)
panels = [(low.array, "Input: simulated 64 × 64\n(1.32 mm pixels; blur, 2×2 mean, 10 HU noise)"),
          (results["cubic"], "cubic B-spline ×2\nPSNR {:.2f} dB, SSIM {:.3f}".format(*scores["cubic"])),
          (results["ct-x2"], "model ct-x2 ×2\nPSNR {:.2f} dB, SSIM {:.3f}".format(*scores["ct-x2"])),
          (truth, "Truth: CT_small.dcm\n128 × 128 (0.66 mm pixels)")]
for ax, (values, title) in zip(axes, panels, strict=True):
    image = ax.imshow(values.T, extent=(0, 128, 128, 0), **window)  # same field of view in every panel
    ax.set_title(title, fontsize=10)
    ax.set_axis_off()
fig.colorbar(image, ax=axes, shrink=0.8, label="HU")
fig.suptitle("CT ×2 on a simulated low-resolution copy (PSNR/SSIM against the truth)")

# %%
# How much the model helps depends on how the input was degraded. By default (``consistency="auto"``) the
# network's result is also projected onto the input under the CT forward model its card records (blur of
# FWHM 1.75 pixels, then 2 × 2 averaging; see *Concepts → Data consistency*). The table shows the network
# alone (``consistency="off"``) and with the default, against cubic:
print(f"{'low-resolution copy':38s} {'cubic':>9s} {'ct-x2 off':>10s} {'ct-x2 auto':>11s}   (PSNR)")
for fwhm, noise in ((0.0, 0.0), (1.75, 10.0), (2.5, 20.0)):
    copy = simulate(fwhm, noise)
    cubic_psnr = score(sciSR.upscale(copy, "cubic", scale=2).array)[0]
    raw_psnr = score(sciSR.upscale(copy, model, consistency="off").array)[0]
    model_psnr = score(sciSR.upscale(copy, model).array)[0]
    label = f"blur FWHM {fwhm} px, noise {noise:.0f} HU" if fwhm else "plain 2 × 2 block mean"
    print(f"{label:38s} {cubic_psnr:6.2f} dB {raw_psnr:7.2f} dB {model_psnr:8.2f} dB")

# %%
# On a plain block mean (no blur, no noise: an input unlike the training data) cubic wins; the blurrier
# and noisier the input, the more the network gains. The projection helps a little where the input matches
# the recorded forward model (the middle row) and costs where it does not (the first row: no blur at all,
# so undoing the card's blur sharpens too much). In the last row (more blur and noise than the card's) the
# :doc:`self-check </concepts/self_check>`, run on a copy as noisy as the input, keeps the network's result
# unprojected. The self-check measures with the card's forward model, so it cannot see a blur mismatch;
# ``consistency="off"`` (``--consistency off``) is the choice when you know the scan was acquired differently.

# %%
# The model's card records its own held-out comparison on this slice (one draw of its training
# degradation):
for row in model.card["held_out_metrics"]:
    print(f"card: {row['image']}: PSNR {row['psnr']:.2f} dB (cubic {row['psnr_cubic']:.2f})")

# %%
# HU preserved through the upscale and the DICOM writer
# -----------------------------------------------------
# Now the real slice ×2. The written series is a derived DICOM (new UIDs, ``DERIVED\SECONDARY``,
# "not for diagnostic use") storing integers with slope and intercept, so values come back as HU.
upscaled = {name: sciSR.upscale(ct, name, scale=2) for name in ("cubic", "ct-x2")}
with tempfile.TemporaryDirectory() as folder:
    written = {name: sciSR.read(sciSR.write(sr, Path(folder) / f"ct_{name}")) for name, sr in upscaled.items()}


def hu_row(label: str, values: np.ndarray, reference: np.ndarray | None = None) -> str:
    """One line of the HU table; ``reference``: the input, compared with the 2 × 2 block means."""
    body = values[values > -500]  # the patient, not the air around it
    block = "" if reference is None else (
        f"{np.abs(values.reshape(128, 2, 128, 2).mean(axis=(1, 3)) - reference).mean():10.1f}")
    return (f"{label:28s} {values.shape[0]:>4d}² {values.mean():8.1f} {body.mean():8.1f} {body.std():7.1f} "
            f"{np.percentile(values, 1):7.0f} {np.percentile(values, 99):7.0f} {block}")


print(f"{'image':28s} {'size':>5s} {'mean':>8s} {'body':>8s} {'σ body':>7s} {'p1':>7s} {'p99':>7s} "
      f"{'|block mean − input|':>10s}")
print(hu_row("input CT_small.dcm", ct.array))
for name in ("cubic", "ct-x2"):
    print(hu_row(f"{name} ×2", upscaled[name].array, ct.array))
    print(hu_row(f"{name} ×2, written + read", written[name].array, ct.array))
print("largest change from writing (HU):",
      {name: float(np.abs(written[name].array - upscaled[name].array).max()) for name in written})

# %%
# The mean HU of the body and the percentiles stay those of the input, and writing DICOM integers
# changes values by at most half a HU. The last column is the mean absolute difference between each
# 2 × 2 block's mean and the input pixel it came from: small for cubic, larger for the network, whose
# consistency projection makes the result reproduce the input under the CT forward model (blur, then
# 2 × 2 mean), not under a plain 2 × 2 mean. The provenance records that forward model
# (``consistency``) and the self-check (``self_check``); the geometry was updated with the values:
print("spacing (mm):", ct.spacing, "->", written["ct-x2"].spacing)
print("provenance:", upscaled["ct-x2"].meta["provenance"][-1])

# %%
# The histograms tell the same story: the upscaled slices have the input's distribution of HU.
fig, ax = plt.subplots(figsize=(7, 3.5), constrained_layout=True)
bins = np.linspace(-1000, 1200, 111)
ax.hist(ct.array.ravel(), bins=bins, density=True, histtype="step", lw=2, color="k", label="input 128²")
for name, colour in (("cubic", "tab:blue"), ("ct-x2", "tab:orange")):
    ax.hist(written[name].array.ravel(), bins=bins, density=True, histtype="step", color=colour,
            label=f"{name} ×2 (256², written + read)")
ax.set_yscale("log")
ax.set_xlabel("HU")
ax.set_ylabel("density")
ax.set_title("HU histogram of CT_small.dcm before and after ×2")
ax.legend(fontsize=8)
plt.show()
