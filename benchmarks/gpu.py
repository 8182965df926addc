"""GPU speed in one run (< 5 min on one GPU): inference against the card's single-conv rate, a CT volume, training.

Usage::

    python benchmarks/gpu.py                 # cuda:0
    python benchmarks/gpu.py --device cuda:1 --quick

Prints, all measured in this run on this GPU:

1. the rate of one 3×3 convolution 64→64 (fp32 — TF32 as PyTorch's defaults allow it — and bf16 autocast,
   channels-last), the card's practical peak for this layer;
2. the inference throughput of EDSR-baseline (16 blocks × 64 features, ×2) through
   :func:`sciSR.infer.tiled.predict_tiled` on a 1024² image in fp32 and bf16, in GFLOP/s and as fractions
   of the single-conv rate of the same precision (and of the fp32 one);
3. the wall time of a 512×512×400 CT volume ×2 in-plane with the shipped ``ct-x2`` model (plane by plane,
   as ``sciSR.upscale`` runs it), fp32 and bf16;
4. training steps/s of ``sciSR.training.run`` with its full input pipeline (patches cut and degraded on the
   fly by DataLoader workers) against forward/backward/Adam alone on batches already on the GPU;
5. the peak GPU memory of each part.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable

import numpy as np
import torch

from sciSR.hub import load_model
from sciSR.infer.predict import predict_array
from sciSR.infer.tiled import predict_tiled
from sciSR.models import create_model


def timed(run: Callable[[], object], device: torch.device, repeats: int) -> float:
    """Best wall seconds of ``repeats`` runs, the GPU synchronised around each."""
    best = float("inf")
    for _ in range(repeats):
        torch.cuda.synchronize(device)
        start = time.perf_counter()
        run()
        torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - start)
    return best


def peak_gib(device: torch.device) -> float:
    """Peak allocated GPU memory since the last reset, GiB; resets it."""
    peak = torch.cuda.max_memory_allocated(device) / 2**30
    torch.cuda.reset_peak_memory_stats(device)
    return peak


def conv_rates(device: torch.device, features: int = 64, side: int = 512, batch: int = 8) -> dict[str, float]:
    """GFLOP/s of a channels-last 3×3 conv ``features → features`` on ``batch × side²``, fp32 and bf16."""
    conv = torch.nn.Conv2d(features, features, 3, padding=1).to(device).to(memory_format=torch.channels_last)
    x = torch.rand(batch, features, side, side, device=device).contiguous(memory_format=torch.channels_last)
    flops = 2 * features * features * 9 * batch * side * side
    rates = {}
    with torch.inference_mode():
        for name, dtype in (("fp32", None), ("bf16", torch.bfloat16)):
            with torch.autocast("cuda", dtype=dtype or torch.float32, enabled=dtype is not None):
                conv(x)
                rates[name] = flops / timed(lambda: conv(x), device, 5) / 1e9
    return rates


def inference(device: torch.device, conv: dict[str, float], side: int) -> None:
    torch.manual_seed(0)
    model = create_model("edsr-baseline", scale=2, n_blocks=16, features=64).eval().to(device)
    image = np.random.default_rng(0).random((1, side, side), dtype=np.float32)
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        model(torch.zeros(1, 1, 64, 64, device=device))
    flops = counter.get_total_flops() / 64**2 * side**2  # per input pixel × pixels (a local network)
    print(f"\n2. EDSR-baseline 16×64 ×2 on {side}², predict_tiled (channels-last), best of 3")
    print(f"{'precision':<10} {'seconds':>8} {'GFLOP/s':>8} {'÷ conv same':>12} {'÷ conv fp32':>12} {'peak GiB':>9}")
    for precision in ("fp32", "bf16"):
        predict_tiled(model, image, 2, device=device, precision=precision, compile_model=False)
        peak_gib(device)
        seconds = timed(lambda p=precision: predict_tiled(model, image, 2, device=device, precision=p,
                                                          compile_model=False), device, 3)
        rate = flops / seconds / 1e9
        print(f"{precision:<10} {seconds:>8.3f} {rate:>8.0f} {rate / conv[precision]:>12.2f} "
              f"{rate / conv['fp32']:>12.2f} {peak_gib(device):>9.2f}")


def ct_volume(device: torch.device, slices: int) -> None:
    model = load_model("ct-x2")
    volume = np.random.default_rng(0).random((512, 512, slices), dtype=np.float32)
    print(f"\n3. CT volume 512×512×{slices} ×2 in-plane, shipped ct-x2, plane by plane (normalised input)")
    print(f"{'precision':<10} {'seconds':>8} {'slices/s':>9} {'peak GiB':>9}")
    predict_array(model, volume[..., :2], 3, (2, 2, 1), device=str(device))  # warm-up
    for precision in ("fp32", "bf16"):
        peak_gib(device)
        seconds = timed(lambda p=precision: predict_array(model, volume, 3, (2, 2, 1), device=str(device),
                                                          precision=p), device, 1)
        print(f"{precision:<10} {seconds:>8.1f} {slices / seconds:>9.1f} {peak_gib(device):>9.2f}")


def training(device: torch.device, steps: int) -> None:
    from sciSR.training import run

    batch, patch = 16, 96
    print(f"\n4. training EDSR-baseline 16×64 ×2, batch {batch} × {patch}², precision auto (bf16 where supported)")
    # Forward/backward/Adam alone, batches already on the GPU.
    torch.manual_seed(0)
    net = create_model("edsr-baseline", scale=2, n_blocks=16, features=64).to(device)
    net.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
    lr = torch.rand(batch, 1, patch // 2, patch // 2, device=device).contiguous(memory_format=torch.channels_last)
    hr = torch.rand(batch, 1, patch, patch, device=device)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=torch.cuda.is_bf16_supported()):
            pred = net(lr)
        (pred.float() - hr).abs().mean().backward()
        optimizer.step()

    for _ in range(5):
        step()
    peak_gib(device)
    alone = steps / timed(lambda: [step() for _ in range(steps)], device, 1)
    alone_peak = peak_gib(device)
    # The engine with its input pipeline; steps/s from the metric callbacks, start-up excluded.
    stamps: list[tuple[int, float]] = []
    with tempfile.TemporaryDirectory() as folder:
        cfg = {"name": "gpu-bench", "seed": 0, "domain": "generic", "scale": [2, 2],
               "data": {"generate": "generic_scene", "count": 16, "options": {"shape": [512, 512]},
                        "patch_size": [patch, patch], "samples_per_epoch": 100_000, "batch_size": batch,
                        "num_workers": min(8, os.cpu_count() or 1), "val_fraction": 0.0},
               "degradation": {"type": "bicubic"},
               "model": {"arch": "edsr-baseline", "options": {"n_blocks": 16, "features": 64}},
               "train": {"max_steps": steps + 20, "val_every": 10_000, "checkpoint_every": 10_000, "log_every": 10,
                         "log_images": 0, "accelerator": "gpu", "devices": 1, "out_dir": folder}}
        run(cfg, on_metrics=lambda m: stamps.append((int(m["step"]), time.perf_counter())) if "step" in m else None)
    pipeline_peak = peak_gib(device)
    (s0, t0), (s1, t1) = stamps[1], stamps[-1]  # from the second report on: loaders and kernels are warm
    full = (s1 - s0) / (t1 - t0)
    print(f"{'loop':<34} {'steps/s':>8} {'peak GiB':>9}")
    print(f"{'forward/backward/Adam alone':<34} {alone:>8.2f} {alone_peak:>9.2f}")
    print(f"{'sciSR.training.run, full pipeline':<34} {full:>8.2f} {pipeline_peak:>9.2f}   "
          f"({full / alone:.2f} of the compute-only rate)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type != "cuda" or not torch.cuda.is_available():
        raise SystemExit("benchmarks/gpu.py needs a CUDA GPU")
    torch.cuda.set_device(device)
    print(f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}, "
          f"TF32 convolutions {'on' if torch.backends.cudnn.allow_tf32 else 'off'}")
    conv = conv_rates(device)
    print(f"1. one 3×3 conv 64→64, 8×512², channels-last: fp32 {conv['fp32']:.0f} GFLOP/s, "
          f"bf16 {conv['bf16']:.0f} GFLOP/s; peak {peak_gib(device):.2f} GiB")
    inference(device, conv, 512 if args.quick else 1024)
    ct_volume(device, 40 if args.quick else 400)
    training(device, 20 if args.quick else 100)


if __name__ == "__main__":
    main()
