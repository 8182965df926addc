"""Test-time adaptation on held-out MRI: does ``adapt=SECONDS`` beat the shipped weights, and cubic?

    python benchmarks/adaptation.py                     # mri-x2, 60 s per cell
    python benchmarks/adaptation.py --budget 30 60      # several budgets
    python benchmarks/adaptation.py --models generic-x2

For each model, each held-out truth and each in-plane MRI variant of ``benchmarks/quality.py``'s matrix
(sharp k-space ×2; Hamming + 2 % Rician), the input is upscaled with the shipped weights and with ``adapt=``
each budget (consistency ``auto`` both times, as a user gets it). The truths are the matrix's MRI images
(whose 32² inputs are too small to adapt: reported as refused) and two 128² slices of synthetic knee
phantoms (an axial one of seed 3, a coronal one of seed 7; no shipped model trained on phantoms). Printed per
cell: PSNR over cubic B-spline of both (dB, against the truth), the adaptation's steps, whether the adapted
weights were used, its held-out L1 before → after (or why it was skipped), and the wall time (adaptation
included). Timings are
this machine's; the budget is wall-clock, so a loaded machine trains fewer steps.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

import sciSR
from sciSR.data.phantoms import knee_phantom
from sciSR.errors import SciSRError
from sciSR.metrics import psnr

_spec = importlib.util.spec_from_file_location("quality", Path(__file__).with_name("quality.py"))
quality = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(quality)


def cell(model: str, truth: sciSR.SciImage, variant: Any, budgets: list[float], seed: int = 0) -> dict[str, Any]:
    """One held-out image × variant: cubic, the shipped weights and each adaptation budget, in dB."""
    hr = truth.array[tuple(slice(0, n - n % f) for n, f in zip(truth.array.shape, variant.factors, strict=False))]
    lr = variant.make(hr, np.random.default_rng(seed))
    spacing = tuple(s * f for s, f in zip(truth.spacing, variant.factors, strict=True))
    # What the input's header would tell (75 % of the lines measured), as in the quality matrix.
    source = sciSR.SciImage.from_array(lr.astype(np.float32), spacing=spacing, domain=truth.domain,
                                       meta=variant.input_meta())
    data_range = float(np.ptp(hr))
    score = {"cubic": psnr(sciSR.upscale(source, "cubic", variant.factors).array, hr, data_range)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the self-check's loss warnings: the table reports the losses
        score["shipped"] = psnr(sciSR.upscale(source, model).array, hr, data_range)
        runs = []
        for budget in budgets:
            start = time.perf_counter()
            result = sciSR.upscale(source, model, adapt=budget)
            seconds = time.perf_counter() - start
            record = result.meta["provenance"][-1]["adaptation"]
            runs.append({"budget": budget, "psnr": psnr(result.array, hr, data_range), "seconds": seconds,
                         "steps": record["steps"], "used": record["used"], "skipped": record.get("skipped"),
                         "l1": (record.get("val_l1_start"), record.get("val_l1"))})
    return {**score, "runs": runs}


def truths() -> dict[str, sciSR.SciImage]:
    """The held-out MRI truths: the quality matrix's images and two knee-phantom slices."""
    found = {name: quality.load_truth(name, "mri-inplane")[0] for name in quality.MRI_HELD_OUT}
    for label, seed, plane in (("knee s3 axial 64", 3, (slice(None), slice(None), 64)),
                               ("knee s7 coronal 50", 7, (slice(None), 50))):
        array = knee_phantom((128, 128, 128), seed=seed).array[plane]
        found[label] = sciSR.SciImage.from_array(array, spacing=(0.5, 0.5), domain="mri")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="*", default=["mri-x2"], help="2D in-plane models (default mri-x2)")
    parser.add_argument("--budget", type=float, nargs="*", default=[60.0], help="adaptation seconds (default 60)")
    args = parser.parse_args(argv)
    gains = []
    for model in args.models:
        for name, truth in truths().items():
            for variant in quality.variants("mri-inplane", truth.spatial_ndim, 2):
                try:
                    r = cell(model, truth, variant, args.budget)
                except SciSRError as err:
                    print(f"{model:<11} {name:<18} {variant.name:<18} refused: {err}", flush=True)
                    continue
                line = (f"{model:<11} {name:<18} {variant.name:<18} shipped {r['shipped'] - r['cubic']:+5.2f} dB "
                        "over cubic")
                for run in r["runs"]:
                    gains.append(run["psnr"] - r["shipped"])
                    line += f" | adapt {run['budget']:g} s: {run['psnr'] - r['cubic']:+5.2f} dB, "
                    if run["skipped"]:
                        line += f"skipped ({run['skipped']}), {run['seconds']:.0f} s"
                        continue
                    line += (f"{run['steps']} steps, {'used' if run['used'] else 'not used'}, held-out L1 "
                             f"{run['l1'][0]:.4g} → {run['l1'][1]:.4g}, {run['seconds']:.0f} s")
                print(line, flush=True)
    print(f"\nadapted − shipped over {len(gains)} runs: median {np.median(gains):+.2f} dB "
          f"(min {min(gains):+.2f}, max {max(gains):+.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
