"""Multi-stack fusion and reference-guided SR against their baselines, after a short CPU training.

    python benchmarks/fusion.py [--budget 60] [--size 48] [--threads 2]

Part 1, fusion (×4): three orthogonal thick-slice stacks (slice-profile blur + decimation along i, j, k)
of knee phantoms turned obliquely (so that no stack is cut along a smooth axis and "the best stack" is not
trivially the truth). Reported: PSNR vs the truth of the cubic upscale of each stack (best shown), the
single-stack ``oktay-desr`` on the first stack, the plain average of the three affine-resampled stacks
(the slice-to-volume baseline), and ``oktay-multi`` fed 2 and 3 stacks. All inference goes through
``sciSR.upscale`` (stacks as a list of SciImages with affines).

Part 2, reference-guided (×2, 2D planes): ``ttsr`` given a reference (the HR plane in another contrast,
slightly deformed, own noise) against the same network trained and run with an all-zero reference, and
cubic. PSNR in normalised units on held-out planes.

Each network trains for ``--budget`` seconds of wall clock (Adam, L1, random patches; the CPU is shared,
so the step count is printed). Numbers vary with the budget and the machine, not with the seed alone.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from scipy import ndimage

import sciSR
from sciSR.data.multi_input_samples import SimulateReferenced, simulate_stacks
from sciSR.data.phantoms import knee_phantom
from sciSR.degrade import bin_array
from sciSR.intensity import fit_normalization, normalize
from sciSR.metrics import psnr
from sciSR.models import create_model
from sciSR.resample import resample_to_grid

ORTHO = [(4, 1, 1), (1, 4, 1), (1, 1, 4)]
SPACING = 0.5


def oblique_phantom(size: int, seed: int) -> sciSR.SciImage:
    """A knee phantom turned by 35° and 25° about two axes, cropped to ``size``³, with an affine."""
    big = knee_phantom((size * 3 // 2,) * 3, seed=seed, spacing=(SPACING,) * 3).array
    turned = ndimage.rotate(ndimage.rotate(big, 35, axes=(0, 2), reshape=False, order=1), 25, axes=(1, 2),
                            reshape=False, order=1)
    start = (turned.shape[0] - size) // 2
    core = turned[start:start + size, start:start + size, start:start + size].astype(np.float32)
    affine = np.diag([SPACING, SPACING, SPACING, 1.0])
    return sciSR.SciImage.from_array(core, affine=affine, domain="mri", meta={"source": f"oblique knee {seed}"})


def train(net: torch.nn.Module, batches, budget: float, lr: float = 1e-3) -> int:
    """Adam + L1 for ``budget`` seconds; ``batches()`` yields ``(inputs tuple, target)``. Returns steps."""
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    net.train()
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < budget:
        inputs, target = batches()
        loss = torch.nn.functional.l1_loss(net(*inputs), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        steps += 1
    net.eval()
    return steps


def fusion_part(args: argparse.Namespace, rng: np.random.Generator) -> None:
    volumes = [oblique_phantom(args.size, seed) for seed in range(args.volumes)]
    # Per volume: normalisation fitted on the first stack (as sciSR.upscale does), stacks on the HR grid.
    prepared = []
    for img in volumes:
        stacks = simulate_stacks(img, ORTHO)
        params = fit_normalization(stacks[0].array, "percentile")
        on_hr = np.stack([normalize(resample_to_grid(s, img.affine, img.spatial_shape)[0], params) for s in stacks])
        prepared.append((normalize(stacks[0].array, params), on_hr, normalize(img.array, params)))
    p = args.patch

    def crop() -> tuple[int, tuple[slice, ...]]:
        k = int(rng.integers(len(prepared)))
        start = [int(rng.integers(0, (args.size - p) // 4 + 1)) * 4] + [int(rng.integers(0, args.size - p + 1))
                                                                         for _ in range(2)]
        return k, tuple(slice(s, s + p) for s in start)

    def desr_batch():
        lrs, hrs = [], []
        for _ in range(args.batch):
            k, box = crop()
            lr_box = (slice(box[0].start // 4, box[0].stop // 4), box[1], box[2])
            lrs.append(prepared[k][0][lr_box])
            hrs.append(prepared[k][2][box])
        return (torch.from_numpy(np.stack(lrs))[:, None],), torch.from_numpy(np.stack(hrs))[:, None]

    def multi_batch():
        n = int(rng.integers(2, 4))  # 2 or 3 stacks per batch: the same weights serve both at test time
        others = list(rng.permutation([1, 2])[: n - 1])
        xs, hrs = [], []
        for _ in range(args.batch):
            k, box = crop()
            xs.append(prepared[k][1][[0, *others]][(slice(None), *box)])
            hrs.append(prepared[k][2][box])
        return (torch.from_numpy(np.stack(xs)),), torch.from_numpy(np.stack(hrs))[:, None]

    card_norm = {"method": "percentile"}
    desr = create_model("oktay-desr", scale=(4, 1, 1), spatial_dims=3, features=24)
    multi = create_model("oktay-multi", scale=(4, 1, 1), spatial_dims=3, features=24)
    for net in (desr, multi):
        net.card["normalisation"] = card_norm
    steps_desr = train(desr, desr_batch, args.budget)
    steps_multi = train(multi, multi_batch, args.budget)
    print(f"trained oktay-desr {steps_desr} steps, oktay-multi {steps_multi} steps "
          f"({args.budget:.0f} s each, batch {args.batch} × {p}³, {len(volumes)} volumes of {args.size}³)")

    truth = oblique_phantom(args.size, 99)
    stacks = simulate_stacks(truth, ORTHO)
    value_range = float(truth.array.max() - truth.array.min())

    def score(img: sciSR.SciImage) -> float:
        return psnr(img.array, truth.array, value_range)

    cubic = [score(sciSR.upscale(s, "cubic", f)) for s, f in zip(stacks, ORTHO, strict=True)]
    rows = [
        ("cubic, best single stack", max(cubic)),
        ("cubic, first stack", cubic[0]),
        ("oktay-desr, first stack", score(sciSR.upscale(stacks[0], desr, device="cpu"))),
        ("average of 3 resampled stacks (cubic)", score(sciSR.upscale(stacks, "cubic", (4, 1, 1)))),
        ("oktay-multi, 2 stacks (i, j)", score(sciSR.upscale(stacks[:2], multi, device="cpu"))),
        ("oktay-multi, 3 stacks", score(sciSR.upscale(stacks, multi, device="cpu"))),
    ]
    print(f"\nFusion ×4, held-out oblique knee phantom {args.size}³ (PSNR vs truth, dB; cubic per stack: "
          + ", ".join(f"{c:.2f}" for c in cubic) + ")")
    for name, value in rows:
        print(f"  {name:<40s} {value:6.2f}")


def reference_part(args: argparse.Namespace, rng: np.random.Generator) -> None:
    planes = []
    for seed in range(args.volumes):
        vol = oblique_phantom(args.size, seed).array
        planes += [vol[:, :, k] for k in range(4, args.size - 4, 4)]
    test_vol = oblique_phantom(args.size, 99).array
    test_planes = [test_vol[:, :, k] for k in range(6, args.size - 6, 6)]
    reference = SimulateReferenced(contrast=True, deform=1.0, noise=0.02)
    reference.set_random_state(0)

    def sample(plane: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        lr = bin_array(plane, (2, 2))
        params = fit_normalization(lr, "percentile")
        hr = normalize(plane, params)
        ref = reference({"hr": hr[None]})["ref"][0]
        ref = normalize(ref, fit_normalization(ref, "percentile"))  # the reference's own units, as upscale does
        return normalize(lr, params), ref, hr

    train_set = [sample(pl) for pl in planes]
    test_set = [sample(pl) for pl in test_planes]
    p = args.patch * 2

    def batches(zero_ref: bool):
        def make():
            lrs, refs, hrs = [], [], []
            for _ in range(args.batch):
                lr, ref, hr = train_set[int(rng.integers(len(train_set)))]
                y, x = (int(rng.integers(0, (args.size - p) // 2 + 1)) * 2 for _ in range(2))
                lrs.append(lr[y // 2:(y + p) // 2, x // 2:(x + p) // 2])
                refs.append(np.zeros((p, p), np.float32) if zero_ref else ref[y:y + p, x:x + p])
                hrs.append(hr[y:y + p, x:x + p])
            stack = [torch.from_numpy(np.stack(a))[:, None] for a in (lrs, refs, hrs)]
            return (stack[0], stack[1]), stack[2]
        return make

    options = {"features": 24, "n_blocks": 3, "tail_blocks": 2, "texture_features": 16, "search_radius": 4}
    nets = {}
    for name, zero in (("ttsr with reference", False), ("ttsr, zero reference", True)):
        torch.manual_seed(0)
        nets[name] = (create_model("ttsr", scale=2, spatial_dims=2, **options), zero)
        steps = train(nets[name][0], batches(zero), args.budget)
        print(f"trained {name}: {steps} steps")
    results = {name: [] for name in ["cubic", *nets]}
    with torch.inference_mode():
        for lr, ref, hr in test_set:
            results["cubic"].append(psnr(sciSR.upscale(lr, "cubic", 2), hr, 1.0))
            for name, (net, zero) in nets.items():
                r = np.zeros_like(ref) if zero else ref
                sr = net(torch.from_numpy(lr)[None, None], torch.from_numpy(r)[None, None])[0, 0].numpy()
                results[name].append(psnr(sr, hr, 1.0))
    print(f"\nReference-guided ×2, {len(test_set)} held-out planes (PSNR, normalised units, mean)")
    for name, values in results.items():
        print(f"  {name:<40s} {np.mean(values):6.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=float, default=60.0, help="training seconds per network")
    parser.add_argument("--size", type=int, default=48, help="phantom edge, voxels (multiple of 4)")
    parser.add_argument("--volumes", type=int, default=3, help="training phantoms")
    parser.add_argument("--patch", type=int, default=16, help="HR patch edge (fusion), LR patch edge ×2 (ttsr)")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--part", choices=("fusion", "reference", "both"), default="both")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    total = args.budget * (2 if args.part != "both" else 4)
    print(f"training budget: {args.budget:.0f} s per network, {total:.0f} s in all (CPU, {args.threads} threads)")
    start = time.perf_counter()
    if args.part in ("fusion", "both"):
        fusion_part(args, rng)
    if args.part in ("reference", "both"):
        reference_part(args, rng)
    print(f"\nwall time {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
