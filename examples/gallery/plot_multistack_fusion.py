"""
Multi-stack fusion: three thick-slice stacks, one volume
========================================================

A thick-slice stack is sharp in its slice plane and blurred across it. Three stacks of the same subject
with their thick direction along three different axes (axial, coronal, sagittal) between them saw every
direction sharply. :func:`sciSR.upscale` with a **list** of stacks resamples every stack by world
coordinates (its affine) onto one output grid — the first stack's grid upscaled by ``scale`` — and fuses
them: with a fusion network (``oktay-multi``, trained with ``configs/fusion_multistack_x4.yaml``) or, as
here, with an interpolation name, which gives the classical baseline: the average of the stacks resampled
with that interpolation.

The truth is a real MR volume (a 64 × 64 × 24 crop of nibabel's ``example4d.nii.gz``, 2 × 2 × 2.2 mm);
each stack averages 4 of its voxels along one axis.
"""

# %%
# Three stacks on the same field of view
# --------------------------------------
import matplotlib.pyplot as plt
import numpy as np
from nibabel.testing import data_path
from skimage.metrics import peak_signal_noise_ratio

import sciSR
from sciSR.geometry import downscale_affine

frames = sciSR.read(f"{data_path}/example4d.nii.gz")
corner = (32, 16, 0)
values = np.ascontiguousarray(frames.array[32:96, 16:80, :, 0])
affine = frames.affine.copy()
affine[:3, 3] = (frames.affine @ [*corner, 1])[:3]  # the crop's voxel (0, 0, 0)
truth = sciSR.SciImage.from_array(values, affine=affine, domain="mri")


def thick_stack(axis: int, factor: int = 4) -> sciSR.SciImage:
    """Average ``factor`` voxels along ``axis``: a stack whose slices are ``factor`` times thicker."""
    factors = tuple(factor if a == axis else 1 for a in range(3))
    last = np.moveaxis(truth.array, axis, -1)
    averaged = np.moveaxis(last.reshape(*last.shape[:-1], -1, factor).mean(axis=-1), -1, axis)
    return sciSR.SciImage.from_array(averaged, affine=downscale_affine(truth.affine, factors), domain="mri",
                                     meta={"source": f"stack thick along axis {axis}"})


stack_k, stack_i, stack_j = thick_stack(2), thick_stack(0), thick_stack(1)
for stack in (stack_k, stack_i, stack_j):
    print(f"{stack.meta['source']}: {stack.array.shape} voxels of {np.round(stack.spacing, 1)} mm")

# %%
# One stack alone, and the three fused
# ------------------------------------
# The output grid is the first stack's grid ×(1, 1, 4): here exactly the truth's grid.
single = sciSR.upscale(stack_k, "cubic", scale=(1, 1, 4))
fused = sciSR.upscale([stack_k, stack_i, stack_j], "cubic", scale=(1, 1, 4))
print("fused grid equals the truth's grid:", np.allclose(fused.affine, truth.affine), fused.array.shape)
print("provenance:", fused.meta["provenance"][-1])

value_range = float(values.max() - values.min())
psnr = {"single": peak_signal_noise_ratio(values, single.array, data_range=value_range),
        "fused": peak_signal_noise_ratio(values, fused.array, data_range=value_range)}
print(f"PSNR against the truth: first stack alone {psnr['single']:.2f} dB, three stacks {psnr['fused']:.2f} dB")

# %%
# The picture
# -----------
# One plane at fixed ``i`` through the same anatomy in every panel (rows ``j`` down, slices ``k`` across),
# each drawn over its field of view in millimetres so that thick voxels look thick.
plane_mm = 32  # the truth's i = 32 plane; in the i-thick stack that is voxel 8


def show(ax: plt.Axes, plane: np.ndarray, spacing: tuple[float, ...], title: str) -> None:
    """Draw a (j, k) plane over its extent in mm with the truth's grey scale."""
    extent = (0, plane.shape[1] * spacing[2], plane.shape[0] * spacing[1], 0)
    ax.imshow(plane, cmap="gray", vmin=lo, vmax=hi, extent=extent, interpolation="nearest")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("k (mm)")
    ax.set_ylabel("j (mm)")


lo, hi = np.percentile(values, [0.5, 99.5])
fig, axes = plt.subplots(2, 3, figsize=(11, 8), constrained_layout=True)
show(axes[0, 0], stack_k.array[plane_mm], stack_k.spacing, "Input stack 1: thick along k\n(8.8 mm slices)")
show(axes[0, 1], stack_i.array[plane_mm // 4], stack_i.spacing, "Input stack 2: thick along i\n(8 mm slices)")
show(axes[0, 2], stack_j.array[plane_mm], stack_j.spacing, "Input stack 3: thick along j\n(8 mm slices)")
show(axes[1, 0], single.array[plane_mm], single.spacing,
     f"cubic ×(1, 1, 4), stack 1 alone\nPSNR {psnr['single']:.2f} dB")
show(axes[1, 1], fused.array[plane_mm], fused.spacing,
     f"cubic fusion of the 3 stacks ×(1, 1, 4)\nPSNR {psnr['fused']:.2f} dB")
show(axes[1, 2], values[plane_mm], truth.spacing, "Truth\n(2 × 2 × 2.2 mm)")
fig.suptitle("Multi-stack fusion (average of resampled stacks): plane i = 32, same field of view in every panel")
plt.show()

# %%
# A trained fusion network replaces the average: ``sciSR.upscale([stack_k, stack_i, stack_j],
# "fusion.safetensors", scale=(1, 1, 4))`` with a model trained by
# ``scisr train fusion_multistack_x4`` (see :doc:`/training`).
