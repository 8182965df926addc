"""Quality of the shipped models (and the self-supervised mode) against cubic B-spline on held-out images.

Usage::

    python benchmarks/quality.py OUT_DIR [--models generic-x2 mri-x2 ...] [--self-supervised-budget 60]

For every model in ``sciSR/weights`` the test images are the package files its recipe excluded from
training (``data.exclude``, listed in the card under ``held_out``): a low-resolution input is simulated
from each with one seeded draw of the model's own training degradation, then upscaled by the model and by
cubic B-spline interpolation (``sciSR.upscale(..., "cubic")``), and both are compared with the original.
A 2D model on a held-out volume runs plane by plane (e.g. ``mri-thick-x4`` at scale (1, 4, 1) on
``emri_small.dcm``: a through-plane-like factor simulated along the in-plane axis j, because the volume has
only 10 slices along k). The self-supervised mode (``sciSR.self_supervised``) is measured on the held-out
MRI volume example4d (frame 0) at ×2 and ×4 through-plane when that function exists (it trains on the
test volume itself, so nothing is seen before).

Prints a table (PSNR dB, SSIM; Δ = model − cubic) and writes ``quality.png`` (LR / cubic / SR / HR crops
per row) and ``quality.json`` to OUT_DIR.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

import sciSR
from sciSR.data.shipped import held_out
from sciSR.degrade.monai_transforms import RandDegradation, create_degradation
from sciSR.errors import SciSRError
from sciSR.hub import shipped_models
from sciSR.metrics import data_range, psnr, ssim


def degradation_of(card: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The training degradation (name, options) a shipped model's card records."""
    options = dict(card["training"]["degradation"])
    return options.pop("type"), options


def degrade(hr: np.ndarray, factors: Sequence[int], name: str, options: Mapping[str, Any], seed: int = 0
            ) -> tuple[np.ndarray, str]:
    """One seeded draw of degradation ``name`` of ``hr`` (spatial array) by ``factors``.

    Returns
    -------
    lr : numpy.ndarray
        float32, shape ``hr.shape // factors``.
    flux_reduce : str
        ``"sum"`` when LR pixels are block sums (telescope), else ``"mean"``.
    """
    transform = create_degradation(name, tuple(factors), **dict(options))
    if isinstance(transform, RandDegradation):
        transform.set_random_state(seed)
    lr = np.asarray(transform(hr[np.newaxis].astype(np.float32)))[0]
    return lr.astype(np.float32), transform.flux_reduce


def _ssim_any(sr: np.ndarray, hr: np.ndarray) -> float:
    """SSIM in 2D/3D; thin volumes: the mean of 2D SSIM over the planes across the thinnest axis."""
    value_range = data_range(hr)
    if min(hr.shape) >= 11:
        return ssim(sr, hr, value_range)
    axis = int(np.argmin(hr.shape))
    return float(np.mean([ssim(np.take(sr, i, axis), np.take(hr, i, axis), value_range)
                          for i in range(hr.shape[axis])]))


def evaluate_case(model: Any, image: sciSR.SciImage, factors: Sequence[int], name: str,
                  options: Mapping[str, Any], *, seed: int = 0, label: str = "") -> dict[str, Any]:
    """PSNR/SSIM of ``model`` and of cubic B-spline on one high-resolution image.

    Parameters
    ----------
    model : nn.Module or str
        What :func:`sciSR.upscale` accepts, or a callable ``f(lr_image, factors) -> SciImage``.
    image : SciImage
        High-resolution reference (cropped here to a multiple of ``factors``).
    factors : sequence of int
        Scale per spatial axis.
    name, options
        Degradation that simulates the input (:func:`degrade`).
    seed : int
        Seed of that draw.
    label : str
        Row name.

    Returns
    -------
    dict
        ``label``, ``scale``, ``shape`` (HR), ``psnr``/``ssim`` (model), ``psnr_cubic``/``ssim_cubic``,
        ``delta_psnr`` (dB), ``lr_divisor`` (∏ factors for block-sum inputs, else 1), and the arrays ``lr``,
        ``cubic``, ``sr``, ``hr`` (not JSON).
    """
    factors = tuple(int(f) for f in factors)
    crop = tuple(slice(0, n - n % f) for n, f in zip(image.spatial_shape, factors, strict=True))
    hr = image.array[crop].astype(np.float32)
    lr, reduce = degrade(hr, factors, name, options, seed)
    flux = ("conserve" if reduce == "sum" else "mean") if image.domain == "sky" else None
    meta = {"units": "counts"} if flux == "conserve" else {}
    spacing = tuple(float(d) * f for d, f in zip(image.spacing, factors, strict=True))
    low = sciSR.SciImage.from_array(lr, spacing=spacing, domain=image.domain, meta=meta)
    if callable(model) and not hasattr(model, "card"):
        sr = np.asarray(model(low, factors).array, dtype=np.float32)
    else:
        sr = np.asarray(sciSR.upscale(low, model, factors, flux=flux).array, dtype=np.float32)
    cubic = np.asarray(sciSR.upscale(low, "cubic", factors, flux=flux).array, dtype=np.float32)
    row = {"label": label, "scale": list(factors), "shape": list(hr.shape),
           "psnr": psnr(sr, hr), "ssim": _ssim_any(sr, hr),
           "psnr_cubic": psnr(cubic, hr), "ssim_cubic": _ssim_any(cubic, hr)}
    row["delta_psnr"] = row["psnr"] - row["psnr_cubic"]
    # Block sums (counts) are shown per HR pixel in the figure, on the same grey scale as the others.
    row["lr_divisor"] = float(np.prod(factors)) if reduce == "sum" else 1.0
    row.update(lr=lr, cubic=cubic, sr=sr, hr=hr)
    return row


def held_out_cases(card: Mapping[str, Any]) -> list[tuple[Path, tuple[int, ...]]]:
    """(file, factors) per held-out image of a shipped model: its own scale, plane-wise on volumes."""
    data = card["training"]["data"]
    files = held_out(data.get("collection", []), data.get("exclude", []))
    model_scale = tuple(card["scale"])
    cases = []
    for path in files:
        ndim = sciSR.read(path).spatial_ndim
        cases.append((path, model_scale + (1,) * (ndim - len(model_scale))))
    return cases


def evaluate_shipped(name: str | Path, *, seed: int = 0) -> list[dict[str, Any]]:
    """Every held-out case of a shipped model (by name, or its model file) as rows of :func:`evaluate_case`."""
    model = sciSR.load_model(name)
    name = model.card.get("name", Path(name).stem)
    kind, options = degradation_of(model.card)
    rows = []
    for path, factors in held_out_cases(model.card):
        row = evaluate_case(model, sciSR.read(path), factors, kind, options, seed=seed, label=name)
        rows.append({"model": name, "image": path.name, **row})
    return rows


def self_supervised_rows(budget_s: float, seed: int = 0) -> list[dict[str, Any]]:
    """The self-supervised mode (``budget_s`` CPU seconds per run) at ×2 and ×4 through-plane (k axis)."""
    try:
        from sciSR.self_supervision import self_supervised as fit
    except ImportError:
        print("self-supervised: sciSR.self_supervised does not exist in this version; rows skipped", file=sys.stderr)
        return []
    # It trains on the test volume's own in-plane slices, so no image is "seen" before: take the largest
    # shipped MRI volume (example4d, first frame, 128 × 96 × 24), thick slices simulated along k.
    path = next(p for p in held_out(["mri-volumes"], ["example4d*"]))
    volume = sciSR.read(path)
    image = sciSR.SciImage.from_array(volume.array[..., 0], spacing=volume.spacing, domain="mri")
    rows = []
    for s in (2, 4):
        factors = (1, 1, s)

        def run(low: sciSR.SciImage, f: Sequence[int], s: int = s) -> sciSR.SciImage:
            return fit(low, scale=s, axis=2, time_budget_s=budget_s, device="cpu")

        row = evaluate_case(run, image, factors, "thick_slice", {"profile": "gaussian"}, seed=seed,
                            label="self-supervised")
        rows.append({"model": f"self-supervised ({budget_s:.0f} s)", "image": path.name, **row})
    return rows


def _crop2d(arrays: Sequence[np.ndarray], factors: Sequence[int], size: int = 64
            ) -> tuple[list[np.ndarray], float]:
    """The same region of LR, cubic, SR, HR as 2D crops (middle plane of volumes), and the LR pixel aspect."""
    lr, *high = arrays
    hr = high[-1]
    if hr.ndim == 3:
        axis = max(a for a, f in enumerate(factors) if f == 1)  # the axis a 2D model slices along
        lr = np.take(lr, lr.shape[axis] // 2, axis)
        high = [np.take(a, a.shape[axis] // 2, axis) for a in high]
        factors = [f for a, f in enumerate(factors) if a != axis]
    h, w = high[-1].shape
    y0, x0 = max(0, (h - size) // 2), max(0, (w - size) // 2)
    crop = (slice(y0, y0 + size), slice(x0, x0 + size))
    low = (slice(y0 // factors[0], (y0 + size) // factors[0]), slice(x0 // factors[1], (x0 + size) // factors[1]))
    return [lr[low], *(a[crop] for a in high)], factors[0] / factors[1]


def figure(rows: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """PNG grid: one row per case, columns LR / cubic / SR / HR (same grey scale per row)."""
    try:
        import matplotlib
    except ImportError:
        raise SciSRError('the figure needs matplotlib: pip install -e ".[bench]"') from None

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(rows), 4, figsize=(8, 2.1 * len(rows)), squeeze=False)
    for ax_row, row in zip(axes, rows, strict=True):
        panels, aspect = _crop2d([row["lr"] / row["lr_divisor"], row["cubic"], row["sr"], row["hr"]], row["scale"])
        lo, hi = np.percentile(panels[-1], [0.5, 99.5])
        titles = ["LR", f"cubic {row['psnr_cubic']:.2f} dB", f"SR {row['psnr']:.2f} dB", "HR"]
        for ax, panel, title, ratio in zip(ax_row, panels, titles, (aspect, 1, 1, 1), strict=True):
            ax.imshow(panel, cmap="gray", vmin=lo, vmax=hi, interpolation="nearest", aspect=ratio)
            ax.set_title(title, fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
        scale = ",".join(str(s) for s in row["scale"])
        ax_row[0].set_ylabel(f"{row['model']}\n{row['image'][:24]} ×{scale}", fontsize=7)
    fig.tight_layout()
    from sciSR.io.atomic import atomic_output

    with atomic_output(path, overwrite=True) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path


def table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Fixed-width text table of the rows."""
    head = f"{'model':24s} {'held-out image':34s} {'scale':10s} {'cubic dB':>9s} {'model dB':>9s} {'Δ dB':>6s} " \
           f"{'SSIM cub':>8s} {'SSIM mod':>8s}"
    lines = [head, "-" * len(head)]
    for r in rows:
        scale = "×" + ",".join(str(s) for s in r["scale"])
        lines.append(f"{r['model']:24s} {r['image'][:34]:34s} {scale:10s} {r['psnr_cubic']:9.2f} {r['psnr']:9.2f} "
                     f"{r['delta_psnr']:+6.2f} {r['ssim_cubic']:8.4f} {r['ssim']:8.4f}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out_dir", type=Path, help="folder for quality.png and quality.json (created)")
    parser.add_argument("--models", nargs="*", default=None, help="shipped model names (default: all)")
    parser.add_argument("--self-supervised-budget", type=float, default=60.0,
                        help="seconds per self-supervised run (0: skip)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the simulated degradation")
    args = parser.parse_args(argv)
    names = args.models if args.models is not None else list(shipped_models())
    if not names:
        print("error: no shipped models in sciSR/weights", file=sys.stderr)
        return 1
    args.out_dir.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    try:
        for name in names:
            start = time.perf_counter()
            rows += evaluate_shipped(name, seed=args.seed)
            print(f"{name}: {time.perf_counter() - start:.1f} s", file=sys.stderr)
        if args.self_supervised_budget > 0:
            rows += self_supervised_rows(args.self_supervised_budget, args.seed)
        print(table(rows))
        png = figure(rows, args.out_dir / "quality.png")
    except SciSRError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    plain = [{k: v for k, v in r.items() if not isinstance(v, np.ndarray)} for r in rows]
    from sciSR.io.atomic import atomic_output

    with atomic_output(args.out_dir / "quality.json", overwrite=True) as tmp:
        tmp.write_text(json.dumps(plain, indent=2) + "\n")
    print(f"figure: {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
