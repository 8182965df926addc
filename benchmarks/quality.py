"""Quality of the shipped models (and the self-supervised mode) against baselines on held-out images.

Usage::

    python benchmarks/quality.py OUT_DIR [--models generic-x2 mri-x2 ...] [--self-supervised-budget 60]
    python benchmarks/quality.py OUT_DIR --matrix [--models ...] [--crop 256] [--seed 0]

**Held-out table** (default). For every model in ``sciSR/weights`` the test images are the package files its
recipe excluded from training (``data.exclude``, listed in the card under ``held_out``): a low-resolution
input is simulated from each with one seeded draw of the model's own training degradation, then upscaled by
the model and by cubic B-spline interpolation (``sciSR.upscale(..., "cubic")``), and both are compared with
the original. A 2D model on a held-out volume runs plane by plane (e.g. ``mri-thick-x4`` at scale (1, 4, 1)
on ``emri_small.dcm``: a through-plane-like factor simulated along the in-plane axis j, because the volume has
only 10 slices along k). The self-supervised mode (``sciSR.self_supervised``) is measured on the held-out
MRI volume example4d (frame 0) at ×2 and ×4 through-plane when that function exists (it trains on the
test volume itself, so nothing is seen before). Prints a table (PSNR dB, SSIM; Δ = model − cubic) and writes
``quality.png`` (LR / cubic / SR / HR crops per row) and ``quality.json`` to OUT_DIR.

**Quality matrix** (``--matrix``; issue 16 targets, issue 19 item 3). Held-out images (:data:`MATRIX`; each
checked against the model's training sources by :func:`check_held_out`) × degradation variants of the
domain (:func:`variants`, applied to the truth; the input gets the truth's domain and spacing × factors) ×
{the domain's strongest baseline (:func:`sciSR.consistency.strongest_baseline`: zero-filling for MRI
in-plane, cubic otherwise, flux-conserving cubic on the sky), plain cubic, the model with
``consistency="off"``, ``"on"`` and the default ``"auto"``}: PSNR (dB) and SSIM against the truth, and
Δ = model − strongest baseline. Every learned run's own self-check
(``meta["provenance"][-1]["self_check"]["delta_db"]``) is compared with the real Δ: they agree when both
are on the same side of −0.05 dB. Prints the matrix, the agreement table with its rate (target ≥ 90 %) and a
line per model (worst Δ of the default run, target ≥ −0.05 dB; best gain of consistency on over off), and
writes ``quality.json`` (every number) and ``quality.png`` (input / baseline / model / truth crops, one row
per model and variant, on its worst image) to OUT_DIR. generic-x2 also runs on the MRI variants (it never
saw MRI); on generic images there is no forward model, so its off/on/auto runs are the same; on the sky the
flux projection is the consistency step, so they are the same there too.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

import sciSR
from sciSR.blocks import bin_array
from sciSR.consistency import ForwardModel, strongest_baseline
from sciSR.consistency import degrade as degrade_with
from sciSR.data.shipped import (
    EVALUATION_MRI,
    SKIMAGE_COLOR,
    evaluation_files,
    held_out,
    luminance,
    package_files,
    read_raw_mri,
)
from sciSR.degrade.ct import ct_downsample
from sciSR.degrade.generic import bicubic_downsample
from sciSR.degrade.monai_transforms import RandDegradation, create_degradation
from sciSR.degrade.mri import kspace_downsample
from sciSR.degrade.telescope import psf_kernel, telescope_downsample
from sciSR.errors import SciSRError
from sciSR.hub import shipped_models
from sciSR.io.dicom import study_uid
from sciSR.metrics import data_range, psnr, ssim
from sciSR.padding import outside_field, padding_value
from sciSR.pipeline import ResolvedModel, prepare


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


def held_out_cases(card: Mapping[str, Any]) -> list[tuple[Path, sciSR.SciImage, tuple[int, ...]]]:
    """(file, image, factors) per held-out image of a shipped model: its own scale, plane-wise on volumes.

    Each file is read once (:func:`read_held_out`); the image is what the evaluation degrades.
    """
    data = card["training"]["data"]
    files = held_out(data.get("collection", []), data.get("exclude", []))
    model_scale = tuple(card["scale"])
    cases = []
    for path in files:
        image = read_held_out(path)
        cases.append((path, image, model_scale + (1,) * (image.spatial_ndim - len(model_scale))))
    return cases


def evaluate_shipped(name: str | Path, *, seed: int = 0) -> list[dict[str, Any]]:
    """Every held-out case of a shipped model (by name, or its model file) as rows of :func:`evaluate_case`."""
    model = sciSR.load_model(name)
    name = model.card.get("name", Path(name).stem)
    kind, options = degradation_of(model.card)
    rows = []
    for path, image, factors in held_out_cases(model.card):
        row = evaluate_case(model, image, factors, kind, options, seed=seed, label=name)
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


# ---------------------------------------------------------------------------------------------------------------
# Quality matrix (issue 16 targets, issue 19 item 3): held-out images × degradation variants × methods.
# ---------------------------------------------------------------------------------------------------------------

TOLERANCE_DB = 0.05
"""A loss smaller than this (dB) counts as a tie, as in :data:`sciSR.pipeline.GUARD_TOLERANCE_DB`."""
MODES = ("off", "on", "auto")
"""``consistency=`` values of the learned runs; ``"auto"`` is the default a user gets."""
GENERIC_CROP = 256
"""Centre crop (HR pixels per axis) of the generic photographs: keeps the whole matrix within minutes on CPU."""

Make = Callable[[np.ndarray, np.random.Generator], np.ndarray]


class Variant(NamedTuple):
    """One simulated acquisition: how the low-resolution input is made from the truth.

    A NamedTuple, not a dataclass: this script is loaded with ``importlib`` without a ``sys.modules`` entry
    (tests/test_shipped_models.py, examples/train_shipped_models.py), which dataclasses need.

    Attributes
    ----------
    name : str
        Short label for tables.
    factors : tuple of int
        Factor per spatial axis of the truth.
    make : callable
        ``make(truth, rng) -> lr``: float arrays, ``lr.shape == truth.shape // factors``.
    flux : str or None
        ``"conserve"`` when the LR pixels are block sums (counts), passed to :func:`sciSR.upscale`.
    through_plane : bool
        Thick-slice acquisition (its strongest baseline is cubic, not zero-filling).
    header : dict or None
        What the input's header would tell (its ``meta``), e.g. ``{"acquired": ...}`` from a DICOM
        AcquisitionMatrix.
    """

    name: str
    factors: tuple[int, ...]
    make: Make
    flux: str | None = None
    through_plane: bool = False
    header: dict[str, Any] | None = None

    def input_meta(self) -> dict[str, Any]:
        """The low-resolution input's ``meta``: counts for block sums, and what its header tells."""
        return {**({"units": "counts"} if self.flux == "conserve" else {}), **(self.header or {})}


def _pad(factors: Sequence[int], ndim: int) -> tuple[int, ...]:
    """``factors`` extended with 1 (unscaled axes) to ``ndim`` spatial axes."""
    return tuple(int(f) for f in factors) + (1,) * (ndim - len(factors))


def _noise_free(op: ForwardModel) -> Make:
    """The exact forward model of :mod:`sciSR.consistency` (the operator the projection inverts)."""
    return lambda hr, rng: degrade_with(hr.astype(np.float64), op).astype(np.float32)


def _padded(make: Make, factors: tuple[int, ...]) -> Make:
    """``make`` for a CT truth with padding outside its reconstructed disc, acquired as a scanner would.

    The low-resolution scan reconstructs the same disc: the anatomy is degraded with the padding replaced
    by its nearest field-of-view neighbour (:func:`sciSR.pipeline.prepare`), and low-resolution pixels
    wholly outside the disc get the fill value back (blurring the fill into the disc would make values
    no scanner stores).
    """
    def padded(hr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        truth = sciSR.SciImage.from_array(hr, domain="ct")
        outside = outside_field(truth)
        if outside is None:
            return make(hr, rng)
        lr = np.asarray(make(prepare(truth)[0], rng), dtype=np.float32)
        lr[bin_array(outside.astype(np.float32), factors) == 1] = padding_value(truth, outside)
        return lr

    return padded


def field_only(truth: np.ndarray, domain: str) -> np.ndarray:
    """``truth`` with NaN outside the reconstructed field of view (:func:`sciSR.padding.outside_field`).

    Padding outside a CT's disc is no image, so scores are taken over the field only (the metrics ignore NaN).
    """
    outside = outside_field(sciSR.SciImage.from_array(truth, domain=domain))
    return truth if outside is None else np.where(outside, np.float32(np.nan), truth)


def variants(family: str, ndim: int, scale: int = 2) -> list[Variant]:
    """The degradation variants of a domain family for a truth with ``ndim`` spatial axes.

    Parameters
    ----------
    family : str
        ``"mri-inplane"`` (×2: sharp k-space truncation; Hamming window + Rician noise, σ = 2 % of the
        truth's 99th percentile; sharp with 75 % of the lines measured and the rest zero-filled, as the
        input's header says), ``"mri-through"`` (×4 along axis 1 of a volume: Gaussian slice profile FWHM 4;
        boxcar of width 3, i.e. a 1-voxel gap), ``"ct"`` (×2: Gaussian FWHM 1.75, the middle of ct-x2's training
        range, without noise, with 10 HU and with 20 HU, the top of its noise range; padding outside the
        reconstructed disc stays padding, :func:`_padded`), ``"sky"`` (×2: 2 × 2
        block sums in counts; sums + Poisson (gain 4) + read noise 2.5 counts) or ``"generic"``
        (×``scale``: antialiased bicubic; block mean).
    ndim : int
        Spatial axes of the truth.
    scale : int
        In-plane factor of the ``"generic"`` family.

    Returns
    -------
    list of Variant
    """
    if family == "mri-inplane":
        f = _pad((2, 2), ndim)

        def hamming_rician(hr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
            sigma = 0.02 * float(np.percentile(hr, 99))
            return kspace_downsample(hr, f, "hamming", noise_std=sigma, rng=rng)

        # A scanner that measured 75 % of the lines in-plane and zero-filled the rest, as its header says.
        acquired = (0.75, 0.75, *(1.0,) * (ndim - 2))
        return [Variant("kspace sharp", f, _noise_free(ForwardModel("kspace", f))),
                Variant("hamming+rician2%", f, hamming_rician),
                Variant("kspace 75% lines", f, _noise_free(ForwardModel("kspace", f, acquired=acquired)),
                        header={"acquired": acquired})]
    if family == "mri-through":
        if ndim != 3:
            raise SciSRError("the through-plane variants need a volume (wrap a 2D slice as (n, m, 1))")
        f = (1, 4, 1)
        return [Variant("gauss fwhm4", f, _noise_free(ForwardModel("slice_profile", f, fwhm=(1, 4, 1))),
                        through_plane=True),
                Variant("boxcar w3 gap1", f, _noise_free(ForwardModel("slice_profile", f, profile="boxcar",
                                                                          fwhm=(1, 3, 1))), through_plane=True)]
    if family == "ct":
        f = _pad((2, 2), ndim)
        return [Variant("gauss1.75", f, _padded(_noise_free(ForwardModel("ct", f, fwhm=1.75)), f)),
                Variant("gauss1.75+10HU", f, _padded(lambda hr, rng: ct_downsample(hr, f, 1.75, noise_std=10.0,
                                                                                   rng=rng), f)),
                Variant("gauss1.75+20HU", f, _padded(lambda hr, rng: ct_downsample(hr, f, 1.75, noise_std=20.0,
                                                                                   rng=rng), f))]
    if family == "sky":
        f = _pad((2, 2), ndim)
        return [Variant("bin2 sum", f, _noise_free(ForwardModel("flux", f, flux="conserve")), flux="conserve"),
                Variant("bin2+poisson+read", f, lambda hr, rng: telescope_downsample(hr, f, None, gain=4.0,
                                                                                      read_noise=2.5, rng=rng),
                        flux="conserve"),
                # sky-x2's own training family (middle of its card's ranges), to tell a loss from a domain gap.
                Variant("moffat2.25+bin2+noise", f, lambda hr, rng: telescope_downsample(
                    hr, f, psf_kernel("moffat", 2.25, ndim, beta=3.5), gain=4.0, read_noise=2.5, rng=rng),
                        flux="conserve")]
    if family == "generic":
        f = _pad((scale, scale), ndim)
        return [Variant("bicubic", f, lambda hr, rng: bicubic_downsample(hr, f)),
                Variant("block mean", f, _noise_free(ForwardModel("flux", f, flux="mean")))]
    raise SciSRError(f"unknown variant family {family!r}")


def read_held_out(path: Path) -> sciSR.SciImage:
    """A held-out package file as training would have seen it: colour photographs as grey levels 0–255."""
    if path.name in SKIMAGE_COLOR:
        return sciSR.SciImage.from_array(luminance(path).astype(np.float32), domain="generic")
    if path.name in {name for _, name in EVALUATION_MRI} and path.name.endswith((".ima", ".ima.gz")):
        # A headerless raw slice: the pixel size is unknown (1 mm assumed); in-plane ×2 does not depend on it.
        return sciSR.SciImage.from_array(read_raw_mri(path), spacing=(1.0, 1.0), domain="mri")
    return sciSR.read(path)


def _package_file(name: str) -> Path:
    """A package file of the shipped collections or of the evaluation-only files, by file name."""
    for collection in ("mri-slices", "ct-slices", "sky-frames", "skimage-gray", "skimage-color"):
        for path in package_files(collection):
            if path.name == name:
                return path
    for path in evaluation_files():
        if path.name == name:
            return path
    raise SciSRError(f"{name} is not installed (see sciSR.data.shipped)")


def check_measured(image: sciSR.SciImage, name: str) -> None:
    """Raise when ``image``'s header says the scanner zero-filled some of its k-space lines.

    Its band beyond the measured lines is then the scanner's interpolation, and a model would be scored on
    how well it predicts that rather than the anatomy (pydicom's ``examples_overlay.dcm``: 53 % × 37 %).

    Raises
    ------
    SciSRError
        ``meta["acquired"]`` (from DICOM AcquisitionMatrix) is below 1 along some axis.
    """
    acquired = image.meta.get("acquired")
    if acquired is not None and min(acquired) < 1.0:
        raise SciSRError(f"{name}: its header says {' × '.join(f'{100 * a:.0f} %' for a in acquired)} of the k-space "
                         "lines were measured (AcquisitionMatrix); the rest is zero-filling, not a truth")


def _centre_crop(array: np.ndarray, size: int) -> np.ndarray:
    """The central ``size`` pixels of each of the first two axes (smaller axes whole)."""
    starts = [max(0, (n - size) // 2) for n in array.shape[:2]]
    return array[starts[0]:starts[0] + size, starts[1]:starts[1] + size]


def load_truth(name: str, family: str, crop: int = GENERIC_CROP) -> tuple[sciSR.SciImage, Path]:
    """A held-out truth image for ``family`` and the package file it comes from.

    Generic photographs are centre-cropped to ``crop`` (colour ones, astronaut.png, as grey levels 0–255:
    :func:`read_held_out`); through-plane, a 2D slice becomes a one-plane volume ``(n, m, 1)`` with
    isotropic spacing, as the variants are written for volumes (the library upscales it as the 2D slice:
    :func:`sciSR.consistency.through_plane`, :func:`sciSR.infer.orientations.other_orientation`).
    """
    path = _package_file(name)
    image = read_held_out(path)
    check_measured(image, name)
    array, spacing = image.array.astype(np.float32), tuple(image.spacing)
    if image.domain == "generic":
        array = _centre_crop(array, crop)
    if family == "mri-through" and array.ndim == 2:
        array, spacing = array[..., np.newaxis], (*spacing, spacing[0])
    return sciSR.SciImage.from_array(array, spacing=spacing, domain=image.domain), path


MRI_HELD_OUT = ("MR_small.dcm", "emri_small.dcm", "s1045.ima.gz")
GENERIC_HELD_OUT = ("camera.png", "astronaut.png")
MATRIX: dict[str, list[tuple[str, tuple[str, ...]]]] = {
    "mri-x2": [("mri-inplane", MRI_HELD_OUT)],
    "generic-x2": [("mri-inplane", MRI_HELD_OUT), ("generic", GENERIC_HELD_OUT)],
    "generic-x4": [("generic", GENERIC_HELD_OUT)],
    "mri-thick-x4": [("mri-through", MRI_HELD_OUT)],
    "ct-x2": [("ct", ("CT_small.dcm", "J2K_pixelrep_mismatch.dcm", "explicit_VR-UN.dcm", "bad_sequence.dcm"))],
    "sky-x2": [("sky", ("dss.14.29.56-62.41.05.fits.gz",))],
}
"""Model → (variant family, held-out images). generic-x2 also runs on MRI (it never saw MRI in training)."""


def check_held_out(card: Mapping[str, Any], path: Path) -> None:
    """Raise unless ``path`` is no source of the model's training images (its collections minus ``exclude``).

    A DICOM file is also refused when a training file comes from the same study (DICOM StudyInstanceUID:
    the same patient and session, e.g. a crop or reformat of a training slice under another file name).

    Raises
    ------
    SciSRError
        The file is one the model was trained on, or of the same study as one.
    """
    data = card["training"]["data"]
    trained: list[Path] = []
    for name in data.get("collection", []):
        kept = {p.name for p in held_out([name], data.get("exclude", []))}
        trained += [p for p in package_files(name) if p.name not in kept]
    trained_names = {p.name for p in trained} | {Path(f).name for f in data.get("files", [])}
    if path.name in trained_names:
        raise SciSRError(f"{path.name} trained {card.get('name')}: not a held-out image")
    study = _study(path)
    same = [p.name for p in trained if study is not None and _study(p) == study]
    if same:
        raise SciSRError(f"{path.name} is of the study of {same[0]}, which trained {card.get('name')}: "
                         "not a held-out image")


_study = functools.lru_cache(maxsize=None)(study_uid)
""":func:`sciSR.io.dicom.study_uid`, each file's header read once for the whole matrix."""


def real_agrees(self_check_db: float | None, real_db: float, tolerance: float = TOLERANCE_DB) -> bool | None:
    """Whether the self-check and the comparison with the truth agree on "model beats (or ties) the baseline".

    Returns None when there was no self-check (input too small).
    """
    if self_check_db is None:
        return None
    return (self_check_db >= -tolerance) == (real_db >= -tolerance)


def evaluate_cell(model: ResolvedModel, truth: sciSR.SciImage, variant: Variant, *, image: str = "",
                  seed: int = 0) -> dict[str, Any]:
    """One matrix cell: the baselines and the model (consistency off/on/auto) against the truth.

    Parameters
    ----------
    model : ResolvedModel
        The learned model (resolved once per model, so its receptive field is not measured per cell).
    truth : SciImage
        High-resolution truth; cropped here to a multiple of ``variant.factors``.
    variant : Variant
        How the input is made; the input gets the truth's domain and its spacing × factors.
    image : str
        Row label.
    seed : int
        Seed of the noise draw.

    Returns
    -------
    dict
        ``psnr``/``ssim`` per method (``baseline`` = the domain's strongest baseline, ``cubic``, ``off``,
        ``on``, ``auto``), ``delta`` per learned mode (dB vs the baseline), ``self_check`` per mode (the
        run's own ``delta_db``, None when too small), ``agree`` per mode, ``on_minus_off``, the forward
        model the auto run projected with, seconds, and the arrays ``lr``, ``base``, ``sr``, ``hr`` (not JSON).
    """
    factors = variant.factors
    crop = tuple(slice(0, n - n % f) for n, f in zip(truth.spatial_shape, factors, strict=True))
    hr = truth.array[crop].astype(np.float32)
    start = time.perf_counter()
    lr = np.asarray(variant.make(hr, np.random.default_rng(seed)), dtype=np.float32)
    spacing = tuple(float(d) * f for d, f in zip(truth.spacing, factors, strict=True))
    low = sciSR.SciImage.from_array(lr, spacing=spacing, domain=truth.domain, meta=variant.input_meta())
    baseline = strongest_baseline(truth.domain, factors, through_plane=variant.through_plane)
    outputs: dict[str, np.ndarray] = {}
    self_checks: dict[str, Any] = {}
    with warnings.catch_warnings():
        # The self-check warns when a model loses; those losses are what the tables report.
        warnings.simplefilter("ignore")
        # Sky: the strongest baseline is cubic followed by the flux projection; "cubic" is the plain spline.
        outputs["baseline"] = sciSR.upscale(low, baseline, factors, flux=variant.flux).array
        outputs["cubic"] = sciSR.upscale(low, "cubic", factors, flux="none" if variant.flux else None).array
        if variant.flux == "conserve":
            # Plain cubic of block sums is ∏f times too bright; per HR pixel it is the unprojected spline.
            outputs["cubic"] = outputs["cubic"] / float(np.prod(factors))
        for mode in MODES:
            result = sciSR.upscale(low, model, factors, flux=variant.flux, consistency=mode)
            outputs[mode] = result.array
            self_checks[mode] = result.meta["provenance"][-1]
    row: dict[str, Any] = {"model": model.name, "image": image, "variant": variant.name, "domain": truth.domain,
                           "scale": list(factors), "shape": list(hr.shape), "baseline": baseline,
                           "psnr": {}, "ssim": {}, "delta": {}, "self_check": {}, "agree": {}}
    scored = field_only(hr, truth.domain)
    for method, array in outputs.items():
        estimate = np.asarray(array, dtype=np.float32)
        row["psnr"][method] = psnr(estimate, scored)
        row["ssim"][method] = _ssim_any(estimate, scored)
    for mode in MODES:
        record = self_checks[mode].get("self_check")
        row["delta"][mode] = row["psnr"][mode] - row["psnr"]["baseline"]
        row["self_check"][mode] = None if record is None else record["delta_db"]
        row["agree"][mode] = real_agrees(row["self_check"][mode], row["delta"][mode])
    row["on_minus_off"] = row["psnr"]["on"] - row["psnr"]["off"]
    # The "strongest" baseline is chosen by domain, not measured: where plain cubic does better (zero-filling
    # rings on sharp k-space truncation), the gain over the better of the two is the honest one.
    row["delta_best_interpolation"] = row["psnr"]["auto"] - max(row["psnr"]["baseline"], row["psnr"]["cubic"])
    auto = self_checks["auto"]
    row["consistency_auto"] = auto.get("consistency")
    row["self_check_auto"] = auto.get("self_check")
    row["seconds"] = time.perf_counter() - start
    # Block sums (counts) are shown per HR pixel in the figure, on the same grey scale as the others.
    divisor = float(np.prod(factors)) if variant.flux == "conserve" else 1.0
    row.update(lr=lr / divisor, base=np.asarray(outputs["baseline"]), sr=np.asarray(outputs["auto"]), hr=hr)
    return row


def run_matrix(names: Sequence[str], *, seed: int = 0, crop: int = GENERIC_CROP,
               log: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Every cell of :data:`MATRIX` for the models ``names`` (models without an entry are skipped)."""
    rows = []
    for name in names:
        if name not in MATRIX:
            if log:
                log(f"{name}: no matrix entry, skipped")
            continue
        model = ResolvedModel.of(name)
        start = time.perf_counter()
        for family, images in MATRIX[name]:
            for image_name in images:
                truth, path = load_truth(image_name, family, crop)
                check_held_out(model.card, path)
                scale = max(model.card["scale"])
                for variant in variants(family, truth.spatial_ndim, scale):
                    rows.append(evaluate_cell(model, truth, variant, image=image_name, seed=seed))
        if log:
            log(f"{name}: {time.perf_counter() - start:.1f} s")
    return rows


def _scale_text(factors: Sequence[int]) -> str:
    return "×" + ",".join(str(s) for s in factors)


def matrix_tables(rows: Sequence[Mapping[str, Any]]) -> str:
    """The PSNR table (Δ vs the strongest baseline) and the SSIM table of the matrix."""
    head = (f"{'model':12s} {'image':15s} {'variant':21s} {'scale':8s} {'baseline':8s} {'base':>6s} {'cubic':>6s} "
            f"{'off':>6s} {'on':>6s} {'auto':>6s} {'Δoff':>6s} {'Δon':>6s} {'Δauto':>6s}")
    lines = ["PSNR (dB) against the truth; Δ = model − strongest baseline", head, "-" * len(head)]
    for r in rows:
        p, d = r["psnr"], r["delta"]
        lines.append(f"{r['model']:12s} {r['image'][:15]:15s} {r['variant']:21s} {_scale_text(r['scale']):8s} "
                     f"{r['baseline']:8s} {p['baseline']:6.2f} {p['cubic']:6.2f} {p['off']:6.2f} {p['on']:6.2f} "
                     f"{p['auto']:6.2f} {d['off']:+6.2f} {d['on']:+6.2f} {d['auto']:+6.2f}")
    head = (f"{'model':12s} {'image':15s} {'variant':21s} {'base':>6s} {'cubic':>6s} {'off':>6s} {'on':>6s} "
            f"{'auto':>6s}")
    lines += ["", "SSIM against the truth", head, "-" * len(head)]
    for r in rows:
        s = r["ssim"]
        lines.append(f"{r['model']:12s} {r['image'][:15]:15s} {r['variant']:21s} {s['baseline']:6.4f} "
                     f"{s['cubic']:6.4f} {s['off']:6.4f} {s['on']:6.4f} {s['auto']:6.4f}")
    return "\n".join(lines)


def agreement(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Agreement rates of the self-check sign with the real comparison: the default (auto) runs, and all runs."""
    auto = [r["agree"]["auto"] for r in rows if r["agree"]["auto"] is not None]
    every = [r["agree"][m] for r in rows for m in MODES if r["agree"][m] is not None]
    return {"auto_agree": sum(auto), "auto_cells": len(auto),
            "auto_rate": sum(auto) / len(auto) if auto else None,
            "all_agree": sum(every), "all_runs": len(every), "all_rate": sum(every) / len(every) if every else None,
            "no_self_check": sum(r["agree"]["auto"] is None for r in rows), "tolerance_db": TOLERANCE_DB}


def _yes(flag: bool | None) -> str:
    return "-" if flag is None else ("yes" if flag else "NO")


def _db(value: float | None) -> str:
    return "   n/a" if value is None else f"{value:+6.2f}"


def agreement_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Per cell: self-check Δ and real Δ of each run, and whether their signs agree (tolerance 0.05 dB)."""
    head = (f"{'model':12s} {'image':15s} {'variant':21s} "
            + " ".join(f"{'sc ' + m:>7s} {'real':>6s} {'agree':>5s}" for m in MODES) + f" {'auto projects':>13s}")
    lines = [f"Self-check Δ (model − baseline on the input's own degraded copy) vs real Δ against the truth; "
             f"agree: same side of −{TOLERANCE_DB} dB", head, "-" * len(head)]
    for r in rows:
        cells = " ".join(f"{_db(r['self_check'][m]):>7s} {r['delta'][m]:+6.2f} {_yes(r['agree'][m]):>5s}"
                         for m in MODES)
        forward = r["consistency_auto"]
        projected = "off" if not isinstance(forward, Mapping) else f"{forward['kind']}/{forward['source']}"
        lines.append(f"{r['model']:12s} {r['image'][:15]:15s} {r['variant']:21s} {cells} {projected:>13s}")
    rates = agreement(rows)
    auto = "n/a" if rates["auto_rate"] is None else f"{100 * rates['auto_rate']:.0f} %"
    every = "n/a" if rates["all_rate"] is None else f"{100 * rates['all_rate']:.0f} %"
    lines.append(f"agreement (default auto runs): {rates['auto_agree']}/{rates['auto_cells']} = {auto} (target ≥ 90 %);"
                 f" all runs (off/on/auto): {rates['all_agree']}/{rates['all_runs']} = {every}"
                 + (f"; {rates['no_self_check']} cells without self-check" if rates["no_self_check"] else ""))
    return "\n".join(lines)


def summary(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per model: the worst Δ (auto) and the best gain of consistency on over off.

    The worst Δ is against the strongest baseline, and also against the better of it and plain cubic.
    """
    out = []
    for name in dict.fromkeys(r["model"] for r in rows):
        mine = [r for r in rows if r["model"] == name]
        worst = min(mine, key=lambda r: r["delta"]["auto"])
        best = max(mine, key=lambda r: r["on_minus_off"])
        worst_best = min(r["delta_best_interpolation"] for r in mine)
        out.append({"model": name, "cells": len(mine), "worst_delta_auto": worst["delta"]["auto"],
                    "worst_delta_auto_vs_best_interpolation": worst_best,
                    "worst_cell": f"{worst['image']} / {worst['variant']}",
                    "mean_delta_auto": float(np.mean([r["delta"]["auto"] for r in mine])),
                    "best_on_minus_off": best["on_minus_off"], "best_cell": f"{best['image']} / {best['variant']}",
                    "meets_target": worst["delta"]["auto"] >= -TOLERANCE_DB})
    return out


def summary_table(items: Sequence[Mapping[str, Any]]) -> str:
    """One line per model (target: worst Δ never below −0.05 dB)."""
    lines = [f"Per model (target: worst Δauto ≥ −{TOLERANCE_DB} dB)"]
    for s in items:
        verdict = "meets target" if s["meets_target"] else "MISSES target"
        lines.append(f"{s['model']:12s} {s['cells']:2d} cells: worst Δauto {s['worst_delta_auto']:+.2f} dB "
                     f"({s['worst_cell']}), mean {s['mean_delta_auto']:+.2f} dB, {verdict}; best on − off "
                     f"{s['best_on_minus_off']:+.2f} dB ({s['best_cell']}); worst Δauto vs the better of "
                     f"baseline and cubic {s['worst_delta_auto_vs_best_interpolation']:+.2f} dB")
    return "\n".join(lines)


def matrix_figure(rows: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """PNG of crops: one row per (model, variant) on its worst image; input / baseline / model (auto) / truth."""
    try:
        import matplotlib
    except ImportError:
        raise SciSRError('the figure needs matplotlib: pip install -e ".[bench]"') from None

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # Each (model, variant) once, on its worst image (lowest Δauto): the figure stays readable and hides no loss.
    worst: dict[tuple[str, str], Mapping[str, Any]] = {}
    for r in rows:
        key = (r["model"], r["variant"])
        if key not in worst or r["delta"]["auto"] < worst[key]["delta"]["auto"]:
            worst[key] = r
    shown = list(worst.values())
    fig, axes = plt.subplots(len(shown), 4, figsize=(8, 2.2 * len(shown)), squeeze=False)
    for ax_row, row in zip(axes, shown, strict=True):
        panels, aspect = _crop2d([row["lr"], row["base"], row["sr"], row["hr"]], row["scale"])
        lo, hi = np.percentile(panels[-1], [0.5, 99.5])
        scale = _scale_text(row["scale"])
        baseline = row["baseline"] + ("+flux" if row["domain"] == "sky" else "")
        titles = [f"input {scale}", f"{baseline} {row['psnr']['baseline']:.2f} dB",
                  f"{row['model']} {row['psnr']['auto']:.2f} dB", "truth"]
        for ax, panel, title, ratio in zip(ax_row, panels, titles, (aspect, 1, 1, 1), strict=True):
            ax.imshow(panel, cmap="gray", vmin=lo, vmax=hi, interpolation="nearest", aspect=ratio)
            ax.set_title(title, fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
        ax_row[0].set_ylabel(f"{row['model']} {scale}\n{row['image'][:20]}\n{row['variant']}", fontsize=7)
    fig.tight_layout()
    from sciSR.io.atomic import atomic_output

    with atomic_output(path, overwrite=True) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    return path


def plain(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The rows without their arrays (JSON)."""
    return [{k: v for k, v in r.items() if not isinstance(v, np.ndarray)} for r in rows]


def _write_json(data: Any, path: Path) -> None:
    from sciSR.io.atomic import atomic_output

    with atomic_output(path, overwrite=True) as tmp:
        tmp.write_text(json.dumps(data, indent=2) + "\n")


def _matrix_main(args: argparse.Namespace, names: Sequence[str]) -> int:
    """``--matrix``: run, print the three tables, write quality.json and quality.png."""
    start = time.perf_counter()
    rows = run_matrix(names, seed=args.seed, crop=args.crop, log=lambda line: print(line, file=sys.stderr))
    if not rows:
        print(f"error: none of {list(names)} has a matrix entry ({', '.join(MATRIX)})", file=sys.stderr)
        return 1
    seconds = time.perf_counter() - start
    items = summary(rows)
    print(matrix_tables(rows), agreement_table(rows), summary_table(items), sep="\n\n")
    png = matrix_figure(rows, args.out_dir / "quality.png")
    _write_json({"seed": args.seed, "generic_crop": args.crop, "seconds": seconds,
                 "tolerance_db": TOLERANCE_DB, "cells": plain(rows), "agreement": agreement(rows),
                 "summary": items}, args.out_dir / "quality.json")
    print(f"\n{len(rows)} cells in {seconds:.0f} s; figure: {png}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out_dir", type=Path, help="folder for quality.png and quality.json (created)")
    parser.add_argument("--models", nargs="*", default=None, help="shipped model names (default: all)")
    parser.add_argument("--self-supervised-budget", type=float, default=60.0,
                        help="seconds per self-supervised run (0: skip; not part of --matrix)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the simulated degradation")
    parser.add_argument("--matrix", action="store_true",
                        help="the quality matrix: held-out images × degradation variants × {strongest baseline, "
                             "cubic, model with consistency off/on/auto}, with the self-check agreement")
    parser.add_argument("--crop", type=int, default=GENERIC_CROP,
                        help="--matrix: centre crop (pixels per axis) of the generic photographs")
    args = parser.parse_args(argv)
    names = args.models if args.models is not None else list(shipped_models())
    if not names:
        print("error: no shipped models in sciSR/weights", file=sys.stderr)
        return 1
    args.out_dir.mkdir(parents=True, exist_ok=True)
    if args.matrix:
        try:
            return _matrix_main(args, names)
        except SciSRError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
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
    _write_json(plain(rows), args.out_dir / "quality.json")
    print(f"figure: {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
