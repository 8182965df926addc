"""Tiled vs whole-image inference: speed ratio and max deviation, beside MONAI's sliding window.

Usage::

    python benchmarks/inference.py                      # 2D 512², EDSR-baseline (4 blocks, 32 features)
    python benchmarks/inference.py --dims 3 --size 64 --tiles 24,40
    python benchmarks/inference.py --device cuda --size 2048 --tiles 256,512
    python benchmarks/inference.py --memmap-size 4096   # + peak RSS of a large frame into a memmap

Also prints the machine's float32 matmul GFLOP/s (measured in the same run), the network's GFLOP/s and LR
megapixels/s on the whole image, and (``--memmap-size``) the peak resident memory of a tiled run whose
input and output live in memory-mapped files, against the output size. Then one row per method: seconds
(best of ``--repeats``), time relative to one whole-image forward pass,
input voxels the network processed relative to the image (the compute overhead of the overlap, which
does not depend on machine load), and max |result − whole| on a unit-range image. The whole-image pass is
the reference for both.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from sciSR.infer.receptive_field import receptive_field_radius
from sciSR.infer.tiled import predict_tiled, resolve_device
from sciSR.models import create_model

processed: list[int] = []  # input voxels of every forward pass of the current run


def best_time(run: Callable[[], np.ndarray], repeats: int, device: torch.device) -> tuple[float, np.ndarray]:
    """Smallest wall time of ``repeats`` runs (seconds) and the last result."""
    best, result = float("inf"), None
    for _ in range(repeats):
        processed.clear()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        result = run()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - start)
    return best, result


def matmul_gflops(device: torch.device, n: int = 2048, repeats: int = 3) -> float:
    """Best float32 GFLOP/s of an n×n matmul on ``device`` (the machine's practical peak)."""
    a = torch.rand(n, n, device=device)
    b = torch.rand(n, n, device=device)
    best = float("inf")
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        a @ b
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def forward_flops(model: torch.nn.Module, shape: tuple[int, ...], device: torch.device) -> float:
    """FLOPs of one forward pass on an input of ``shape`` (torch's flop counter)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        model(torch.zeros(shape, device=device))
    return float(counter.get_total_flops())


def _memmap_job(size: int, scale: int, blocks: int, features: int, folder: str, queue: multiprocessing.Queue) -> None:
    torch.manual_seed(0)
    model = create_model("edsr-baseline", scale=scale, spatial_dims=2, n_blocks=blocks, features=features).eval()
    image = np.lib.format.open_memmap(f"{folder}/in.npy", mode="w+", dtype=np.float32, shape=(1, size, size))
    for row in range(0, size, 512):  # filled in strips: the input never sits in RAM whole either
        image[0, row:row + 512] = np.random.default_rng(row).random((min(512, size - row), size), dtype=np.float32)
    out = np.lib.format.open_memmap(f"{folder}/out.npy", mode="w+", dtype=np.float32,
                                    shape=(1, size * scale, size * scale))
    start = time.perf_counter()
    predict_tiled(model, image, (scale, scale), tile=512, out=out, device="cpu")
    out.flush()
    # Pages of the memory-mapped files count in RSS but are page cache the kernel can drop: split them out.
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    anon = int(status.get("RssAnon", "0 kB").split()[0]) * 1024
    queue.put((time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, anon))


def memmap_peak_rss(size: int, scale: int, blocks: int, features: int) -> tuple[float, int, int]:
    """Seconds, peak RSS and final anonymous RSS (bytes) of a tiled run between memory-mapped files."""
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    with tempfile.TemporaryDirectory() as folder:
        proc = ctx.Process(target=_memmap_job, args=(size, scale, blocks, features, folder, queue))
        proc.start()
        seconds, rss, anon = queue.get()
        proc.join()
    return seconds, rss, anon


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dims", type=int, default=2, choices=(2, 3))
    parser.add_argument("--size", type=int, default=512, help="image side in input voxels")
    parser.add_argument("--scale", type=int, default=2)
    parser.add_argument("--blocks", type=int, default=4)
    parser.add_argument("--features", type=int, default=32)
    parser.add_argument("--tiles", default="64,128,256", help="comma-separated tile sides (input voxels)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--memmap-size", type=int, default=0, help="also run an N×N frame into a memmap (2D)")
    args = parser.parse_args()

    device = resolve_device(args.device)
    torch.manual_seed(0)
    model = create_model("edsr-baseline", scale=args.scale, spatial_dims=args.dims, in_channels=1,
                         n_blocks=args.blocks, features=args.features).eval().to(device)
    scale = (args.scale,) * args.dims
    radius = receptive_field_radius(model, args.dims, scale, 1).radius
    model.register_forward_pre_hook(lambda module, inputs: processed.append(inputs[0][:, 0].numel()))
    rng = np.random.default_rng(0)
    image = rng.random((1,) + (args.size,) * args.dims, dtype=np.float32)
    print(f"edsr-baseline n_blocks={args.blocks} features={args.features}, {args.dims}D {args.size}^{args.dims}, "
          f"×{args.scale}, receptive-field radius {radius}, device {device}")

    def whole() -> np.ndarray:
        with torch.inference_mode():
            return model(torch.from_numpy(image)[None].to(device))[0].float().cpu().numpy()

    def row(method: str, tile: str, run: Callable[[], np.ndarray]) -> tuple[str, str, float, float, float]:
        seconds, result = best_time(run, args.repeats, device)
        return method, tile, seconds, sum(processed) / image.size, float(np.abs(result - reference).max())

    t_whole, reference = best_time(whole, args.repeats, device)
    peak = matmul_gflops(device)
    achieved = forward_flops(model, (1, *image.shape), device) / t_whole / 1e9
    print(f"matmul peak {peak:.1f} GFLOP/s; whole-image forward {achieved:.1f} GFLOP/s "
          f"({achieved / peak:.2f} of peak), {image.size / t_whole / 1e6:.2f} LR megapixels/s")
    rows = [("whole image", "-", t_whole, 1.0, 0.0),
            row("predict_tiled auto", "auto", lambda: predict_tiled(model, image, scale, device=device))]

    from monai.inferers import sliding_window_inference

    for tile in (int(v) for v in args.tiles.split(",")):
        rows.append(row("predict_tiled", str(tile),
                        lambda tile=tile: predict_tiled(model, image, scale, tile=tile, device=device)))
        # MONAI with the same windows (tile + 2·overlap every tile voxels) and Gaussian blending.
        roi = tuple(min(args.size, tile + 4 * r) for r in radius)
        fraction = 1 - tile / roi[0]

        def monai_run(roi: tuple[int, ...] = roi, fraction: float = fraction) -> np.ndarray:
            with torch.inference_mode():
                x = torch.from_numpy(image)[None].to(device)
                return sliding_window_inference(x, roi, 4, model, overlap=fraction, mode="gaussian")[0].cpu().numpy()

        rows.append(row("monai sliding_window", f"{tile}(roi {roi[0]})", monai_run))

    print(f"{'method':<22} {'tile':>12} {'seconds':>9} {'× whole':>8} {'voxels ×':>9} {'max |Δ|':>9}")
    for method, tile, seconds, voxels, error in rows:
        print(f"{method:<22} {tile:>12} {seconds:>9.3f} {seconds / t_whole:>8.2f} {voxels:>9.2f} {error:>9.1e}")
    if args.memmap_size:
        seconds, rss, anon = memmap_peak_rss(args.memmap_size, args.scale, args.blocks, args.features)
        out_bytes = 4 * (args.memmap_size * args.scale) ** 2
        print(f"memmap {args.memmap_size}² → {args.memmap_size * args.scale}²: {seconds:.1f} s, peak RSS "
              f"{rss / 2**20:.0f} MiB = {rss / out_bytes:.2f} × the output ({out_bytes / 2**20:.0f} MiB); "
              f"anonymous (not file-backed) RSS at the end {anon / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
