"""Tiled vs whole-image inference: speed ratio and max deviation, beside MONAI's sliding window.

Usage::

    python benchmarks/inference.py                      # 2D 512², EDSR-baseline (4 blocks, 32 features)
    python benchmarks/inference.py --dims 3 --size 64 --tiles 24,40
    python benchmarks/inference.py --device cuda --size 2048 --tiles 256,512
    python benchmarks/inference.py --memmap-size 8192   # + peak RSS of an 8k² FITS frame upscaled to disk
    python benchmarks/inference.py --engine --size 256 --blocks 16 --features 64   # layout/precision/compile
    python benchmarks/inference.py --engine --dims 3 --size 64 --blocks 8 --features 32
    python benchmarks/inference.py --fidelity          # PSNR of bf16 vs fp32 per shipped model, real images

Also prints the machine's float32 matmul GFLOP/s (measured in the same run), the network's GFLOP/s and LR
megapixels/s on the whole image, and (``--memmap-size``) the peak resident memory (all, and anonymous
only) of ``sciSR.upscale_file`` upscaling a generated FITS frame into a memory-mapped result, against the
output size. Then one row per method: seconds
(best of ``--repeats``), time relative to one whole-image forward pass,
input voxels the network processed relative to the image (the compute overhead of the overlap, which
does not depend on machine load), and max |result − whole| on a unit-range image. The whole-image pass is
the reference for both.

``--engine`` prints the issue-17 table instead: the GFLOP/s of one 3×3 convolution F→F (NCHW and
channels-last fp32, channels-last bf16 autocast) and of the whole network on the whole image along today's
path (eager NCHW fp32 forward) and the new ones (:func:`predict_tiled` channels-last fp32, bf16, and
``torch.compile``), each as a fraction of the best single-convolution fp32 rate measured in the same run
(the paths are interleaved, best of ``--repeats``, so load from other processes hits them alike), plus the
first call of a fresh one-shot process: with the receptive field declared, as the shipped models' cards do
(what a one-shot ``scisr upscale`` pays), and probed inside the call (a model file without one).
``--fidelity`` prints, per shipped model, the PSNR of its bf16 output against its fp32 output on real images
(skimage camera and brick, pydicom CT_small and MR_small) scaled to unit range; ``precision="auto"`` may
pick bf16 for a model only at ≥ 45 dB.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import multiprocessing
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from sciSR.infer.precision import cpu_has_native_bf16
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


FIDELITY_BAR_DB = 45.0
"""bf16 output vs fp32 output on unit-range images below this PSNR: ``auto`` must not pick bf16."""


def conv_rates(features: int, size: int, dims: int, device: torch.device, repeats: int, bf16: bool = True
               ) -> dict[str, float]:
    """GFLOP/s of one 3×3(×3) convolution ``features → features`` on a ``size^dims`` input, per layout/precision."""
    conv_cls = torch.nn.Conv2d if dims == 2 else torch.nn.Conv3d
    fmt = torch.channels_last if dims == 2 else torch.channels_last_3d
    conv = conv_cls(features, features, 3, padding=1).to(device).eval()
    x = torch.rand((1, features) + (size,) * dims, device=device)
    flops = 2 * features * features * 3**dims * size**dims
    rates = {}
    with torch.inference_mode():
        conv(x)
        rates["nchw fp32"] = flops / best_time(lambda: conv(x), repeats, device)[0] / 1e9
        conv_cl, x_cl = conv.to(memory_format=fmt), x.contiguous(memory_format=fmt)
        conv_cl(x_cl)
        rates["channels-last fp32"] = flops / best_time(lambda: conv_cl(x_cl), repeats, device)[0] / 1e9
        if not bf16:
            return rates
        with torch.autocast(device.type, dtype=torch.bfloat16):
            conv_cl(x_cl)
            rates["channels-last bf16"] = flops / best_time(lambda: conv_cl(x_cl), repeats, device)[0] / 1e9
    return rates


def _first_call_job(dims: int, size: int, scale: int, blocks: int, features: int, device: str,
                    radius: int | None = None) -> None:
    """One-shot process: build the network, time its first prediction, then the best single-conv rate.

    ``radius``: the receptive field the network declares, as a shipped model's card does (None: probed
    inside the timed call, as for a model file without one).
    """
    torch.manual_seed(0)
    model = create_model("edsr-baseline", scale=scale, spatial_dims=dims, n_blocks=blocks, features=features).eval()
    if radius is not None:
        model.spec = dataclasses.replace(model.spec, receptive_field=radius)
    image = np.random.default_rng(0).random((1,) + (size,) * dims, dtype=np.float32)
    dev = resolve_device(device)
    flops = forward_flops(model, (1, *image.shape), dev)
    start = time.perf_counter()
    predict_tiled(model, image, scale, device=dev)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    seconds = time.perf_counter() - start
    conv = max(conv_rates(features, size, dims, dev, 3, bf16=False).values())
    print(f"{seconds} {flops / seconds / 1e9} {conv}")


def engine_table(args: argparse.Namespace, device: torch.device) -> None:
    """Print the layout / precision / compile table of issue 17 (see the module docstring)."""
    torch.manual_seed(0)
    model = create_model("edsr-baseline", scale=args.scale, spatial_dims=args.dims, n_blocks=args.blocks,
                         features=args.features).eval().to(device)
    today = copy.deepcopy(model)  # stays NCHW: the eager fp32 forward sciSR.upscale ran before issue 17
    image = np.random.default_rng(0).random((1,) + (args.size,) * args.dims, dtype=np.float32)
    x = torch.from_numpy(image)[None].to(device)
    flops = forward_flops(today, tuple(x.shape), device)
    scale = (args.scale,) * args.dims
    # Warm-ups outside the timing: oneDNN primitives, the receptive field, the compile (timed on its own).
    # Without native bf16 (no AVX512-BF16/AMX) a CPU emulates it, 10× slower than fp32; auto never picks it.
    bf16 = device.type == "cuda" or cpu_has_native_bf16()
    with torch.inference_mode():
        today(x)
    for precision in ("fp32", "bf16") if bf16 else ("fp32",):
        predict_tiled(model, image, scale, device=device, precision=precision, compile_model=False)
    compiled_model = copy.deepcopy(model)
    start = time.perf_counter()
    predict_tiled(compiled_model, image, scale, device=device, compile_model=True)
    compile_s = time.perf_counter() - start

    def forward_today() -> np.ndarray:
        with torch.inference_mode():
            return today(x)[0].cpu().numpy()

    paths: dict[str, Callable[[], np.ndarray]] = {
        "today: eager NCHW fp32": forward_today,
        "new fp32 (channels-last)": lambda: predict_tiled(model, image, scale, device=device, compile_model=False),
        "new bf16 (channels-last)": lambda: predict_tiled(model, image, scale, device=device, precision="bf16",
                                                          compile_model=False),
        "compiled fp32": lambda: predict_tiled(compiled_model, image, scale, device=device, compile_model=True),
    }
    if not bf16:
        del paths["new bf16 (channels-last)"]
    best = dict.fromkeys(paths, float("inf"))
    results = {}
    for _ in range(args.repeats):  # interleaved, so a burst of load from elsewhere hits every path alike
        for name, run in paths.items():
            seconds, results[name] = best_time(run, 1, device)
            best[name] = min(best[name], seconds)
    conv = conv_rates(args.features, args.size, args.dims, device, args.repeats, bf16=bf16)
    conv_fp32 = max(v for k, v in conv.items() if "fp32" in k)
    print(f"edsr-baseline {args.blocks}×{args.features}, {args.dims}D {args.size}^{args.dims} ×{args.scale}, "
          f"device {device}, {torch.get_num_threads()} threads, compile (incl. first call) {compile_s:.1f} s"
          + ("" if bf16 else "; bf16 left out: this CPU has no native bf16 (precision='auto' picks fp32)"))
    print(f"{'one 3×3 conv ' + str(args.features) + '→' + str(args.features):<28} {'GFLOP/s':>8} {'÷ best fp32':>11}")
    for name, rate in conv.items():
        print(f"{name:<28} {rate:>8.1f} {rate / conv_fp32:>11.2f}")
    reference = results["today: eager NCHW fp32"]
    print(f"{'network, whole image':<28} {'GFLOP/s':>8} {'÷ best fp32':>11} {'× today':>8} {'seconds':>8} "
          f"{'max |Δ| vs today':>17} {'PSNR dB':>8}")
    for name, seconds in best.items():
        rate = flops / seconds / 1e9
        diff = results[name] - reference
        mse = float(np.mean(diff**2))
        psnr = f"{10 * np.log10(float(np.ptp(reference)) ** 2 / mse):.1f}" if mse > 0 else "exact"
        print(f"{name:<28} {rate:>8.1f} {rate / conv_fp32:>11.2f} {best['today: eager NCHW fp32'] / seconds:>8.2f} "
              f"{seconds:>8.3f} {float(np.abs(diff).max()):>17.1e} {psnr:>8}")
    radius = max(receptive_field_radius(model, args.dims, scale, 1).radius)
    for label, declared in (("first call, one-shot process", radius), ("  … receptive field probed", None)):
        job = (f"import inference as b; b._first_call_job({args.dims}, {args.size}, {args.scale}, "
               f"{args.blocks}, {args.features}, {str(device)!r}, {declared!r})")
        line = subprocess.run([sys.executable, "-c", job], capture_output=True, text=True, check=True,
                              cwd=Path(__file__).resolve().parent).stdout.split()
        seconds, rate, conv_first = (float(v) for v in line[-3:])
        print(f"{label:<28} {rate:>8.1f} {rate / conv_first:>11.2f} {'':>8} {seconds:>8.3f}"
              f"   (fp32, same process's single-conv rate {conv_first:.1f})")


def fidelity_table(device: torch.device) -> None:
    """PSNR (dB) of each shipped model's bf16 output against its fp32 output on real unit-range images."""
    import pydicom
    from pydicom.data import get_testdata_file
    from skimage import data

    from sciSR.hub import load_model, shipped_models
    from sciSR.infer.predict import predict_array

    images = {"camera": data.camera(), "brick": data.brick(),
              "CT_small": pydicom.dcmread(get_testdata_file("CT_small.dcm")).pixel_array,
              "MR_small": pydicom.dcmread(get_testdata_file("MR_small.dcm")).pixel_array}
    unit = {k: ((v - v.min()) / np.ptp(v)).astype(np.float32) for k, v in images.items()}
    names = sorted(shipped_models())
    print(f"bf16 vs fp32 output PSNR (dB, peak 1) on unit-range images, device {device}; bar {FIDELITY_BAR_DB} dB")
    print(f"{'model':<14}" + "".join(f"{k:>10}" for k in unit) + f"{'min':>8}  auto may pick bf16")
    for name in names:
        model = load_model(name)
        row = []
        for img in unit.values():
            fp32, _ = predict_array(model, img, 2, device=str(device), precision="fp32", compile_model=False)
            bf16, _ = predict_array(model, img, 2, device=str(device), precision="bf16", compile_model=False)
            row.append(10 * np.log10(1.0 / max(float(np.mean((bf16 - fp32) ** 2)), 1e-30)))
        verdict = "yes" if min(row) >= FIDELITY_BAR_DB else "NO: drop bf16 from the card's spec.precisions"
        print(f"{name:<14}" + "".join(f"{v:>10.1f}" for v in row) + f"{min(row):>8.1f}  {verdict}")


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
    parser.add_argument("--engine", action="store_true", help="layout/precision/compile table (issue 17)")
    parser.add_argument("--fidelity", action="store_true", help="bf16 vs fp32 PSNR of the shipped models")
    args = parser.parse_args()

    device = resolve_device(args.device)
    if args.engine or args.fidelity:
        if args.engine:
            engine_table(args, device)
        if args.fidelity:
            fidelity_table(device)
        return
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
