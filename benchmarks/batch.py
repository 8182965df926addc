"""Batch throughput: files per second of ``sciSR.upscale_batch`` in a loop and on Dask local clusters.

    python benchmarks/batch.py [--files 16] [--size 256] [--model generic-x2] [--workers 1 2 4]

Writes ``--files`` generated 2D frames (``generic_scene``, PNG-free: NIfTI so no 8-bit rounding) into a
temporary folder and upscales them ×2 with a shipped network:

- ``loop``: in this process, the model loaded once (the baseline every ratio is against);
- ``dask N``: a ``distributed.LocalCluster`` of N worker processes with one thread each; every worker loads
  the model once (:func:`sciSR.infer.batch.worker_model`, which also records the receptive field in the
  card so it is not measured again per file).

Each row prints the first batch's wall time (model loading and worker imports included; cluster start-up
excluded), a second batch's (the steady state), its files/s and its ratio to the loop's. On a machine
with fewer cores than workers the extra workers only add contention; the table says how many cores there
were. Torch runs one thread per worker (``torch.set_num_threads(1)`` in every process) so rows compare
processes, not thread pools.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np


def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)


def make_files(folder: Path, count: int, size: int) -> list[Path]:
    """``count`` generated scenes of ``size``² pixels as NIfTI files in ``folder``."""
    import sciSR
    from sciSR.data.phantoms import generic_scene

    paths = []
    for k in range(count):
        image = generic_scene((size, size), seed=k)
        paths.append(sciSR.write(image.replace(array=image.array.astype(np.float32)), folder / f"scene{k:03d}.nii"))
    return paths


def run(files: list[Path], out: Path, model: str, workers: int | None) -> tuple[float, float]:
    """Seconds of a first (cold) and a second (warm) batch of ``files`` (a loop when ``workers`` is None).

    Cold includes loading the model (and, on workers, importing torch and sciSR); warm is the steady state.
    """
    import sciSR

    def timed(batch: Any, folder: Path) -> float:
        folder.mkdir(parents=True)
        start = time.perf_counter()
        results = batch(folder)
        elapsed = time.perf_counter() - start
        if not all(r.ok for r in results):
            raise SystemExit(f"failed: {[r.error for r in results if not r.ok]}")
        return elapsed

    if workers is None:
        return (timed(lambda folder: sciSR.upscale_batch(files, folder, model), out / "cold"),
                timed(lambda folder: sciSR.upscale_batch(files, folder, model), out / "warm"))
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        client.run(_one_thread)
        return (timed(lambda folder: sciSR.upscale_batch(files, folder, model, scheduler=client), out / "cold"),
                timed(lambda folder: sciSR.upscale_batch(files, folder, model, scheduler=client), out / "warm"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=16)
    parser.add_argument("--size", type=int, default=256, help="frame side, pixels")
    parser.add_argument("--model", default="generic-x2")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args(argv)
    _one_thread()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "in").mkdir()
        files = make_files(folder / "in", args.files, args.size)
        rows = [("loop", *run(files, folder / "loop", args.model, None))]
        for n in args.workers:
            rows.append((f"dask {n}", *run(files, folder / f"dask{n}", args.model, n)))
    base = rows[0][2]
    print(f"{args.files} files of {args.size}² ×2 with {args.model}; {os.cpu_count()} cores; torch 1 thread/process")
    print("| run | cold s (first batch) | warm s | warm files/s | warm × loop |\n|---|---|---|---|---|")
    for name, cold, warm in rows:
        print(f"| {name} | {cold:.2f} | {warm:.2f} | {args.files / warm:.2f} | {base / warm:.2f} |")


if __name__ == "__main__":
    main()
