"""Which compute precision a network runs in: resolving ``"auto"`` and refusing what cannot work.

``"fp32"`` is full precision. ``"bf16"`` and ``"fp16"`` are mixed precision (``torch.autocast``): the
convolutions of the network run in the half-width type while everything around the network (intensity
normalisation, flux projection, data consistency, the output accumulator) stays in float32/float64, and
the last layer of a post-upsampling network runs in float32 (see :func:`sciSR.infer.tiled.predict_tiled`).

``"auto"`` picks bf16 where the hardware computes it natively — CUDA GPUs that support it, and CPUs with
AVX512-BF16 or AMX-BF16 (Intel Cooper Lake / Sapphire Rapids and later, AMD Zen 4 and later) — and only
for models whose spec lists ``"bf16"`` in :attr:`~sciSR.models.spec.ModelSpec.precisions` (a model card
drops it when its bf16 output falls below the fidelity bar, see ``benchmarks/inference.py --fidelity``).
Elsewhere it picks fp32: without native bf16 a CPU emulates it and gets slower, not faster.

This module depends on torch and nothing of the flow, so the training engine may use it as well.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from sciSR.errors import SciSRError

if TYPE_CHECKING:
    from sciSR.models.spec import ModelSpec

PRECISION_CHOICES = ("auto", "fp32", "bf16", "fp16")
"""Values a user may pass; everything but ``"auto"`` is a :data:`sciSR.models.spec.PRECISIONS` entry."""

AUTOCAST_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
"""Autocast dtype per resolved precision (None: full precision, no autocast)."""

_CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


@functools.cache
def cpu_has_native_bf16() -> bool:
    """True when this CPU computes bf16 natively (AVX512-BF16 or AMX-BF16), so bf16 autocast pays.

    Asks torch's own CPU feature detection where this torch has it, else the ``flags`` of
    ``/proc/cpuinfo`` (Linux); False when neither can tell.
    """
    probes = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    if all(callable(p) for p in probes):
        return any(p() for p in probes)
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return any(flag in flags for flag in _CPU_BF16_FLAGS)


def resolve_precision(precision: str, device: torch.device, spec: ModelSpec | None = None) -> str:
    """The precision a network runs in on ``device``: ``"fp32"``, ``"bf16"`` or ``"fp16"``.

    Parameters
    ----------
    precision : str
        ``"auto"``, ``"fp32"``, ``"bf16"`` or ``"fp16"``.
    device : torch.device
        Where the network runs.
    spec : ModelSpec, optional
        The network's spec; ``"auto"`` only picks a precision listed in ``spec.precisions``, and an
        explicit precision the spec does not list is refused. None: any precision.

    Returns
    -------
    str
        ``"auto"`` → ``"bf16"`` on CUDA with bf16 support and on CPUs with native bf16
        (:func:`cpu_has_native_bf16`), when the spec allows it; ``"fp32"`` otherwise.

    Raises
    ------
    SciSRError
        An unknown name, fp16 on a CPU (no CPU computes it faster than fp32, and autocast has few fp16
        CPU kernels), bf16 on MPS, or a precision the model's spec does not list.
    """
    if precision not in PRECISION_CHOICES:
        raise SciSRError(f"precision {precision!r} is not one of {', '.join(map(repr, PRECISION_CHOICES))}")
    allowed = spec.precisions if spec is not None else tuple(AUTOCAST_DTYPES)
    if precision == "auto":
        if device.type == "cuda":
            fast = torch.cuda.is_bf16_supported()
        else:
            fast = device.type == "cpu" and cpu_has_native_bf16()
        return "bf16" if fast and "bf16" in allowed else "fp32"
    if precision == "fp16" and device.type == "cpu":
        raise SciSRError("precision 'fp16' is not available on the CPU; use 'bf16' or 'fp32'")
    if precision == "bf16" and device.type == "mps":
        raise SciSRError("precision 'bf16' is not available on MPS; use 'fp16' or 'fp32'")
    if precision not in allowed:
        raise SciSRError(f"the model supports precisions {allowed}, not {precision!r}")
    return precision


def autocast_forward(model: nn.Module, device_type: str,
                     dtype: torch.dtype | None) -> Callable[[torch.Tensor], torch.Tensor]:
    """``x ↦ model(x)`` in mixed precision, with the last layer and the model's forward hooks in float32.

    Parameters
    ----------
    model : torch.nn.Module
        The network; a :class:`~sciSR.models.base.PostUpsamplingModel` that keeps the skeleton's
        ``forward`` gets its ``head``, ``body`` and ``upsample`` under autocast and its ``tail`` (the
        output convolution, a few percent of the work) and forward hooks (e.g. the exact flux
        projection of :func:`sciSR.models.flux_projection.attach`) in float32, so the output is never
        rounded to 8 mantissa bits. Any other network runs whole under autocast.
    device_type : str
        ``"cpu"``, ``"cuda"`` or ``"mps"``.
    dtype : torch.dtype or None
        ``torch.bfloat16`` or ``torch.float16``; None returns ``model`` itself (full precision).

    Returns
    -------
    callable
        ``(N, C, *S)`` → ``(N, C_out, *S·s)`` float32.
    """
    if dtype is None:
        return model
    from sciSR.models.base import PostUpsamplingModel

    split = (isinstance(model, PostUpsamplingModel) and type(model).forward is PostUpsamplingModel.forward
             and "forward" not in model.__dict__ and not model._forward_pre_hooks
             and not model._forward_hooks_with_kwargs)

    def forward(x: torch.Tensor) -> torch.Tensor:
        if not split:
            with torch.autocast(device_type, dtype=dtype):
                return model(x).float()
        with torch.autocast(device_type, dtype=dtype):
            head = model.head(x)
            features = model.upsample(head + model.body(head))
        with torch.autocast(device_type, enabled=False):  # also when a caller's autocast is active
            out = model.tail(features.float())
        # Calling the parts bypasses nn.Module.__call__ of the model: its hooks run here, in float32.
        for hook in model._forward_hooks.values():
            result = hook(model, (x,), out)
            out = out if result is None else result
        return out

    return forward
