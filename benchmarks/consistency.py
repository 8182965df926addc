"""Interpolation baselines with and without the data-consistency projection (sciSR.consistency).

    python benchmarks/consistency.py

Each row simulates a low-resolution copy of a high-resolution image with one forward model, upscales it
back and prints PSNR (dB, peak = the truth's range, :func:`sciSR.metrics.psnr`) against the truth:

- MR k-space ×2 (no window, noise-free; then Hamming window + Rician noise σ = 1 % of the maximum) of
  ``MR_small.dcm`` (pydicom) and of the axial planes of ``anatomical.nii`` (nibabel's test data, cropped to
  even sizes, mean over planes): cubic, zerofill, cubic + projection.
- MR thick slices ×4 (Gaussian profile, FWHM = 4 HR voxels) of a knee phantom: cubic vs cubic + projection.
- CT ×2 (Gaussian FWHM 1.5 voxels + block mean) of ``CT_small.dcm``: cubic vs cubic + projection.

Then the memory of the projection of a volume upscaled in-plane (a 384² × 48 knee phantom, k-space ×2 with
Hamming window and noise, its result 7.1 M voxels): peak traced allocations (``tracemalloc``) of
:func:`sciSR.consistency.project` on the whole result (as ``project_in_place`` ran before) against
:func:`sciSR.pipeline.project_in_place`, which projects in slabs across the unscaled axis; bytes per output
voxel and their ratio, and the largest difference between the two results.

No training, a few seconds on one core.
"""

from __future__ import annotations

import dataclasses
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import nibabel
import nibabel.testing
import numpy as np
from pydicom.data import get_testdata_file

import sciSR
from sciSR.consistency import ForwardModel, degrade, project
from sciSR.data.phantoms import knee_phantom
from sciSR.degrade.mri import kspace_downsample
from sciSR.infer.interpolate import interpolate
from sciSR.metrics import psnr
from sciSR.pipeline import project_in_place


def mr_planes() -> dict[str, list[np.ndarray]]:
    """The MR test images packages ship, as lists of 2D float64 planes of even size."""
    small = sciSR.read(get_testdata_file("MR_small.dcm")).array.astype(np.float64)
    path = Path(nibabel.testing.__file__).parent.parent / "tests" / "data" / "anatomical.nii"
    volume = np.asarray(nibabel.load(path).dataobj, dtype=np.float64)[:32, :40]
    planes = [volume[..., k] for k in range(volume.shape[2]) if volume[..., k].max() > 0]
    return {"MR_small.dcm": [small], "anatomical.nii": planes}


def row(name: str, truths: list[np.ndarray], lows: list[np.ndarray], methods: dict) -> None:
    """Print the mean PSNR of each method over the planes."""
    scores = {label: np.mean([psnr(method(lr), t) for t, lr in zip(truths, lows, strict=True)])
              for label, method in methods.items()}
    print(f"{name:<48}" + "".join(f"{label}={score:6.2f}  " for label, score in scores.items()))


def main() -> None:
    rng = np.random.default_rng(0)
    print("PSNR (dB) vs truth")
    for source, planes in mr_planes().items():
        hard = ForwardModel("kspace", (2, 2))
        lows = [degrade(t, hard) for t in planes]
        row(f"{source} k-space x2, no window", planes, lows, {
            "cubic": lambda y: interpolate(y, (2, 2), "cubic"),
            "zerofill": lambda y: interpolate(y, (2, 2), "zerofill"),
            "cubic+project": lambda y, op=hard: project(interpolate(y, (2, 2), "cubic"), y, op),
        })
        soft = ForwardModel("kspace", (2, 2), window="hamming", noise_sigma=None)
        lows = [kspace_downsample(t, (2, 2), "hamming", 0.01 * t.max(), rng).astype(np.float64) for t in planes]
        row(f"{source} k-space x2, Hamming + 1% noise", planes, lows, {
            "cubic": lambda y: interpolate(y, (2, 2), "cubic"),
            "zerofill": lambda y: interpolate(y, (2, 2), "zerofill"),
            "cubic+project": lambda y, op=soft: project(interpolate(y, (2, 2), "cubic"), y, op),
            "cubic+hard-project": lambda y, op=hard: project(interpolate(y, (2, 2), "cubic"), y, op),
        })
    knee = knee_phantom((48, 48, 48), seed=0).array.astype(np.float64)
    thick = ForwardModel("slice_profile", (1, 1, 4))
    row("knee phantom thick slices x4", [knee], [degrade(knee, thick)], {
        "cubic": lambda y: interpolate(y, (1, 1, 4), "cubic"),
        "cubic+project": lambda y: project(interpolate(y, (1, 1, 4), "cubic"), y, thick),
    })
    ct = sciSR.read(get_testdata_file("CT_small.dcm")).array.astype(np.float64)
    ct_op = ForwardModel("ct", (2, 2), fwhm=1.5)
    row("CT_small.dcm CT x2 (FWHM 1.5)", [ct], [degrade(ct, ct_op)], {
        "cubic": lambda y: interpolate(y, (2, 2), "cubic"),
        "cubic+project": lambda y: project(interpolate(y, (2, 2), "cubic"), y, ct_op),
    })

    memory()


def _peak_bytes(step: Callable[[], object]) -> int:
    """Peak bytes traced while ``step`` runs, above what was allocated before it."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    step()
    peak = tracemalloc.get_traced_memory()[1] - before
    tracemalloc.stop()
    return peak


def memory() -> None:
    """Peak memory of the whole-array projection against the slab-wise one, on the same volume."""
    truth = knee_phantom((384, 384, 48), seed=0).array.astype(np.float64)
    op = ForwardModel("kspace", (2, 2, 1), window="hamming", noise_sigma=None)
    low = (kspace_downsample(truth, (2, 2, 1), "hamming", 0.01 * truth.max(), np.random.default_rng(0))
           .astype(np.float32))
    estimate = interpolate(low, (2, 2, 1), "cubic").astype(np.float32)
    sigma = dataclasses.replace(op, noise_sigma=sciSR.consistency.estimate_noise_sigma(low, 3))
    results = {}
    peaks = {"whole array (project)": _peak_bytes(lambda: results.setdefault(
        "whole", project(estimate, low, sigma).astype(np.float32)))}
    slabs = estimate.copy()
    peaks["slabs (project_in_place)"] = _peak_bytes(lambda: project_in_place(slabs, low, sigma, None))
    voxels = estimate.size
    whole = peaks["whole array (project)"]
    print(f"\nProjection memory, {estimate.shape} result ({voxels / 1e6:.1f} M voxels), peak traced bytes")
    for label, peak in peaks.items():
        print(f"{label:<28}{peak / 2**20:8.0f} MiB {peak / voxels:6.1f} B/voxel  ratio {peak / whole:5.2f}")
    span = float(np.ptp(results["whole"]))
    print(f"largest difference between the two: {np.abs(results['whole'] - slabs).max() / span:.1e} of the range")


if __name__ == "__main__":
    main()
