"""Interpolation baselines with and without the data-consistency projection (sciSR.consistency).

    python benchmarks/consistency.py

Each row simulates a low-resolution copy of a high-resolution image with one forward model, upscales it
back and prints PSNR (dB, peak = the truth's range, :func:`sciSR.metrics.psnr`) against the truth:

- MR k-space ×2 (no window, noise-free; then Hamming window + Rician noise σ = 1 % of the maximum) of
  ``MR_small.dcm`` (pydicom) and of the axial planes of ``anatomical.nii`` (nibabel's test data, cropped to
  even sizes, mean over planes): cubic, zerofill, cubic + projection.
- MR thick slices ×4 (Gaussian profile, FWHM = 4 HR voxels) of a knee phantom: cubic vs cubic + projection.
- CT ×2 (Gaussian FWHM 1.5 voxels + block mean) of ``CT_small.dcm``: cubic vs cubic + projection.

No training, a few seconds on one core.
"""

from __future__ import annotations

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


if __name__ == "__main__":
    main()
