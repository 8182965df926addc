"""Symmetry ensembles on held-out images: does the spread point at the errors, does the mean help?

    python benchmarks/uncertainty.py                # every shipped 2D model on its quality-matrix cells
    python benchmarks/uncertainty.py mri-x2 ct-x2   # only these

For each shipped model, each held-out image and each degradation variant of ``benchmarks/quality.py``'s
matrix (the same truths, the same simulated acquisitions, never a training source), the input is upscaled
once (single pass) and with ``ensemble=True, uncertainty=True``. Printed per cell: PSNR of the single pass
and of the ensemble mean against the truth (dB, peak = the truth's range), their difference, the number of
members, and Spearman's ρ between the spread and the ensemble mean's absolute error over all voxels
(1: the spread ranks voxels exactly by their error; 0: no relation). CT is scored over its reconstructed
field only (:func:`quality.field_only`). Wall time of both runs in the same
process gives the cost ratio. The last rows are medians over cells.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import spearmanr

import sciSR
from sciSR.metrics import psnr

_spec = importlib.util.spec_from_file_location("quality", Path(__file__).with_name("quality.py"))
quality = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(quality)

MODELS_2D = ("mri-x2", "ct-x2", "sky-x2", "generic-x2", "generic-x4")


def cell(model: str, truth: sciSR.SciImage, variant: Any, image: str, seed: int = 0) -> dict[str, Any]:
    """One held-out image × variant: single pass vs ensemble mean, and ρ(spread, |error|)."""
    hr = truth.array[tuple(slice(0, n - n % f) for n, f in zip(truth.array.shape, variant.factors, strict=False))]
    lr = variant.make(hr, np.random.default_rng(seed))
    spacing = tuple(s * f for s, f in zip(truth.spacing, variant.factors, strict=True))
    source = sciSR.SciImage.from_array(lr.astype(np.float32), spacing=spacing, domain=truth.domain,
                                       meta=variant.input_meta())
    options = {"flux": variant.flux} if variant.flux else {}
    start = time.perf_counter()
    single = sciSR.upscale(source, model, **options).array
    t_single = time.perf_counter() - start
    start = time.perf_counter()
    mean, spread = sciSR.upscale(source, model, ensemble=True, uncertainty=True, **options)
    t_ensemble = time.perf_counter() - start
    scored = quality.field_only(hr, truth.domain)  # CT padding outside the disc is no image
    field = np.isfinite(scored)
    data_range = float(np.ptp(scored[field]))
    rho = spearmanr(spread.array[field], np.abs(mean.array - scored)[field]).statistic
    return {"model": model, "image": image, "variant": variant.name,
            "single": psnr(single, scored, data_range), "mean": psnr(mean.array, scored, data_range),
            "members": mean.meta["provenance"][-1]["ensemble"], "rho": float(rho),
            "cost": t_ensemble / t_single}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("models", nargs="*", default=list(MODELS_2D))
    args = parser.parse_args(argv)
    rows = []
    for model in args.models:
        for family, images in quality.MATRIX[model]:
            for name in images:
                truth, _ = quality.load_truth(name, family)
                for variant in quality.variants(family, truth.array.ndim, sciSR.load_model(model).scale[0]):
                    rows.append(cell(model, truth, variant, name))
                    r = rows[-1]
                    print(f"{r['model']:<11} {r['image']:<30} {r['variant']:<22} single {r['single']:6.2f}  "
                          f"mean {r['mean']:6.2f}  Δ {r['mean'] - r['single']:+5.2f} dB  n={r['members']:<3} "
                          f"ρ {r['rho']:5.2f}  cost ×{r['cost']:.1f}", flush=True)
    gains = [r["mean"] - r["single"] for r in rows]
    print(f"\nmedian over {len(rows)} cells: ensemble mean − single pass {np.median(gains):+.2f} dB "
          f"(min {min(gains):+.2f}), ρ(spread, |error|) {np.median([r['rho'] for r in rows]):.2f} "
          f"(min {min(r['rho'] for r in rows):.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
