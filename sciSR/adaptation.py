"""Test-time adaptation: a shipped network fine-tuned on the image it is about to upscale.

``upscale(img, "mri-x2", adapt=60)`` asks for it (:func:`adapt_request` does it). The image and its own
degraded copy under the acquisition's forward model (:func:`sciSR.pipeline.own_degraded_copy`: the
operator data consistency and the self-check use) form training pairs at the model's scale, as in ZSSR
(Shocher et al., CVPR 2018), but starting from the shipped weights instead of from scratch. The rules of
:func:`sciSR.self_supervision.train_on_pairs` make it stable at any budget: a small learning rate with
linear warm-up and cosine decay, gradient-norm clipping, the last quarter of the rows held out, and the
best validated weights kept, where the shipped weights themselves are the first candidate: adapted weights
are used only when they beat the shipped ones on rows they never trained on. The upscale then runs as
usual (consistency, self-check, guard) with whichever weights won.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
import threading
import time
from typing import Any

import numpy as np
import torch

from sciSR.consistency.noise import estimate_noise_sigma, match_noise
from sciSR.image import SciImage
from sciSR.infer.tiled import resolve_device
from sciSR.intensity import normalize
from sciSR.pipeline import UpscaleRequest, own_degraded_copy, prepare, with_found_window
from sciSR.progress import ProgressLike, cancel_checker, progress_callback
from sciSR.self_supervision import (
    TRAINING,
    PatchPairs,
    crop_to_factors,
    held_out_scorer,
    train_on_pairs,
    validation_split,
)

__all__ = ["ADAPTATION", "adapt_request"]

LOG = logging.getLogger("sciSR")

# Adaptation runs on 2D planes only: the volumes' learning rate is not inherited.
ADAPTATION: dict[str, Any] = {**{k: v for k, v in TRAINING.items() if k != "volume_lr"},
                              "patch": 64, "batch": 8, "lr": 3e-5, "lr_final": 3e-7, "warmup_steps": 20,
                              "val_every": 10, "max_epochs": 4, "min_step_cap": 250}
"""Fine-tuning recipe (keys as :data:`sciSR.self_supervision.TRAINING`): HR patches of 64² (the shipped
models trained on 64² patches), 8 per step, Adam from 3e-5 (a thirtieth of training from scratch: the
shipped weights are a good start and must not be forgotten) decaying to 3e-7, 20 warm-up steps, a
validation every 10 steps. With 1e-4, mri-x2 adapted for 60 s on the held-out MR_small/emri_small cells of
``benchmarks/quality.py`` lost up to 0.12 dB to the shipped weights; with 3e-5 at most 0.06 dB. Training
stops at a step cap, as :func:`sciSR.self_supervised` does, but tighter: 4 passes over the distinct
patches, at least 250 steps, whatever the budget. The shipped weights need no long warm-up, and longer
adaptation fits the scale of the degraded copy (mri-x2 on a 64² knee-phantom slice, sharp k-space ×2:
+0.77 dB over the shipped weights after 289 steps, −0.31 dB after 896, while the held-out L1 kept falling)."""


WINDOWED_NOISE_LIMIT = 0.008
"""Noise σ (estimated from the input, :func:`sciSR.consistency.noise.estimate_noise_sigma`) as a share of
the input's 99th percentile from which a windowed k-space acquisition is not adapted: its own degraded
copy then no longer tells whether adapted weights help. Knee phantom slices (axial seed 3, coronal seed 7),
Hamming ×2, the mri-x2 of commit cc08eb4, adapted − shipped (dB over cubic against the truth): noise-free
+1.06 / +2.51, σ 0.5 % (estimated 0.66 / 0.56 %) −0.06 / +2.17, 0.75 % (0.95 / 0.81 %) −0.31 / +1.87,
1 % (1.23 / 1.06 %) −1.31 / +1.64, 2 % −1.44 / +0.74, while the held-out L1 fell 3–8× in every case:
nothing the adaptation sees tells the slice that gains from the one that loses, so the loss is not risked.
Sharp truncation has no such limit (2 %: +1.71 / +0.16)."""


def _planes(x: np.ndarray, factors: tuple[int, ...], channels: bool) -> tuple[np.ndarray, tuple[int, int]]:
    """``x`` as ``(n0, n1, depth)`` planes of the two scaled axes (other axes and channels stacked as depth).

    The middle plane comes first: :func:`sciSR.self_supervision.held_out_scorer` scores the first one.
    """
    spatial = x.ndim - (1 if channels else 0)
    scaled = [a for a in range(spatial) if factors[a] > 1]
    others = [a for a in range(x.ndim) if a not in scaled]
    planes = np.transpose(x, [*scaled, *others]).reshape(x.shape[scaled[0]], x.shape[scaled[1]], -1)
    depth = planes.shape[2]
    return np.roll(planes, -(depth // 2), axis=2), (factors[scaled[0]], factors[scaled[1]])


def adapt_request(image: SciImage, request: UpscaleRequest, *, seed: int = 0, max_steps: int | None = None,
                  progress: ProgressLike = False, cancel: threading.Event | None = None) -> UpscaleRequest:
    """``request`` with its network fine-tuned on ``image`` for ``request.adapt`` seconds.

    Parameters
    ----------
    image : SciImage
        The low-resolution input (2D frame, or a volume whose two scaled axes span its planes).
    request : UpscaleRequest
        Built with ``adapt=`` seconds (:meth:`UpscaleRequest.build`, which refuses what cannot be adapted:
        :func:`sciSR.pipeline.check_adapt`); returned unchanged when None.
    seed : int
        Seed of the patch sampling and of torch.
    max_steps : int, optional
        A step budget instead of the clock (reproducible on the CPU; the time budget still bounds it).
    progress : bool or callable
        ``True`` for a bar on a terminal, or ``f(fraction_done)`` over the adaptation.
    cancel : threading.Event, optional
        Checked every step; when set, :class:`sciSR.Cancelled` is raised.

    Returns
    -------
    UpscaleRequest
        With the adapted network when it beat the shipped one on the held-out rows (else the shipped one)
        and :attr:`UpscaleRequest.adaptation`: ``seconds`` (asked), ``steps``, ``train_seconds``,
        ``val_l1_start`` and ``val_l1`` (L1 in the model's normalised units on the held-out rows, with
        the shipped and the kept weights), ``best_step``, ``used`` (whether the adapted weights run),
        ``step_cap`` (see :data:`ADAPTATION`),
        ``held_out_rows``, ``degradation`` (the forward model of the pairs), ``recipe`` and ``seed``.
        A windowed k-space input noisier than :data:`WINDOWED_NOISE_LIMIT`, or one whose scanner zero-filled
        k-space (:attr:`ForwardModel.acquired`), is not adapted: the record then holds ``seconds``,
        ``steps`` 0, ``used`` False, ``seed`` and ``skipped`` (why).

    Raises
    ------
    sciSR.Cancelled
        When ``cancel`` is set.
    """
    if request.adapt is None:
        return request
    started = time.monotonic()
    check = cancel_checker(cancel)
    check()
    values, _ = prepare(image)
    factors = request.factors
    # The window is found before adapting, for two reasons: the pairs must be degraded with the
    # acquisition's window (pairs made sharp from a Hamming input taught mri-x2 to stop undoing the window:
    # held-out MR_small and emri_small with Hamming + 2 % Rician fell from +3.09 / +2.06 dB over cubic to
    # +0.54 / +0.16 after 100 steps), and the adapted network's own result can no longer reveal it.
    request = with_found_window(request, image, values, cancel)
    window = request.operator.window if request.operator is not None and request.operator.kind == "kspace" else None
    noise = None if window is None else (estimate_noise_sigma(values, len(factors))
                                         / max(float(np.percentile(values, 99)), 1e-12))
    skipped = None
    if noise is not None and noise >= WINDOWED_NOISE_LIMIT:
        skipped = (f"{window} window with noise σ {noise:.4f} of the 99th percentile "
                   f"(limit {WINDOWED_NOISE_LIMIT})")
    elif request.operator is not None and request.operator.acquired is not None:
        # The image lacks the outer share of its own k-space lines, so its copy would teach the network to
        # leave the same share of its output's lines empty, which the shipped weights fill.
        skipped = f"zero-filled k-space (measured share of lines {list(request.operator.acquired)})"
    if skipped is not None:
        LOG.info(f"adaptation skipped: {skipped}; the shipped weights run unchanged")
        return dataclasses.replace(request, adaptation={
            "seconds": request.adapt, "steps": 0, "used": False, "seed": seed, "skipped": skipped})
    hr = crop_to_factors(values, factors)
    lr, described = own_degraded_copy(request, np.ascontiguousarray(hr))
    lr, added_noise = match_noise(lr, hr, len(factors), seed)
    params = request.model.fit_normalization(values)
    channels = image.channel_axis is not None
    lr_planes, plane_factors = _planes(normalize(lr, params), factors, channels)
    hr_planes, _ = _planes(normalize(hr, params), factors, channels)
    train_pair, val_pair, held_rows, context_rows = validation_split(lr_planes, hr_planes, plane_factors)
    data = PatchPairs([train_pair], plane_factors, ADAPTATION["patch"], isotropic=plane_factors[0] == plane_factors[1])
    step_cap = max(ADAPTATION["min_step_cap"], math.ceil(ADAPTATION["max_epochs"] * data.distinct_patches()))
    device = resolve_device(request.device)
    net = copy.deepcopy(request.model.net).to(device)
    validate, _ = held_out_scorer(val_pair, context_rows, plane_factors, device)
    with torch.random.fork_rng(devices=[]), progress_callback(progress, desc="adapt") as report:
        torch.manual_seed(seed)
        start_l1 = validate(net)
        stats = train_on_pairs(net, data, device=device, rng=np.random.default_rng(seed),
                               deadline=started + request.adapt, infer_cost=lambda _: 0.0, max_steps=max_steps,
                               report=report, check=check, precision=request.precision, validate=validate,
                               recipe=ADAPTATION, validate_start=True, step_cap=step_cap)
        report(1.0)
    used = stats["best_step"] > 0
    adaptation = {"seconds": request.adapt, **stats, "val_l1_start": round(start_l1, 6), "used": used,
                  "step_cap": step_cap,
                  "held_out_rows": held_rows, "degradation": described, "added_noise_sigma": added_noise,
                  "seed": seed,
                  "recipe": {k: ADAPTATION[k] for k in ("patch", "batch", "lr", "lr_final", "warmup_steps",
                                                        "clip_norm", "val_every", "val_fraction")}}
    LOG.info(f"adaptation: {stats['steps']} steps in {stats['train_seconds']:.0f} s, held-out L1 "
             f"{start_l1:.4g} (shipped) -> {stats['val_l1']:.4g}: "
             + ("adapted weights used" if used else "no step beat the shipped weights; they run unchanged"))
    if not used:
        return dataclasses.replace(request, adaptation=adaptation)
    net.eval()
    adapted = dataclasses.replace(request.model, net=net)
    return dataclasses.replace(request, model=adapted, adaptation=adaptation)
