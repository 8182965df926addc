"""Training throughput: the full pipeline (loading, degradation, augmentation, Lightning step) against a
pure forward/backward/step on one batch already in memory, for a 2D and a 3D recipe.

    python benchmarks/train_throughput.py [--steps 10] [--num-workers 0] [--recipes ct_x2 knee_mri_throughplane_x4]

A full/pure ratio near 1 means the GPU/CPU step dominates; well below 1 means the data pipeline starves
it (raise data.num_workers, cache: memory, or simplify the degradation).
"""

from __future__ import annotations

import argparse
import time
import warnings

import lightning as L
import torch

from sciSR.training import load_config
from sciSR.training.engine import PairDataModule, build_generator, resolve_precision
from sciSR.training.module import SRModule


class BatchClock(L.Callback):
    """Time stamps at the start of each training batch (the step time includes waiting for data)."""

    def __init__(self) -> None:
        self.stamps: list[float] = []

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        self.stamps.append(time.perf_counter())


def rate(stamps: list[float], batch_size: int, warmup: int) -> float:
    """Samples per second between batch starts, after ``warmup`` batches."""
    used = stamps[warmup:]
    return batch_size * (len(used) - 1) / (used[-1] - used[0])


def measure(recipe: str, steps: int, warmup: int, num_workers: int) -> dict[str, float | str]:
    cfg = load_config(recipe, [f"data.num_workers={num_workers}", "data.val_fraction=0", "data.count=4"])
    batch = cfg["data"]["batch_size"]
    data = PairDataModule(cfg)
    data.setup()
    loader = data.train_dataloader()

    # Data alone: samples/s the loader delivers.
    t0, n = time.perf_counter(), 0
    for i, _ in enumerate(loader):
        n += batch
        if i + 1 == steps + warmup:
            break
    data_rate = n / (time.perf_counter() - t0)

    # Full pipeline: Lightning fit, timed between batch starts.
    clock = BatchClock()
    module = SRModule(cfg, build_generator(cfg, data.spec))
    trainer = L.Trainer(max_steps=steps + warmup, logger=False, enable_checkpointing=False, callbacks=[clock],
                        limit_val_batches=0, num_sanity_val_steps=0, enable_progress_bar=False,
                        enable_model_summary=False, precision=resolve_precision("auto"), devices=1)
    trainer.fit(module, datamodule=data)
    full_rate = rate(clock.stamps, batch, warmup)

    # Pure step: the same network, loss and optimiser on one batch in memory.
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    generator = build_generator(cfg, data.spec).to(device).train()
    loss = module.loss.to(device)
    optimiser = torch.optim.Adam(generator.parameters(), lr=cfg["optim"]["lr"])
    sample = next(iter(loader))
    lr, hr = sample["lr"].to(device), sample["hr"].to(device)
    amp = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    stamps = []
    for _ in range(steps + warmup):
        if device.type == "cuda":
            torch.cuda.synchronize()
        stamps.append(time.perf_counter())
        with amp:
            total, _ = loss(generator(lr), hr)
        optimiser.zero_grad(set_to_none=True)
        total.backward()
        optimiser.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    stamps.append(time.perf_counter())
    pure_rate = rate(stamps, batch, warmup)
    dims = f"{len(cfg['data']['patch_size'])}D"
    return {"recipe": recipe, "dims": dims, "batch": batch, "data": data_rate, "full": full_rate, "pure": pure_rate,
            "ratio": full_rate / pure_rate}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10, help="timed iterations per measurement")
    parser.add_argument("--warmup", type=int, default=2, help="untimed first iterations")
    parser.add_argument("--num-workers", type=int, default=0, help="data.num_workers")
    parser.add_argument("--recipes", nargs="+", default=["ct_x2", "knee_mri_throughplane_x4"])
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU ({torch.get_num_threads()} threads)"
    rows = [measure(r, args.steps, args.warmup, args.num_workers) for r in args.recipes]
    print(f"\ndevice: {device}; data.num_workers={args.num_workers}; samples/s")
    print(f"{'recipe':<28}{'dims':>5}{'batch':>6}{'data only':>11}{'full':>9}{'pure':>9}{'full/pure':>11}")
    for r in rows:
        print(f"{r['recipe']:<28}{r['dims']:>5}{r['batch']:>6}{r['data']:>11.1f}{r['full']:>9.1f}{r['pure']:>9.1f}"
              f"{r['ratio']:>11.2f}")


if __name__ == "__main__":
    main()
