"""Tiled vs whole-image inference: speed ratio and max deviation, beside MONAI's sliding window.

Usage::

    python benchmarks/inference.py                      # 2D 512², EDSR-baseline (4 blocks, 32 features)
    python benchmarks/inference.py --dims 3 --size 64 --tiles 24,40
    python benchmarks/inference.py --device cuda --size 2048 --tiles 256,512
    python benchmarks/inference.py --memmap-size 8192   # + peak RSS of an 8k² FITS frame upscaled to disk

Also prints the machine's float32 matmul GFLOP/s (measured in the same run), the network's GFLOP/s and LR
megapixels/s on the whole image, and (``--memmap-size``) the peak resident memory (all, and anonymous
only) of ``sciSR.upscale_file`` upscaling a generated FITS frame into a memory-mapped result, against the
output size. Then one row per method: seconds
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
import threading
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


def _write_frame(path: Path, size: int) -> None:
    """A size×size float32 sky frame (counts, TAN WCS) written in strips, so it never sits in RAM whole."""
    from astropy.io import fits
    from astropy.wcs import WCS

    wcs = WCS(naxis=2)
    wcs.wcs.ctype, wcs.wcs.crval = ["RA---TAN", "DEC--TAN"], [150.0, 2.0]
    wcs.wcs.crpix, wcs.wcs.cdelt = [size / 2, size / 2], [-1e-4, 1e-4]
    header = fits.PrimaryHDU(np.zeros((1, 1), np.float32), wcs.to_header()).header
    header["NAXIS1"] = header["NAXIS2"] = size
    header["BUNIT"] = "counts"
    stream = fits.StreamingHDU(str(path), header)
    for row in range(0, size, 512):
        strip = np.random.default_rng(row).poisson(100.0, (min(512, size - row), size)).astype(">f4")
        stream.write(strip)
    stream.close()


def _anon_rss() -> int:
    """Anonymous (not file-backed) resident bytes of this process."""
    status = Path("/proc/self/status").read_text()
    return next((int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("RssAnon")), 0)


def _rss_sampler(stop: threading.Event, peak: list[int]) -> None:
    """Largest anonymous RSS seen, sampled every 50 ms."""
    while not stop.wait(0.05):
        peak[0] = max(peak[0], _anon_rss())


def _memmap_job(size: int, scale: int, blocks: int, features: int, model: str, tile: int, folder: str,
                queue: multiprocessing.Queue) -> None:
    import sciSR
    from sciSR.hub import save_model

    source, target = Path(folder) / "frame.fits", Path(folder) / "frame_sr.fits"
    _write_frame(source, size)
    if model != "cubic":
        torch.manual_seed(0)
        net = create_model(model, scale=scale, spatial_dims=2, n_blocks=blocks, features=features)
        model = str(save_model(net, Path(folder) / "net.safetensors", domain="sky",
                               normalisation={"method": "asinh"}))
    baseline = _anon_rss()  # Python, torch and MONAI loaded: not the upscale's doing
    stop, peak = threading.Event(), [baseline]
    sampler = threading.Thread(target=_rss_sampler, args=(stop, peak), daemon=True)
    sampler.start()
    start = time.perf_counter()
    sciSR.upscale_file(source, target, model, scale, memmap=True, tile=tile, device="cpu")
    seconds = time.perf_counter() - start
    stop.set()
    sampler.join()
    queue.put((seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, baseline, peak[0] - baseline))


def memmap_peak_rss(size: int, scale: int, blocks: int, features: int, model: str,
                    tile: int) -> tuple[float, int, int, int]:
    """Seconds, peak RSS, anonymous RSS before the run and its peak increase (bytes) of ``sciSR.upscale_file``
    on a generated size² FITS frame.

    The frame is upscaled by :func:`sciSR.upscale_file` with a memory-mapped result, as the CLI does for
    results larger than a quarter of the free RAM, in a fresh process so its peak is this run's alone.
    """
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    with tempfile.TemporaryDirectory() as folder:
        proc = ctx.Process(target=_memmap_job, args=(size, scale, blocks, features, model, tile, folder, queue))
        proc.start()
        result = queue.get()
        proc.join()
    return result


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
    parser.add_argument("--memmap-size", type=int, default=0, help="also upscale an N×N FITS frame to disk")
    parser.add_argument("--memmap-tile", type=int, default=256, help="tile side for --memmap-size")
    parser.add_argument("--memmap-models", default="cubic,edsr-baseline", help="models for --memmap-size")
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
        n, big = args.memmap_size, args.memmap_size * args.scale
        out_bytes, in_bytes = 4 * big**2, 4 * n**2
        print(f"\nFITS {n}² → {big}² through sciSR.upscale_file(memmap=True): output {out_bytes / 2**20:.0f} MiB, "
              f"input {in_bytes / 2**20:.0f} MiB")
        print(f"tile {args.memmap_tile}; 'anon before': Python + torch + MONAI loaded; 'anon added': peak anonymous "
              "memory of the upscale itself (file-backed pages of the memory-mapped result excluded)")
        print(f"{'model':<16} {'seconds':>8} {'peak RSS MiB':>13} {'× output':>9} {'anon before':>12} "
              f"{'anon added MiB':>15} {'× output':>9}")
        for name in args.memmap_models.split(","):
            seconds, rss, before, added = memmap_peak_rss(n, args.scale, args.blocks, args.features, name,
                                                          args.memmap_tile)
            print(f"{name:<16} {seconds:>8.1f} {rss / 2**20:>13.0f} {rss / out_bytes:>9.2f} {before / 2**20:>12.0f} "
                  f"{added / 2**20:>15.0f} {added / out_bytes:>9.2f}")


if __name__ == "__main__":
    main()
