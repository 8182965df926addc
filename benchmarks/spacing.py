"""Non-integer slice ratios (``spacing=``): self-supervision at the true ratio vs integer routes and cubic.

A high-resolution volume (the 128³ knee phantom, 0.5 mm) is thick-sliced along axis 0 at a non-integer
ratio r (Gaussian slice profile, FWHM = the slice spacing, slices on the field-of-view grid), so the
low-resolution volume has ``round(128/r)`` slices of ``0.5·128/round(128/r)`` mm. Every method is then
asked for ``spacing=0.5`` — the truth's own grid — and scored against the truth (PSNR/SSIM, 3D, range of
the truth). Methods:

- ``cubic``: one cubic B-spline resample straight onto the grid;
- ``self-supervised, true ratio``: :func:`sciSR.self_supervised` with ``spacing=`` (trains at r);
- ``self-supervised ×ceil(r) + resample``: the integer route (``scale=ceil(r)``, then cubic onto the grid);
- ``mri-thick-x4 + resample``: the shipped through-plane ×4 model at its own factor, resampled
  (``upscale(..., spacing=)``).

Run::

    .venv/bin/python benchmarks/spacing.py --budget 60 --ratios 2.5 3.3
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch

import sciSR
from sciSR.data.phantoms import knee_phantom
from sciSR.degrade.kernels import gaussian_profile, sample_axis
from sciSR.infer.interpolate import resample_grid
from sciSR.metrics import data_range, psnr, ssim


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ratios", type=float, nargs="+", default=[2.5, 3.3])
    parser.add_argument("--budget", type=float, default=60.0, help="seconds per self-supervised run")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    truth = knee_phantom((128, 128, 128), seed=3)
    hr = truth.array.astype(np.float32)
    value_range = data_range(hr)
    print(f"truth: knee phantom {hr.shape}, {truth.spacing} mm; torch threads {args.threads}; budget {args.budget} s")
    print("| ratio | slices | method | PSNR dB | Δ vs cubic | SSIM | s |")
    print("|---|---|---|---|---|---|---|")
    for ratio in args.ratios:
        n_lr = round(hr.shape[0] / ratio)
        lr = sample_axis(hr, 0, n_lr, *gaussian_profile(ratio))
        spacing = (truth.spacing[0] * hr.shape[0] / n_lr, *truth.spacing[1:])
        lr_image = sciSR.SciImage.from_array(lr, spacing=spacing, domain="mri")
        target = truth.spacing[0]
        rows = []
        for method in ("cubic", "self-supervised, true ratio", f"self-supervised ×{math.ceil(ratio)} + resample",
                       "mri-thick-x4 + resample"):
            start = time.perf_counter()
            if method == "cubic":
                sr = sciSR.upscale(lr_image, "cubic", spacing=target).array
            elif method.startswith("self-supervised, true"):
                sr = sciSR.self_supervised(lr_image, spacing=target, time_budget_s=args.budget, device="cpu").array
            elif method.startswith("self-supervised"):
                scale = tuple(math.ceil(ratio) if a == 0 else 1 for a in range(3))
                up = sciSR.self_supervised(lr_image, scale, time_budget_s=args.budget, device="cpu").array
                sr = resample_grid(up, hr.shape, "cubic")
            else:
                sr = sciSR.upscale(lr_image, "mri-thick-x4", spacing=target).array
            seconds = time.perf_counter() - start
            assert sr.shape == hr.shape, (method, sr.shape)
            rows.append((method, psnr(sr, hr, value_range), ssim(sr, hr, value_range), seconds))
        base = rows[0][1]
        for method, p, s, seconds in rows:
            print(f"| {ratio:g} | {n_lr} | {method} | {p:.2f} | {p - base:+.2f} | {s:.3f} | {seconds:.0f} |")


if __name__ == "__main__":
    main()
