"""Train the models that ship with sciSR and install them in ``sciSR/weights``.

Usage::

    python examples/train_shipped_models.py                 # all recipes shipped/*, one after another
    python examples/train_shipped_models.py mri-x2 ct-x2    # only these
    python examples/train_shipped_models.py --max-time-s 300 --runs /tmp/runs --threads 1

Each recipe ``shipped/<name>`` (``configs/shipped/<name>.yaml``) is trained with :func:`sciSR.training.run` on
images that installed packages ship (:mod:`sciSR.data.shipped`) and generated phantoms, within its
``train.max_time_s``. The model
is then written to ``sciSR/weights/<name>.safetensors`` with its JSON card beside it; the card gets the
name, a description (the recipe's header comment), the training data, the held-out test images, the data
licences, the recipe, steps, wall time, the machine, and PSNR/SSIM against cubic B-spline on the held-out
images (measured as ``benchmarks/quality.py`` does).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

import sciSR
from sciSR.data.shipped import held_out, licences
from sciSR.hub import WEIGHTS_DIR, save_model
from sciSR.infer.receptive_field import receptive_field_radius
from sciSR.training import list_recipes, load_config, recipe_path, run

ROOT = Path(__file__).resolve().parents[1]
ORDER = ("generic-x2", "generic-x4", "mri-x2", "mri-thick-x4", "ct-x2", "sky-x2")

sys.path.insert(0, str(ROOT / "benchmarks"))
import quality  # noqa: E402  (benchmarks/quality.py: the one definition of the held-out measurement)


def description(recipe: Path) -> str:
    """The recipe's header comment as one paragraph."""
    lines = []
    for line in recipe.read_text().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("# ").strip())
    return " ".join(lines)


def machine() -> str:
    """CPU/GPU, core count and library versions of this run."""
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else platform.processor() or "CPU"
    return (f"{device}, {os.cpu_count()} cores visible (shared), {platform.system()} {platform.machine()}, "
            f"Python {platform.python_version()}, torch {torch.__version__}, sciSR {sciSR.__version__}")


def train_one(name: str, runs: Path, weights: Path, extra: list[str]) -> dict[str, Any]:
    """Train recipe ``name``, install it in ``weights``, measure it on its held-out images."""
    recipe = recipe_path(f"shipped/{name}")
    overrides = [f"train.out_dir={runs}", "output.overwrite=true", *extra]
    cfg = load_config(recipe, overrides)
    start = time.perf_counter()
    result = run(recipe, overrides=overrides)
    wall = time.perf_counter() - start
    net = sciSR.load_model(result.model_path)
    data = cfg["data"]
    sources = list(data["collection"]) + ([f"{data['generate']} phantoms ×{data['count']}"] if data["generate"] else [])
    card = {
        "name": name,
        "description": description(recipe),
        "training_data": {"collections": list(data["collection"]), "generated": sources[len(data["collection"]):],
                          "train_subjects": net.card["training"]["data"]["train_subjects"],
                          "val_subjects": net.card["training"]["data"]["val_subjects"]},
        "held_out": [p.name for p in held_out(data["collection"], data["exclude"])],
        "data_licences": sorted({text for c in data["collection"] for text in licences(c)}
                                | ({licences("mri-phantom-slices")[0]} if data["generate"] else set())),
        "recipe": os.fspath(recipe.relative_to(ROOT)),
        "steps": int(result.metrics["iterations"]),
        "wall_time_s": round(wall, 1),
        "machine": machine(),
    }
    if cfg["model"]["init"]:
        # A fine-tuning run: the card names the weights it started from, so the chain can be followed.
        start_card = sciSR.load_model(cfg["model"]["init"]).card
        card["initialised_from"] = {"model": os.fspath(cfg["model"]["init"]),
                                    "weights_sha256": start_card["weights_sha256"],
                                    "steps": start_card.get("steps"), "wall_time_s": start_card.get("wall_time_s"),
                                    "recipe": start_card.get("recipe")}
    target = weights / f"{name}.safetensors"
    save_model(net, target, overwrite=True, **card)
    rows = quality.evaluate_shipped(target)
    card["held_out_metrics"] = [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()
                                 if not isinstance(v, np.ndarray)} for r in rows]
    final = sciSR.load_model(target)
    # Measured once here and declared in the card, so no load (a one-shot CLI run, a Dask worker) probes it.
    receptive_field_radius(final, final.spec.spatial_dims, final.spec.scale, final.spec.in_channels)
    save_model(final, target, overwrite=True, **card)
    print(f"{name}: {card['steps']} steps in {wall:.0f} s → {target} ({target.stat().st_size / 1e6:.2f} MB)")
    print(quality.table(rows), flush=True)
    return card


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", default=list(ORDER), help=f"recipes (default: {' '.join(ORDER)})")
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "shipped", help="run folders (logs, checkpoints)")
    parser.add_argument("--weights", type=Path, default=WEIGHTS_DIR, help="where the model files go")
    parser.add_argument("--max-time-s", type=float, default=None, help="override every recipe's time limit")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads; 1 on a shared machine (oversubscribed cores cost ~5× per step)")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    unknown = [n for n in args.names if f"shipped/{n}" not in list_recipes()]
    if unknown:
        print(f"error: no recipe shipped/{unknown[0]} (scisr train --list names them)", file=sys.stderr)
        return 2
    args.weights.mkdir(parents=True, exist_ok=True)
    extra = [] if args.max_time_s is None else [f"train.max_time_s={args.max_time_s}"]
    for name in args.names:
        train_one(name, args.runs, args.weights, extra)
    return 0


if __name__ == "__main__":
    sys.exit(main())
