"""A 2D network through the plane: one family of planes against both, fused (sciSR.infer.orientations).

Thick slices ×4 (Gaussian profile, ``sciSR.degrade.mri.thick_slice``) of the knee phantom 128³ along each
axis, nibabel's anatomical.nii along its slice axis, an isotropic blob phantom 96³ and a 48³ knee phantom;
each upscaled with a shipped through-plane model on one family of planes (the first thin axis, what
``sciSR.upscale`` did before) and on both, fused. Prints the gain over cubic B-spline in dB, the seconds,
and the two families' mean weights above the thick axis's Nyquist frequency.

    .venv/bin/python benchmarks/orientations.py                       # mri-thick-x4
    .venv/bin/python benchmarks/orientations.py --model MODEL --threads 2

On a 2-core AMD EPYC (2 threads, fp32), mri-thick-x4: knee 128³ across the leg +4.37 → +4.99 dB, along axis 1
+4.40 → +4.77, along the leg +0.10 → +0.12; anatomical.nii +0.51 → +0.72; blobs +1.79 → +2.02; knee 48³
+2.81 → +2.54 (the fusion leans to the worse family there); about 2× the time.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

import sciSR
from sciSR import pipeline
from sciSR.data.phantoms import blob_phantom, knee_phantom
from sciSR.degrade.mri import thick_slice
from sciSR.metrics import data_range, psnr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from self_supervised import volumes  # benchmarks/self_supervised.py: the shared test volumes


def cases() -> dict[str, tuple[sciSR.SciImage, int]]:
    """Truth volumes and their thick axis."""
    knee = knee_phantom((128, 128, 128), seed=3)
    found = {f"knee 128³, thick axis {axis}": (knee, axis) for axis in range(3)}
    found.update(volumes(["anatomical"]))
    found["blob phantom 96³"] = (blob_phantom((96, 96, 96), seed=1), 0)
    found["knee 48³ (seed 1)"] = (knee_phantom((48, 48, 48), seed=1), 0)
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="mri-thick-x4", help="a 2D through-plane model")
    parser.add_argument("--factor", type=int, default=4, help="through-plane factor")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    print(f"torch threads {args.threads}, CPUs {os.cpu_count()}, model {args.model}, ×{args.factor}\n")
    print(f"{'volume':<28}{'cubic dB':>9}{'one family':>12}{'s':>6}{'both, fused':>13}{'s':>6}  weights above Nyquist")
    both_families = pipeline.other_orientation
    for name, (truth_image, axis) in cases().items():
        keep = truth_image.array.shape[axis] - truth_image.array.shape[axis] % args.factor
        truth = np.take(truth_image.array, np.arange(keep), axis=axis).astype(np.float32)
        factors = tuple(args.factor if a == axis else 1 for a in range(3))
        spacing = tuple(s * (args.factor if a == axis else 1) for a, s in enumerate(truth_image.spacing))
        low = sciSR.SciImage.from_array(thick_slice(truth, factors), spacing=spacing, domain="mri")
        value_range = data_range(truth)
        cubic = psnr(sciSR.upscale(low, "cubic", factors).array, truth, value_range)
        row = f"{name:<28}{cubic:>9.2f}"
        weights = None
        try:
            for planes in (lambda *_: None, both_families):
                pipeline.other_orientation = planes
                start = time.perf_counter()
                result = sciSR.upscale(low, args.model, factors)
                row += f"{psnr(result.array, truth, value_range) - cubic:>+12.2f}{time.perf_counter() - start:>6.1f}"
                weights = result.meta["provenance"][-1].get("fusion", {}).get("weights_above_nyquist")
        finally:
            pipeline.other_orientation = both_families
        print(f"{row}  {weights}", flush=True)


if __name__ == "__main__":
    main()
