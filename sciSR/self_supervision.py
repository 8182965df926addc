"""Self-supervised super-resolution: the image teaches the network, no training pairs needed.

``sciSR.self_supervised(img, ...)`` (this module is callable, like ``sciSR.train``) runs one of two
recipes and returns the upscaled image on the same FOV-preserving grid as :func:`sciSR.upscale`:

- **Volumes** (SMORE-style, Zhao et al., IEEE TMI 2021): the in-plane slices of an anisotropic scan are
  high resolution. Degrading them along one in-plane axis with the slice profile of the low-resolution
  axis gives training pairs that look like the through-plane planes; a 2D network trained on them is
  applied to the two through-plane orientations (the planes that contain the low-resolution axis), and
  the two predictions are fused frequency by frequency along the low-resolution axis, the sharper one
  weighing more (:func:`sciSR.infer.orientations.fuse_orientations`).
- **2D frames** (ZSSR, Shocher et al., CVPR 2018): the frame and its own degraded copy (the acquisition's
  forward model, chosen as for data consistency: block sums or means for sky frames, k-space truncation
  for MRI, blur + block mean for CT; antialiased bicubic for generic images) form the training pairs; the
  network is then applied to the frame itself; smaller copies of the frame and their degraded copies
  widen the scales it learns from (:func:`frame_fathers`). The last quarter of the rows is held out for validation:
  the best validated weights are kept, and cubic is returned when they do not beat it, so a frame never
  comes out below cubic on its own degraded copy. Sky frames get the flux projection of :mod:`sciSR.flux`
  afterwards, exactly as :func:`sciSR.upscale` does.

Training is a plain torch loop (no Lightning: it starts in milliseconds and is reproducible): Adam, L1,
linear warm-up, gradient-norm clipping, cosine learning-rate decay, the 8 flips/rotations of the square
(with the anisotropic volume model the rotation is the choice of which in-plane axis is degraded), and a
network that learns the residual over cubic interpolation. The wall clock is checked every step so
training + inference end within ``time_budget_s``; ``max_steps`` gives a step budget instead (then the
run is reproducible: the same seed on the CPU gives identical results). Either way training stops after
ten passes over the distinct patches the data offers (at least 500 steps): a small image trained longer is
memorised at the scale of its degraded copy, which its held-out rows cannot see. A learned MRI frame then
keeps half of what the network adds to the projected cubic fallback: the k-space it extrapolates is only
partly right (:data:`TRAINING` ``["detail_share"]``).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from sciSR.consistency import ForwardModel, degrade, forward_model_for, slice_profile_for
from sciSR.degrade.generic import bicubic_downsample, bicubic_resample
from sciSR.degrade.kernels import boxcar_profile, gaussian_profile, sample_axis
from sciSR.degrade.mri import PROFILES, kspace_resample, thick_slice
from sciSR.errors import SciSRError
from sciSR.geometry import normalize_scale
from sciSR.image import SciImage
from sciSR.infer.interpolate import interpolate, resample_grid
from sciSR.infer.orientations import both_orientations
from sciSR.infer.precision import resolve_precision
from sciSR.infer.predict import predict_array
from sciSR.infer.receptive_field import receptive_field_radius
from sciSR.infer.tiled import resolve_device
from sciSR.intensity import DEFAULT_FOR_DOMAIN, denormalize, fit_normalization, normalize
from sciSR.models import create_model
from sciSR.models.base import ZooModel
from sciSR.models.blocks import FOVInterpolate
from sciSR.pipeline import (
    SpacingLike,
    finish,
    prepare,
    project_in_place,
    regrid,
    resolve_flux,
    spacing_grid,
    to_grid,
)
from sciSR.progress import ProgressLike, cancel_checker, progress_callback

__all__ = ["DEFAULT_OPTIONS", "TRAINING", "PatchPairs", "crop_to_factors", "frame_fathers", "held_out_scorer",
           "self_supervised", "train_on_pairs", "validation_split"]

DEFAULT_OPTIONS: dict[str, dict[str, Any]] = {"edsr-baseline": {"n_blocks": 8, "features": 32}}
"""Architecture options used when ``options`` is None: small enough for thousands of steps on 2 CPU cores."""

TRAINING: dict[str, Any] = {"patch": 32, "batch": 16, "lr": 1e-3, "lr_final": 1e-5, "warmup_steps": 50,
                             "clip_norm": 1.0, "val_every": 25, "val_fraction": 0.25,
                             "father_scales": (0.9, 0.8, 0.7, 0.6), "max_epochs": 10,
                             "min_step_cap": 500, "detail_share": {"kspace": 0.5}, "volume_lr": 2e-3}
"""Training recipe: HR patch side (rounded up to a multiple of the scale), patches per step, Adam
learning rate at the start and at the end of the cosine decay, linear warm-up steps, gradient-norm clip,
steps between validations, the share of a frame's rows held out for validation, the sizes (share of
the frame's) of the smaller copies a frame also trains on (:func:`frame_fathers`), and the step cap: the
most passes over the distinct patches the data offers (:meth:`PatchPairs.distinct_patches`), but at
least ``min_step_cap`` steps. The fathers and the cap keep a small image from being memorised at the
scale of its degraded copy, which the held-out rows cannot see (nibabel's example4d EPI slice, 64×48,
sharp k-space ×2, with the fathers: +0.81 dB over cubic after 400 steps, about 5 passes, +0.10 after
1600, −0.09 after 3200, while the held-out L1 kept falling); the floor lets the tiniest frames (32²,
whose 10 passes are 25 steps) finish a warm-up and a decay, which they need and do not over-fit in
(pydicom's emri_small frame, 32² ×2: +0.08 dB after 760 and after 1550 steps, −0.00 after 25). Images
of 128² and more offer so many patches that the cap does not bind within any budget. ``detail_share`` is
the share of the network's difference from the (projected) cubic fallback that a frame's result keeps,
per forward-model kind (1 for kinds not named; ``"bicubic"`` for generic frames). An MRI frame holds no
k-space beyond its matrix, so what the network adds there is extrapolated and only partly right: halving
it is the least-squares shrinkage for a correlation of about one half with the truth (knee phantom slice,
sharp k-space ×2: the added band has 1.14× the truth's energy at a correlation of 0.43). A bicubic-reduced
frame still holds its fine detail, attenuated, and the network restores it reliably: halving cost 0.3 dB
(camera and astronaut 256² crops ×2, 30 s: +1.38 and +0.94 dB over cubic with all of it, +1.03 and +0.65
with half). All these numbers were chosen on the benchmark frames (``benchmarks/self_supervised.py
--frames``) and those two crops, no others. Against zero-filling rather than the projected cubic, the
half share put matplotlib's 256² head slice (sharp ×2, 60 s) above zero-filling (+0.89 dB over cubic,
+0.76 before; zero-filling +0.86) but emri_small's 32² frame below cubic with 75 % of its phase lines
(−0.10 dB, +0.04 before) and 0.09 dB lower with sharp truncation: not kept. ``volume_lr`` replaces ``lr`` for
through-plane volumes, whose millions of in-plane patches are not repeated within any budget (knee phantom
128³ ×4, 4 800 steps, seeds 0 and 1: +4.91 and +4.91 dB over cubic at 2e-3, +4.84 and +4.69 at 1e-3, +4.60
at 3e-3 with seed 0)."""

_TRAIN_SHARE_OF_PROGRESS = 0.9
_INFER_COST_MARGIN = 1.5  # tiles overlap, and inference runs two orientations: stay clear of the budget
_TIMING_STEPS = 5  # steps measured before the inference time is estimated from them
_FINISH_RESERVE = 0.01  # share of the budget kept at least for inference and un-normalisation


class _ResidualOverCubic(ZooModel):
    """``net(x) + cubic(x)``: the network only learns what cubic interpolation misses.

    Starting from the interpolation rather than from zero is what makes a few minutes of CPU training
    worth it. Every operation is local, so tiled inference reproduces the whole-image result.
    """

    def __init__(self, net: ZooModel) -> None:
        super().__init__(net.spatial_dims, net.in_channels, net.out_channels, net.scale)
        self.net = net
        self.upsample = FOVInterpolate(self.scale)
        self.spec = net.spec
        self.card = dict(net.card)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x) + self.upsample(x)


class PatchPairs:
    """Paired LR/HR planes, degraded axis first, and a seeded sampler of augmented patch batches.

    Parameters
    ----------
    pairs : list of (numpy.ndarray, numpy.ndarray)
        ``(lr, hr)`` with ``lr`` ``(n0, n1, depth)`` and ``hr`` ``(n0·f0, n1·f1, depth)`` float32:
        ``depth`` planes of the same pair (slices of a volume, or 1 for a frame).
    factors : tuple of int
        ``(f0, f1)`` scale of the model.
    patch : int
        HR patch side (a multiple of both factors, at most the plane size).
    isotropic : bool
        True when ``f0 == f1``: a transpose keeps the pair valid, so all 8 symmetries of the square are used.
    """

    def __init__(self, pairs: list[tuple[np.ndarray, np.ndarray]], factors: tuple[int, int], patch: int,
                 isotropic: bool) -> None:
        self.pairs = pairs
        self.factors = factors
        self.patch = (min(patch, *(hr.shape[0] for _, hr in pairs)), min(patch, *(hr.shape[1] for _, hr in pairs)))
        if isotropic:  # a transposed patch must have the same shape
            self.patch = (min(self.patch),) * 2
        self.patch = tuple(p - p % f for p, f in zip(self.patch, factors, strict=True))
        self.isotropic = isotropic

    def distinct_patches(self) -> int:
        """Patches the pairs offer: positions × planes × symmetries (4 flips, × 2 with the transpose)."""
        (f0, f1), (p0, p1) = self.factors, self.patch
        positions = sum((lr.shape[0] - p0 // f0 + 1) * (lr.shape[1] - p1 // f1 + 1) * lr.shape[2]
                        for lr, _ in self.pairs)
        return positions * (8 if self.isotropic else 4)

    def batch(self, rng: np.random.Generator, size: int, step: int) -> tuple[np.ndarray, np.ndarray]:
        """``(lr, hr)`` batches ``(size, 1, p0/f0, p1/f1)`` and ``(size, 1, p0, p1)`` float32."""
        lr, hr = self.pairs[step % len(self.pairs)]  # alternate the degraded axis step by step
        (f0, f1), (p0, p1) = self.factors, self.patch
        q0, q1 = p0 // f0, p1 // f1
        r0 = rng.integers(0, lr.shape[0] - q0 + 1, size)
        r1 = rng.integers(0, lr.shape[1] - q1 + 1, size)
        z = rng.integers(0, lr.shape[2], size)
        flips = rng.integers(0, 2, (size, 2)).astype(bool)
        transpose = rng.integers(0, 2, size).astype(bool) & self.isotropic
        lows, highs = [], []
        for k in range(size):
            low = lr[r0[k]:r0[k] + q0, r1[k]:r1[k] + q1, z[k]]
            high = hr[r0[k] * f0:r0[k] * f0 + p0, r1[k] * f1:r1[k] * f1 + p1, z[k]]
            # Flipping an axis maps the FOV grid onto itself (LR n ↔ n' − 1 − n sits on the mirrored HR
            # centre), so flipped pairs are still exact pairs.
            for axis in (0, 1):
                if flips[k, axis]:
                    low, high = np.flip(low, axis), np.flip(high, axis)
            if transpose[k]:
                low, high = low.T, high.T
            lows.append(low)
            highs.append(high)
        return np.stack(lows)[:, None].astype(np.float32), np.stack(highs)[:, None].astype(np.float32)


def _volume_factors(image: SciImage, scale: int | Sequence[int] | None, axis: int | None) -> tuple[int, int, str]:
    """The low-resolution axis, its factor, and where the factor came from."""
    n = image.spatial_ndim
    if axis is not None and not (isinstance(axis, int | np.integer) and -n <= axis < n):
        raise SciSRError(f"axis {axis!r} is out of range for a volume with {n} spatial axes")
    if scale is not None and not np.isscalar(scale):
        factors = tuple(int(s) for s in scale)
        if len(factors) != n:
            raise SciSRError(f"scale {factors} needs one factor per spatial axis ({n})")
        scaled = [a for a, s in enumerate(factors) if s != 1]
        if any(s < 1 for s in factors):
            raise SciSRError(f"scale factors must be positive integers, got {factors}")
        if not scaled:
            raise SciSRError(f"scale {factors} is 1 on every axis: nothing to super-resolve")
        if len(scaled) > 1:
            raise SciSRError(f"self-supervised SR upscales one axis of a volume; scale {factors} scales {len(scaled)}")
        if axis is not None and axis % n != scaled[0]:
            raise SciSRError(f"scale {factors} scales axis {scaled[0]}, but axis={axis} was given")
        return scaled[0], factors[scaled[0]], "given"
    spacing = np.asarray(image.spacing, dtype=float)
    low_axis = int(np.argmax(spacing)) if axis is None else axis % n
    if scale is not None:
        factor = int(scale)
        if factor != scale or factor < 1:
            raise SciSRError(f"scale must be a positive integer, got {scale!r}")
        source = "given"
    else:
        in_plane = float(np.mean(np.delete(spacing, low_axis)))
        factor = round(float(spacing[low_axis]) / in_plane)
        source = f"spacing {spacing[low_axis]:g} / {in_plane:g} mm"
    if factor <= 1:
        raise SciSRError(
            f"scale is 1 on every axis (spacing {tuple(round(s, 4) for s in spacing)}): the volume is not "
            "anisotropic; give scale= and axis=")
    return low_axis, factor, source


def _volume_grid(image: SciImage, spacing: SpacingLike, axis: int | None) -> tuple[int, float, int, str]:
    """For ``spacing=`` on a volume: the low-resolution axis, the ratio ``n'/n`` on it, ``n'``, and its source.

    Only the low-resolution axis may change: the others must already have the voxel size asked for
    (within half a voxel of the field of view).
    """
    n = image.spatial_ndim
    if axis is not None and not (isinstance(axis, int | np.integer) and -n <= axis < n):
        raise SciSRError(f"axis {axis!r} is out of range for a volume with {n} spatial axes")
    target, shape = spacing_grid(image, spacing)
    low_axis = int(np.argmax(image.spacing)) if axis is None else axis % n
    others = [a for a in range(n) if a != low_axis and shape[a] != image.spatial_shape[a]]
    if others:
        raise SciSRError(f"self-supervised SR upscales one axis of a volume (axis {low_axis}); spacing "
                         f"{tuple(round(t, 4) for t in target)} would also change axis {others[0]} (spacing "
                         f"{tuple(round(float(d), 4) for d in image.spacing)}): give that axis its own spacing")
    before, after = image.spatial_shape[low_axis], shape[low_axis]
    if after == before:
        raise SciSRError(f"spacing {target[low_axis]:g} on axis {low_axis} is not finer than the input's "
                         f"{float(image.spacing[low_axis]):g}: nothing to super-resolve")
    return low_axis, after / before, after, f"spacing {target[low_axis]:g}: {before} → {after} slices"


def _thick_slice_on_grid(hr: np.ndarray, axis: int, ratio: float, profile: dict[str, Any]) -> np.ndarray:
    """``hr`` thick-sliced along ``axis`` at a non-integer ``ratio`` and put back on its own grid (cubic).

    Slices are sampled at ``round(n/ratio)`` FOV-grid positions with the slice profile (width in ``hr``
    voxels), then resampled onto the ``n`` voxels of ``hr`` by cubic B-spline: the input the network sees
    at inference, where the through-plane axis is resampled the same way before it runs.
    """
    make = gaussian_profile if profile["kind"] == "gaussian" else boxcar_profile
    n = hr.shape[axis]
    low = sample_axis(hr, axis, max(2, round(n / ratio)), *make(profile["width"]))
    return resample_grid(low, hr.shape, "cubic")


def _profile(image: SciImage, low_axis: int, factor: float,
             slice_profile: str | float | tuple[str, float] | None) -> dict[str, Any]:
    """Slice profile ``{"kind", "width", "source"}``; ``width`` (FWHM or boxcar width) in HR voxels."""
    kind, width = "gaussian", None
    if isinstance(slice_profile, str):
        kind = slice_profile
    elif isinstance(slice_profile, tuple | list):
        if len(slice_profile) != 2:
            raise SciSRError(f"slice_profile must be (kind, width in HR voxels), got {slice_profile!r}")
        kind, width = str(slice_profile[0]), float(slice_profile[1])
    elif slice_profile is not None:
        width = float(slice_profile)
    if kind not in PROFILES:
        raise SciSRError(f"slice profile must be one of {PROFILES}, got {kind!r}")
    if width is not None:
        source = "given"
    else:
        measured = slice_profile_for(image, low_axis, kind=kind)
        if measured is None:
            width, source = float(factor), f"slice spacing {float(image.spacing[low_axis]):g} mm"
        elif measured.source == "estimated":
            width = measured.width_in_voxels(factor)
            source = (f"estimated from the image's spectra: {measured.fwhm_mm:.3g} mm "
                      f"(fit residual {measured.residual_db:.2f} dB)")
        else:
            width = measured.width_in_voxels(factor)
            source = f"{measured.source.upper()} SliceThickness {measured.fwhm_mm:g} mm"
    if not width > 0:
        raise SciSRError(f"slice profile width must be positive, got {width}")
    return {"kind": kind, "width": round(float(width), 4), "source": source}


def _frame_degradation(image: SciImage, factors: tuple[int, ...]
                       ) -> tuple[ForwardModel | None, Callable[[np.ndarray], np.ndarray]]:
    """The LR simulation ZSSR trains on, as ``(operator, f(hr))``.

    The acquisition's forward model, chosen as for data consistency (header, then the domain's default;
    :func:`sciSR.consistency.forward_model_for`); generic images, whose acquisition is unknown, get an
    antialiased bicubic reduction (operator None).
    """
    operator = forward_model_for(image, factors)
    if operator is None:
        return None, lambda x: bicubic_downsample(x, factors)
    return operator, lambda x: degrade(x, operator)


def frame_fathers(hr: np.ndarray, factors: tuple[int, ...], operator: ForwardModel | None) -> list[np.ndarray]:
    """Smaller copies of a frame to train on beside the frame itself (ZSSR's "HR fathers").

    A network trained on one pair (the frame's degraded copy → the frame) learns the content at that one
    scale and, trained long, fits it at the cost of the scale it is applied at (nibabel's example4d EPI
    slice, sharp k-space ×2: +0.49 dB over cubic after 200 steps, −0.11 dB after 800). Copies at
    :data:`TRAINING` ``["father_scales"]`` of the frame's size widen the scales it sees: MRI frames are
    re-imaged with fewer k-space lines (:func:`~sciSR.degrade.mri.kspace_resample`, a smaller acquisition
    matrix over the same field of view), others shrunk by antialiased bicubic. Sizes are rounded to
    multiples of the factors.

    Parameters
    ----------
    hr : numpy.ndarray
        ``(n0, n1, ...)`` the frame (each size a multiple of its factor).
    factors : tuple of int
        Scale per spatial axis.
    operator : ForwardModel, optional
        The frame's forward model (:func:`_frame_degradation`); None for generic frames.

    Returns
    -------
    list of numpy.ndarray
        float32 copies, largest first; sizes equal to the frame's are left out.
    """
    shrink = kspace_resample if operator is not None and operator.kind == "kspace" else bicubic_resample
    fathers = []
    for share in TRAINING["father_scales"]:
        shape = tuple(max(f, round(n * share / f) * f) for n, f in zip(hr.shape[:2], factors, strict=True))
        if shape != hr.shape[:2]:
            fathers.append(shrink(hr, shape))
    return fathers


_VAL_CONTEXT_ROWS = 8  # training rows above the held-out ones that the network sees but is not scored on


def validation_split(lr: np.ndarray, hr: np.ndarray, factors: tuple[int, ...]
                      ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray], int, int]:
    """``(train pair, validation pair, held-out LR rows, context LR rows)``: the last rows are held out.

    The validation pair starts ``context`` rows above the held-out ones, so the network scores them with
    the surroundings it has at inference rather than with zero padding; only the held-out rows count. A
    frame too small to spare ``TRAINING["val_fraction"]`` of its rows (at least 4, leaving at least 8)
    validates on the training pair itself: that still catches a divergence, not over-fitting.
    """
    held = round(lr.shape[0] * TRAINING["val_fraction"])
    if held < 4 or lr.shape[0] - held < 8:
        return (lr, hr), (lr, hr), 0, 0
    cut = lr.shape[0] - held
    context = min(_VAL_CONTEXT_ROWS, cut)
    start = cut - context
    return (lr[:cut], hr[:cut * factors[0]]), (lr[start:], hr[start * factors[0]:]), held, context


def crop_to_factors(x: np.ndarray, factors: Sequence[int]) -> np.ndarray:
    """``x`` cut at the end of each leading axis to a multiple of its factor (a view)."""
    return x[tuple(slice(0, n - n % f) for n, f in zip(x.shape, factors, strict=False))]


def held_out_scorer(val_pair: tuple[np.ndarray, np.ndarray], context_rows: int, factors: Sequence[int],
                    device: torch.device) -> tuple[Callable[[nn.Module], float], Callable[[np.ndarray], float]]:
    """``(score a network, score a prediction)``: L1 on the held-out rows of :func:`validation_split`.

    Only the first plane (channel) counts, and only the rows below the ``context_rows`` the network sees
    for context; predictions are HR arrays ``(rows·f0, cols·f1)`` in the pair's normalised units.
    """
    low_val = torch.from_numpy(np.ascontiguousarray(val_pair[0][..., 0]))[None, None].to(device)
    high_val = torch.from_numpy(np.ascontiguousarray(val_pair[1][..., 0]))[None, None].to(device)
    scored = (..., slice(context_rows * factors[0], None), slice(None))

    def l1(prediction: torch.Tensor) -> float:
        return float(torch.mean(torch.abs(prediction[scored].float() - high_val[scored])))

    def score_network(net: nn.Module) -> float:
        net.eval()
        with torch.no_grad():
            return l1(net(low_val.contiguous(memory_format=torch.channels_last)))

    def score_array(prediction: np.ndarray) -> float:
        return l1(torch.from_numpy(np.ascontiguousarray(prediction, dtype=np.float32))[None, None].to(device))

    return score_network, score_array


def train_on_pairs(model: nn.Module, data: PatchPairs, *, device: torch.device, rng: np.random.Generator,
           deadline: float, infer_cost: Callable[[float], float], max_steps: int | None,
           report: Callable[[float], None], check: Callable[[], None], precision: str = "fp32",
           validate: Callable[[nn.Module], float] | None = None, recipe: Mapping[str, Any] = TRAINING,
           validate_start: bool = False, step_cap: int | None = None) -> dict[str, Any]:
    """Adam + L1 until ``max_steps`` or until training plus the estimated inference would pass ``deadline``.

    Stable at any budget: the learning rate warms up linearly over ``recipe["warmup_steps"]``, the
    gradient norm is clipped to ``recipe["clip_norm"]``, and with ``validate`` (L1 of the model on data
    it does not train on) the weights of the best validation are restored at the end, so a late divergence
    cannot reach the result. ``recipe`` has the keys of :data:`TRAINING` (``lr``, ``lr_final``,
    ``warmup_steps``, ``clip_norm``, ``val_every``, ``batch``); ``validate_start`` also scores the
    weights before the first step, so that pretrained weights are kept when no step improves on them
    (``best_step`` 0).

    ``infer_cost(seconds_per_step)`` estimates the inference time from the measured step time. With
    ``max_steps`` the learning rate follows the steps (reproducible); otherwise it follows the clock.
    ``step_cap`` ends training after that many steps whatever the budget (:data:`TRAINING`
    ``["max_epochs"]``): it lowers ``max_steps``, and without ``max_steps`` the learning rate follows the
    steps or the clock, whichever is nearer its end.
    ``precision`` (``"fp32"``, ``"bf16"``, ``"fp16"``; resolved, see
    :func:`sciSR.infer.precision.resolve_precision`) is the autocast dtype of the forward pass; the loss,
    the weights and Adam stay float32 (fp16 adds a gradient scaler). Weights and batches are channels-last,
    the layout oneDNN and cuDNN are fastest on (about 1.7× steps/s with bf16 on an AVX512-BF16 CPU).
    """
    from sciSR.infer.precision import AUTOCAST_DTYPES

    if precision not in AUTOCAST_DTYPES:
        raise SciSRError(f"precision {precision!r} is not one of {', '.join(map(repr, AUTOCAST_DTYPES))}")
    amp = AUTOCAST_DTYPES[precision]
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    layout = {4: torch.channels_last, 5: torch.channels_last_3d}
    lr0, lr1 = recipe["lr"], recipe["lr_final"]
    optimizer = torch.optim.Adam(model.parameters(), lr=lr0)
    loss_fn = nn.L1Loss()
    model.train()
    start = time.monotonic()
    stop_at = deadline
    losses: list[float] = []
    step = 0
    best = {"val_l1": math.inf, "step": 0, "state": None}
    # A short fixed run warms up over its first tenth at most, so that it still learns.
    if step_cap is not None and max_steps is not None:
        max_steps, step_cap = min(max_steps, step_cap), None
    limit = max_steps if max_steps is not None else step_cap
    warmup = recipe["warmup_steps"] if limit is None else max(1, min(recipe["warmup_steps"], limit // 10))

    def keep_if_best() -> None:
        value = validate(model)
        model.train()
        if value < best["val_l1"]:
            best.update(val_l1=value, step=step, state={k: v.detach().clone() for k, v in model.state_dict().items()})

    if validate is not None and validate_start:
        keep_if_best()
    warm_start = start
    while (max_steps is None or step < max_steps) and (step_cap is None or step < step_cap):
        check()
        now = time.monotonic()
        if step == 1:
            warm_start = now
        # The first step carries one-off set-up (kernel selection, allocations, layout conversion), up to
        # ten later steps' worth: the step time is measured without it and the inference reserve follows it.
        per_step = (now - warm_start) / (step - 1) if step > 1 else now - start
        if step >= _TIMING_STEPS:
            stop_at = deadline - max(infer_cost(per_step), _FINISH_RESERVE * (deadline - start))
        # Stop before a step that would end past the point where inference has to start.
        if now + per_step >= stop_at and step >= 1:
            break
        by_time = min((now - start) / max(stop_at - start, 1e-9), 1.0)
        fraction = step / max_steps if max_steps is not None else max(by_time, step / (step_cap or math.inf))
        warm = min(1.0, (step + 1) / warmup)
        for group in optimizer.param_groups:
            group["lr"] = warm * (lr1 + 0.5 * (lr0 - lr1) * (1 + math.cos(math.pi * fraction)))
        low, high = data.batch(rng, recipe["batch"], step)
        low_t, high_t = torch.from_numpy(low).to(device), torch.from_numpy(high).to(device)
        if step == 0:
            model.to(memory_format=layout[low_t.ndim])
        low_t = low_t.contiguous(memory_format=layout[low_t.ndim])
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            pred = model(low_t)
        loss = loss_fn(pred.float(), high_t)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_(model.parameters(), recipe["clip_norm"])
        scaler.step(optimizer)
        scaler.update()
        losses.append(float(loss.detach()))
        step += 1
        if validate is not None and step % recipe["val_every"] == 0:
            keep_if_best()
        report(_TRAIN_SHARE_OF_PROGRESS * max(fraction, by_time))
    stats: dict[str, Any] = {}
    if validate is not None:
        if step % recipe["val_every"]:
            keep_if_best()
        if best["state"] is not None:
            model.load_state_dict(best["state"])
        stats = {"val_l1": round(float(best["val_l1"]), 6), "best_step": int(best["step"])}
    model.eval()
    tail = losses[-min(50, len(losses)):]
    return {"steps": step, "loss": round(float(np.mean(tail)), 6) if tail else None,
            "train_seconds": round(time.monotonic() - start, 2), "precision": precision, **stats}


def self_supervised(
    img: SciImage | np.ndarray,
    scale: int | Sequence[int] | None = None,
    *,
    spacing: SpacingLike | None = None,
    axis: int | None = None,
    slice_profile: str | float | tuple[str, float] | None = None,
    time_budget_s: float = 300.0,
    max_steps: int | None = None,
    device: str = "auto",
    seed: int = 0,
    arch: str = "edsr-baseline",
    options: dict[str, Any] | None = None,
    precision: str = "fp32",
    consistency: str = "auto",
    progress: ProgressLike = False,
    cancel: threading.Event | None = None,
) -> SciImage | np.ndarray:
    """Super-resolve an image with a network trained on the image itself.

    Parameters
    ----------
    img : SciImage or numpy.ndarray
        A 3D volume (anisotropic: one axis with coarse slices) or a 2D frame; a trailing channel axis
        (``meta["channel_axis"]``) is allowed, its channels share one network. A numpy array is taken as
        all-spatial with unit spacing, and a numpy array is returned.
    scale : int or sequence of int, optional
        Volumes: the factor along the low-resolution axis, or one factor per spatial axis with exactly
        one above 1 (e.g. ``(1, 1, 4)``). None: ``round(spacing[axis] / mean in-plane spacing)``.
        Frames: required (or ``spacing``); one factor for both axes or one per axis.
    spacing : float or sequence of float or str, optional
        The output voxel size instead of ``scale`` (not both), in the image's units, or ``"isotropic"``;
        the field of view is kept (``n' = round(n·spacing_in/spacing)``, see :func:`sciSR.upscale`).
        Volumes: only the low-resolution axis may change, and the network trains at the true ratio
        ``n'/n`` (e.g. 3.3 mm slices → 0.36 mm is ×9.17, not ×9): its training input is the in-plane
        image thick-sliced at that ratio and put back on the fine grid by cubic B-spline, and it runs on
        the through-plane axis resampled the same way. Frames: the network trains at the next integer
        factor and its result is resampled onto the grid (cubic B-spline).
    axis : int, optional
        Volumes: the low-resolution axis; default the axis with the largest spacing.
    slice_profile : str or float or (str, float), optional
        Volumes: the slice profile of the low-resolution axis in high-resolution voxels: a Gaussian FWHM,
        ``"gaussian"``/``"boxcar"`` (width from the header), or ``(kind, width)``. Default: Gaussian with
        FWHM = the slice thickness across ``axis`` (:func:`sciSR.consistency.slice_profile_for`: the DICOM
        or BIDS SliceThickness the reader recorded, else the estimate from the image's own spectra when
        it fits), else the slice spacing.
    time_budget_s : float
        Wall-clock seconds for training plus inference (> 0); inference time is estimated from the
        first training steps and reserved.
    max_steps : int, optional
        Stop training after this many steps (also within the time budget, and at most the step cap of
        :data:`TRAINING`); the learning-rate schedule then follows the steps, so a fixed seed on the CPU
        gives identical results.
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``.
    seed : int
        Seeds the network initialisation (``torch.manual_seed``, without disturbing the caller's torch
        random state) and patch sampling (``numpy.random.default_rng``).
    arch : str
        A registry architecture (:func:`sciSR.models.list_models`) that can produce anisotropic scales.
    options : dict, optional
        Architecture options; None: :data:`DEFAULT_OPTIONS` for ``arch`` (else the paper defaults).
    precision : str
        ``"fp32"`` (default), ``"auto"``, ``"bf16"`` or ``"fp16"``: the autocast dtype of training and
        inference (:func:`sciSR.infer.precision.resolve_precision`; ``"auto"`` is bf16 on CPUs with native
        bf16 and on CUDA). Losses, optimiser state, normalisation and flux stay in fp32; the provenance
        records the precision used. More steps fit the budget in bf16 (``benchmarks/self_supervised.py
        --precision``).
    consistency : str
        ``"auto"`` (default) or ``"on"``: the network's result is projected onto the input with the forward
        model it trained on (:func:`sciSR.consistency.project`: the k-space, CT or slice-profile operator;
        degraded again it reproduces the input), on the integer grid. There is no self-check to defer to:
        the network learnt exactly this operator, so ``"auto"`` is ``"on"``. ``"off"``: the network's
        result as it is. A cubic fallback (frames) is projected the same way: with the exact operator of a
        noise-free acquisition the projection only moves an estimate towards the truth. Sky frames keep
        their flux as :func:`sciSR.upscale` does; generic frames (bicubic training pairs) are not projected.
    progress : bool or callable
        ``True`` for a bar on a terminal, or ``f(fraction_done)`` over training and inference.
    cancel : threading.Event, optional
        Checked every training step and every inference batch; when set, :class:`sciSR.Cancelled` is raised.

    Returns
    -------
    SciImage or numpy.ndarray
        Spatial shape × scale (channels unchanged) on the FOV-preserving grid with affine, WCS, spacing
        and FITS grid keywords updated as by :func:`sciSR.upscale`, values in the input's units.
        ``meta["provenance"][-1]`` records ``model="self-supervised"``, the recipe, the architecture,
        ``steps``, final ``loss`` (L1, normalised units), ``train_seconds``, ``infer_seconds``, the
        slice ``profile`` (volumes) or ``degradation`` (frames: the acquisition's forward model as data
        consistency chooses it, :func:`sciSR.consistency.forward_model_for`; antialiased bicubic for
        generic images) and the ``seed``. Frames also record the validation: the last quarter of the
        frame's rows (``held_out_rows``) is not trained on, the weights of the best ``val_l1`` (at
        ``best_step``) are kept, and when they do not beat cubic there (``cubic_val_l1``) the result is
        the cubic B-spline upscale (then the consistency projection), with ``fallback`` saying so;
        ``fathers`` lists the sizes of the smaller copies it also trained on (:func:`frame_fathers`);
        ``consistency`` records the operator projected with, or ``"off"``. ``step_cap`` is the step
        count training stops at whatever the budget (:data:`TRAINING`). A learned frame keeps
        ``detail_share`` of its difference from the cubic fallback (projected alike), so it satisfies the
        same constraints (MRI frames; recorded only when below 1).

    Raises
    ------
    SciSRError
        Scale 1 on every axis, an axis out of range, more than 3 spatial axes, a non-positive time budget,
        an image too small for the scale, an all-NaN image.
    sciSR.Cancelled
        When ``cancel`` is set.
    """
    as_array = not isinstance(img, SciImage)
    image = SciImage.from_array(np.asarray(img)) if as_array else img
    source = image.meta.get("source")
    check = cancel_checker(cancel)
    started = time.monotonic()
    try:
        budget = float(time_budget_s)
    except (TypeError, ValueError):
        raise SciSRError(f"time_budget_s must be a number of seconds, got {time_budget_s!r}", source) from None
    if not budget > 0:
        raise SciSRError(f"time_budget_s must be positive, got {time_budget_s!r}", source)
    if max_steps is not None and (int(max_steps) != max_steps or max_steps < 1):
        raise SciSRError(f"max_steps must be a positive integer, got {max_steps!r}", source)
    if consistency not in ("auto", "on", "off"):
        raise SciSRError(f"consistency must be 'auto', 'on' or 'off', got {consistency!r}", source)
    if image.spatial_ndim not in (2, 3):
        raise SciSRError(
            f"self-supervised SR needs a 2D frame or a 3D volume; this image has {image.spatial_ndim} spatial "
            "axes (a channel or time axis must be the last one, named in meta['channel_axis'])", source)
    check()
    values, mask = prepare(image)
    flux = resolve_flux(image, None)
    params = fit_normalization(values, DEFAULT_FOR_DOMAIN[image.domain])
    channels = image.channel_axis is not None

    grid_shape = None  # the output's spatial shape when spacing= asks for a grid off the integer factors
    if spacing is not None and scale is not None:
        raise SciSRError("give either scale or spacing, not both", source)
    if image.spatial_ndim == 3:
        if spacing is None:
            low_axis, factor, scale_source = _volume_factors(image, scale, axis)
            ratio: float = factor
        else:
            low_axis, ratio, n_out, scale_source = _volume_grid(image, spacing, axis)
            factor = round(ratio)
            if ratio != factor:
                if flux != "none":
                    raise SciSRError("a non-integer slice ratio cannot keep flux; use scale=", source)
                grid_shape = tuple(n_out if a == low_axis else n for a, n in enumerate(image.spatial_shape))
        profile = _profile(image, low_axis, ratio, slice_profile)
        factors = tuple(factor if a == low_axis else 1 for a in range(3))
        operator = ForwardModel("slice_profile", factors, profile=profile["kind"],
                                fwhm=tuple(profile["width"] if a == low_axis else 1.0 for a in range(3)))
        # Volume as (in-plane a, in-plane b, slices[, channels]); the channels become more slices to learn from.
        in_plane = [a for a in range(3) if a != low_axis]
        volume = np.moveaxis(values, [*in_plane, low_axis], [0, 1, 2])
        volume = volume.reshape(*volume.shape[:2], -1)
        pairs = []
        for plane_axis in (0, 1):
            if grid_shape is None:
                hr = crop_to_factors(volume, [factor if a == plane_axis else 1 for a in range(3)])
                if volume.shape[plane_axis] == 1:
                    raise SciSRError(f"this volume is a single plane across axis {in_plane[plane_axis]}: "
                                     "self-supervise it as the 2D slice it is", source)
                if hr.shape[plane_axis] < factor:
                    raise SciSRError(f"in-plane axis {in_plane[plane_axis]} is shorter than the scale {factor}",
                                     source)
                gap = factor - profile["width"]  # thick_slice takes thickness = factor − gap
                lr = thick_slice(hr, [factor if a == plane_axis else 1 for a in range(2)], profile["kind"], gap)
            else:
                hr = volume
                lr = _thick_slice_on_grid(hr, plane_axis, ratio, profile)
            pair = (normalize(lr, params), normalize(hr, params))
            pairs.append(pair if plane_axis == 0 else tuple(np.ascontiguousarray(p.transpose(1, 0, 2)) for p in pair))
        model_scale = (factor, 1) if grid_shape is None else (1, 1)
        patch = factor * math.ceil(TRAINING["patch"] / factor) if grid_shape is None else TRAINING["patch"]
        data = PatchPairs(pairs, model_scale, patch, isotropic=False)
        recipe = {"recipe": "SMORE-style 2D in-plane training, 2-orientation Fourier fusion", "axis": low_axis,
                  "scale_source": scale_source, "profile": profile}
        if grid_shape is not None:
            recipe.update(ratio=round(ratio, 6), recipe="SMORE-style 2D in-plane training at the true slice "
                          "ratio (network on the cubic B-spline grid), 2-orientation Fourier fusion")
        # Network input voxels at inference, in both orientations: the LR volume itself for an integer
        # factor (the network upsamples), the fine grid when it runs on the cubic B-spline grid.
        infer_voxels = 2 * values.size * (ratio if grid_shape is not None else 1)
    else:
        if slice_profile is not None or axis is not None:
            raise SciSRError("slice_profile and axis apply to volumes; this is a 2D frame", source)
        if scale is None and spacing is None:
            raise SciSRError("a 2D frame needs a scale (e.g. scale=2) or a spacing", source)
        if spacing is not None:
            grid_shape = spacing_grid(image, spacing)[1]
            scale = tuple(math.ceil(m / n) for n, m in zip(image.spatial_shape, grid_shape, strict=True))
        factors = normalize_scale(scale, 2)
        if all(f == 1 for f in factors):
            raise SciSRError(f"scale {factors} is 1 on every axis: nothing to super-resolve", source)
        hr = crop_to_factors(values, factors)
        if min(n // f for n, f in zip(hr.shape, factors, strict=False)) < 4:
            raise SciSRError(f"the frame {values.shape[:2]} is too small to learn ×{factors} from itself", source)
        operator, degrade_frame = _frame_degradation(SciImage.from_array(hr, spacing=image.spacing,
                                                                         domain=image.domain, meta={
            k: image.meta[k] for k in ("fits_header", "units") if k in image.meta}), factors)
        name = "antialiased bicubic" if operator is None else operator.to_dict()
        lr = degrade_frame(hr).astype(np.float32)
        stack = (lambda x: x.reshape(*x.shape[:2], -1)) if channels else (lambda x: x[..., None])
        pair = (stack(normalize(lr, params)), stack(normalize(hr, params)))
        train_pair, val_pair, held_rows, context_rows = validation_split(*pair, factors)
        # The fathers' held-out rows cover the frame's (same field of view), so only their training rows are
        # used; a father whose training rows cannot hold a whole patch of the frame's is left out.
        patch = [min(TRAINING["patch"], n) for n in train_pair[1].shape[:2]]
        fathers, father_shapes = [], []
        for father in frame_fathers(hr, factors, operator):
            low = stack(normalize(degrade_frame(father).astype(np.float32), params))
            train = validation_split(low, stack(normalize(father, params)), factors)[0]
            if all(n >= p for n, p in zip(train[1].shape[:2], patch, strict=True)):
                fathers.append(train)
                father_shapes.append(list(father.shape[:2]))
        data = PatchPairs([train_pair, *fathers], factors, TRAINING["patch"], isotropic=factors[0] == factors[1])
        model_scale = factors
        recipe = {"recipe": "ZSSR: trained on the frame's own degraded copy", "degradation": name,
                  "fathers": father_shapes}
        infer_voxels = values.size

    torch_device = resolve_device(device)
    precision = resolve_precision(precision, torch_device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = create_model(arch, scale=model_scale, spatial_dims=2, in_channels=1,
                           **(DEFAULT_OPTIONS.get(arch, {}) if options is None else options))
    model = _ResidualOverCubic(net).to(torch_device)
    # Measured now (and cached on the model for predict_tiled) so that the time budget accounts for it.
    receptive_field_radius(model, 2, model.scale, 1)
    rng = np.random.default_rng(seed)
    step_cap = max(TRAINING["min_step_cap"], math.ceil(TRAINING["max_epochs"] * data.distinct_patches()
                                                       / TRAINING["batch"]))
    step_voxels = TRAINING["batch"] * math.prod(data.patch) / math.prod(model_scale)

    def infer_cost(seconds_per_step: float) -> float:
        # A training step is about 3 forward passes (forward + backward) over step_voxels input voxels.
        return _INFER_COST_MARGIN * seconds_per_step / (3 * step_voxels) * infer_voxels

    validate = None
    if image.spatial_ndim == 2:
        validate, score = held_out_scorer(val_pair, context_rows, factors, torch_device)
        cubic_l1 = score(interpolate(val_pair[0][..., 0], factors, "cubic"))

    with progress_callback(progress, desc="self-supervised") as report:
        run_recipe = TRAINING if image.spatial_ndim == 2 else {**TRAINING, "lr": TRAINING["volume_lr"]}
        stats = train_on_pairs(model, data, device=torch_device, rng=rng, deadline=started + budget, recipe=run_recipe,
                               infer_cost=infer_cost, max_steps=None if max_steps is None else int(max_steps),
                               report=report, check=check, validate=validate, precision=precision,
                               step_cap=step_cap)
        # Never below cubic: when the best weights do not beat it on the held-out rows, cubic is the result.
        fallback = validate is not None and stats["val_l1"] >= cubic_l1
        if validate is not None:
            stats.update(cubic_val_l1=round(cubic_l1, 6), held_out_rows=held_rows)
        stats["step_cap"] = step_cap
        infer_start = time.monotonic()
        net_input = normalize(values, params)
        n_spatial = image.spatial_ndim

        def part(index: int, count: int) -> Callable[[float], None]:
            share = 1.0 - _TRAIN_SHARE_OF_PROGRESS
            return lambda f: report(_TRAIN_SHARE_OF_PROGRESS + share * (index + f) / count)

        if n_spatial == 3:
            # The model upscales its first axis: (low, a, b) runs it on the (low, a) planes; both_orientations
            # swaps a and b for the (low, b) planes and fuses the two.
            order = [low_axis, *in_plane] + ([3] if channels else [])

            def predict(volume: np.ndarray, index: int, target: np.ndarray | None) -> np.ndarray:
                moved = np.ascontiguousarray(np.transpose(volume, order))
                run_factors = (factor, 1, 1)
                if grid_shape is not None:  # the network runs on the cubic B-spline grid, as it trained
                    moved = resample_grid(moved, (grid_shape[low_axis], *moved.shape[1:3]), "cubic")
                    run_factors = (1, 1, 1)
                pred, _ = predict_array(model, moved, 3, run_factors, device=device,
                                        progress=part(index, 2), cancel=cancel, precision=precision,
                                        out=None if target is None else np.transpose(target, order))
                return np.transpose(pred, np.argsort(order))

            out, recipe["fusion"] = both_orientations(predict, net_input, (low_axis, *in_plane), ratio)
        elif fallback:
            out, params = interpolate(values, factors, "cubic"), {"method": "none"}
            stats["fallback"] = "cubic: the trained weights did not beat it on the held-out rows"
        else:
            out, _ = predict_array(model, net_input, 2, factors, device=device, progress=part(0, 1), cancel=cancel,
                                   precision=precision)
        report(1.0)
    check()
    ran = factors
    if grid_shape is not None and image.spatial_ndim == 3:
        ran = tuple(round(ratio, 6) if a == low_axis else 1 for a in range(3))
        out = denormalize(out, params).astype(np.float32, copy=False)
        if not np.isfinite(out).all():
            raise SciSRError("the result holds NaN/inf values: training diverged", source)
    else:
        # Off the integer grid, masked voxels are blanked after resampling: a NaN would spread through the spline.
        blank = mask if grid_shape is None else None
        # A cubic fallback is projected too: onto the exact, noise-free operator's constraint set, which holds
        # the truth, the projection can only move an estimate closer to it (MR_small, sharp k-space ×2:
        # cubic 30.65 dB, projected 31.16 dB).
        project = consistency != "off" and operator is not None and operator.kind != "flux"

        def constrain(array: np.ndarray, norm: dict[str, Any]) -> None:
            finish(array, values, norm, factors, flux, None if project else blank)
            if project:
                project_in_place(array, values, operator, blank)

        constrain(out, params)
        share = TRAINING["detail_share"].get("bicubic" if operator is None else operator.kind, 1.0)
        if image.spatial_ndim == 2 and not fallback and share != 1.0:
            # Both ends satisfy the same constraints (flux, consistency), so every blend of them does too. The
            # blend comes after them: normalisation (asinh) and the Wiener projection are not linear.
            base = interpolate(values, factors, "cubic")
            constrain(base, {"method": "none"})
            out -= base
            out *= np.float32(share)
            out += base
            recipe["detail_share"] = share
        recipe["consistency"] = operator.to_dict() if project else "off"
        if grid_shape is not None and tuple(out.shape[:2]) != grid_shape:
            out, recipe["grid"] = to_grid(out, grid_shape, flux)
    result = regrid(image, out, tuple(ran), "self-supervised", flux=flux, mask=mask, **recipe, arch=arch,
                    options=dict(net.card["options"]), seed=seed, device=str(torch_device), **stats,
                    infer_seconds=round(time.monotonic() - infer_start, 2))
    if grid_shape is not None and "mask" in result.meta:
        result.array[result.meta["mask"]] = np.nan  # the mask regrid put on the new grid
    return result.array if as_array else result

