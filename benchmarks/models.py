"""Model-zoo table: size, compute, CPU speed and memory of every super-resolution architecture.

Paper configurations, one input/output channel, one scale (default ×2)::

    python benchmarks/models.py                      # all SR architectures, a few minutes on 2 cores
    python benchmarks/models.py --only edsr,swinir --size2d 128 --size3d 16 --threads 8

Columns
-------
params 2D/3D      learnable parameters of the 2D and the 3D network.
GFLOP/MP          multiply-adds ×2 per LR megapixel in 2D (torch.utils.flop_counter.FlopCounterMode;
                  convolutions and matrix products, elementwise work not counted), counted on the meta
                  device for a 1024×1024 LR input.
GFLOP/64³         the same for a 64³ LR volume (3D network).
ms/MP, ms/64³     CPU forward time (inference mode) measured at ``--size2d``² / ``--size3d``³ LR and
                  scaled linearly to one LR megapixel / a 64³ volume (the best of ``--repeats`` runs after
                  a warm-up run).
MB/MP, MB/64³     peak memory of live tensors during the forward pass for a 1024×1024 LR image / 64³ LR
                  volume, traced on the meta device (inputs, activations and outputs; not the weights,
                  not kernel workspaces). This is what a whole-image pass needs on a GPU; tiled inference
                  needs it per tile.

Never part of the test suite.
"""

from __future__ import annotations

import argparse
import gc
import time
import weakref
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves
from torch.utils.flop_counter import FlopCounterMode

from sciSR.models import create_model, list_models

MP_SIDE = 1024  # a 1024×1024 LR image is one (binary) megapixel
VOLUME_SIDE = 64


class LiveTensorBytes(TorchDispatchMode):
    """Track the bytes of live tensor storages created inside the mode and their peak."""

    def __init__(self) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0
        self._refs: dict[int, int] = {}

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        out = func(*args, **(kwargs or {}))
        for tensor in tree_leaves(out):
            if isinstance(tensor, torch.Tensor):
                self._track(tensor)
        return out

    def _track(self, tensor: torch.Tensor) -> None:
        storage = tensor.untyped_storage()
        key, nbytes = storage._cdata, storage.nbytes()
        if key in self._refs:
            self._refs[key] += 1  # a view or an in-place result: same memory
        else:
            self._refs[key] = 1
            self.live += nbytes
            self.peak = max(self.peak, self.live)
        weakref.finalize(tensor, self._release, key, nbytes)

    def _release(self, key: int, nbytes: int) -> None:
        self._refs[key] -= 1
        if not self._refs[key]:
            del self._refs[key]
            self.live -= nbytes


def meta_costs(name: str, scale: int, dims: int, side: int) -> tuple[int, float, float]:
    """Parameters, GFLOP and peak live-tensor MB of one forward pass on a ``side^dims`` LR input."""
    with torch.device("meta"):
        model = create_model(name, scale=scale, spatial_dims=dims).eval()
    params = sum(p.numel() for p in model.parameters())
    shape = (1, 1, *([side] * dims))
    with torch.inference_mode():
        counter = FlopCounterMode(display=False)
        with counter:
            model(torch.empty(shape, device="meta"))
        with LiveTensorBytes() as memory:
            model(torch.empty(shape, device="meta"))
    return params, counter.get_total_flops() / 1e9, memory.peak / 2**20


def cpu_ms(name: str, scale: int, dims: int, side: int, repeats: int) -> float:
    """Best CPU forward time (ms) on a ``side^dims`` LR input after one warm-up run."""
    model = create_model(name, scale=scale, spatial_dims=dims).eval()
    x = torch.rand(1, 1, *([side] * dims))
    best = float("inf")
    with torch.inference_mode():
        model(x)
        for _ in range(repeats):
            start = time.perf_counter()
            model(x)
            best = min(best, time.perf_counter() - start)
    del model, x
    gc.collect()
    return best * 1e3


def human(n: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.3g}{unit}"
    return f"{n:.3g}"


def row(name: str, args: argparse.Namespace) -> dict[str, Any]:
    scale = args.scale
    p2, f2, m2 = meta_costs(name, scale, 2, MP_SIDE)
    p3, f3, m3 = meta_costs(name, scale, 3, VOLUME_SIDE)
    # Work per voxel that grows with the input (non-local attention) makes the linear time scaling optimistic.
    superlinear = (f2 / MP_SIDE**2 > 1.1 * meta_costs(name, scale, 2, args.size2d)[1] / args.size2d**2
                   or f3 / VOLUME_SIDE**3 > 1.1 * meta_costs(name, scale, 3, args.size3d)[1] / args.size3d**3)
    t2 = cpu_ms(name, scale, 2, args.size2d, args.repeats) * (MP_SIDE**2 / args.size2d**2)
    t3 = cpu_ms(name, scale, 3, args.size3d, args.repeats) * (VOLUME_SIDE**3 / args.size3d**3)
    return {"arch": name + (" *" if superlinear else ""), "params 2D": human(p2), "params 3D": human(p3),
            "GFLOP/MP": f"{f2:,.0f}", "GFLOP/64³": f"{f3:,.0f}", "ms/MP": f"{t2:,.0f}", "ms/64³": f"{t3:,.0f}",
            "MB/MP": f"{m2:,.0f}", "MB/64³": f"{m3:,.0f}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=2, help="upscaling factor on every axis (default 2)")
    parser.add_argument("--size2d", type=int, default=64, help="LR side of the timed 2D input (default 64)")
    parser.add_argument("--size3d", type=int, default=8, help="LR side of the timed 3D input (default 8)")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per measurement (default 2)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--only", default="", help="comma-separated architecture names")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    # Single-input generators only: fusion and reference nets take several inputs (benchmarks/fusion.py).
    names = [m["name"] for m in list_models() if m["kind"] not in ("discriminator", "fusion", "reference")]
    if args.only:
        names = [n for n in names if n in args.only.split(",")]
    if args.scale & (args.scale - 1):
        names = [n for n in names if n != "lapsrn"]  # progressive: powers of two only
    print(f"x{args.scale}, 1 channel, paper options; torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"timed at {args.size2d}² (2D) and {args.size3d}³ (3D) LR, scaled linearly")
    rows = []
    for name in names:
        start = time.perf_counter()
        rows.append(row(name, args))
        print(f"  {name}: {time.perf_counter() - start:.1f} s", flush=True)
    columns = list(rows[0])
    widths = [max(len(c), *(len(r[c]) for r in rows)) for c in columns]
    print()
    print(" | ".join(c.rjust(w) for c, w in zip(columns, widths, strict=True)))
    print("-|-".join("-" * w for w in widths))
    for r in rows:
        print(" | ".join(r[c].rjust(w) for c, w in zip(columns, widths, strict=True)))
    if any(r["arch"].endswith("*") for r in rows):
        print("* work per pixel grows with the input (non-local attention over image regions): GFLOP and MB are"
              " exact for 1 MP / 64³, the times scaled from the small timed input underestimate them.")


if __name__ == "__main__":
    main()
