"""Tiled, seam-free, memory-bounded prediction of a super-resolution network.

The image is cut into windows (a tile core plus ``overlap`` context voxels on each side, clipped at the
image border), several windows go through the network per forward pass, and the outputs are blended
with weights that are exactly 0 within the receptive-field radius ``r`` of every window edge inside the
image. Output voxels closer than ``r`` input voxels to such an edge are the only ones the network
computes differently in a window than in the whole image (their inputs include the window's padding),
so for a network whose every operation is local the blend equals the whole-image prediction up to float
rounding. Between ``r`` and the neighbour's zero zone the weights cross-fade with a cosine ramp, which
hides the residual seams of networks that are not exactly local (global pooling).

The weights of a window are a product of one 1-D profile per axis and the windows form a full grid, so
the sum of the weights is a product of per-axis sums: each profile is normalised on its own and no
weight image is ever allocated. The output (or the caller's ``numpy.memmap``, whose written pages are
handed back to the OS as the prediction goes, see :mod:`sciSR.paging`) stays on the CPU; only
windows travel to the device.
"""

from __future__ import annotations

import itertools
import math
import os
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from sciSR.errors import SciSRError
from sciSR.geometry import normalize_scale, upscaled_shape
from sciSR.infer.precision import AUTOCAST_DTYPES, autocast_forward
from sciSR.infer.receptive_field import ReceptiveField, receptive_field_radius
from sciSR.models.spec import spec_of
from sciSR.paging import RELEASE_EVERY_BYTES, available_ram, is_disk_backed, release_pages, row_chunks
from sciSR.progress import cancel_checker

TileLike = int | Sequence[int]

CPU_MEMORY_FRACTION = 0.5
"""Share of the available RAM an automatic tile may use on the CPU (the rest: output, other work)."""

CUDA_MEMORY_FRACTION = 0.8
"""Share of the free GPU memory an automatic tile may use."""

MAX_AUTO_TILE_VOXELS = 2**24
"""Largest automatic batch of windows, in input voxels (e.g. 4096², 256³): beyond it throughput no longer
grows, while progress and cancellation (checked between batches) would come too seldom."""

_CPU_ACTIVATION_SAFETY = 4  # live activations, skips, conv workspaces beyond the largest module in+out
_CUDA_PROBE = {2: 96, 3: 32}  # probe side (input voxels) for measuring GPU memory per voxel
_CPU_PROBE = 16
_BYTES_CACHE_ATTR = "_scisr_bytes_per_voxel"
_ENGINE_CACHE_ATTR = "_scisr_engine"

COMPILE_PAYS_AFTER_S = {"cpu": 120.0, "cuda": 20.0}
"""Eager seconds of remaining work above which ``torch.compile`` is tried (per device type; never on
others). A compile costs ~5-60 s on a CPU (a few seconds with a warm on-disk cache) and gains 0-35 %, so
only long jobs can repay it; a one-shot slice never reaches the bar and so never waits for a compile."""

COMPILE_KEEP_RATIO = 0.95
"""The compiled network is kept only when a window takes at most this fraction of its eager time."""


def compile_cache_dir() -> str:
    """Folder of the on-disk ``torch.compile`` cache: ``$TORCHINDUCTOR_CACHE_DIR`` when set, else
    ``$XDG_CACHE_HOME/scisr/inductor`` (``~/.cache/scisr/inductor``); never inside a source tree."""
    if os.environ.get("TORCHINDUCTOR_CACHE_DIR"):
        return os.environ["TORCHINDUCTOR_CACHE_DIR"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "scisr", "inductor")


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` → CUDA if available, else MPS if available, else CPU; anything else as given."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        chosen = torch.device(device)
    except RuntimeError as err:
        raise SciSRError(f"device {device!r} is not one of 'auto', 'cpu', 'cuda', 'cuda:N', 'mps'") from err
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise SciSRError(f"device {device!r}: CUDA is not available on this machine (use cpu or auto)")
    if chosen.type == "mps" and not torch.backends.mps.is_available():
        raise SciSRError(f"device {device!r}: MPS is not available on this machine (use cpu or auto)")
    return chosen


def autocast_dtype(device: torch.device, amp: bool | None) -> torch.dtype | None:
    """Mixed-precision dtype for ``torch.autocast``, or None for full precision.

    ``amp=None`` means bf16 (fp16 where bf16 is unsupported) on CUDA and full precision elsewhere;
    ``amp=True`` also enables bf16 on the CPU and fp16 on MPS; ``amp=False`` disables it.
    """
    if amp is False or (amp is None and device.type != "cuda"):
        return None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float16 if device.type == "mps" else torch.bfloat16


@dataclass(frozen=True)
class _AxisPlan:
    """Windows along one spatial axis and their normalised output weight profiles."""

    starts: tuple[int, ...]  # first input voxel of each window
    sizes: tuple[int, ...]  # input voxels of each window, context included
    weights: tuple[np.ndarray, ...]  # per window: the non-zero part of its profile ÷ the sum, float32
    crops: tuple[slice, ...]  # per window: where that part lies in the window's output voxels


def _ramp(distance: np.ndarray, radius: int, width: float) -> np.ndarray:
    """0 within ``radius`` of an edge, then sin² up to 1 over ``width`` (all in input voxels)."""
    if width <= 0:
        return (distance > radius).astype(np.float64)
    t = np.clip((distance - radius) / width, 0.0, 1.0)
    return np.sin(0.5 * np.pi * t) ** 2


def _window_starts(n: int, tile: int, window: int, multiple: int) -> list[int]:
    """Starts of windows of ``window`` voxels every ``tile`` voxels covering ``n``.

    The last window is shifted inward to end at the image border (as MONAI's ``dense_patch_slices``
    does), but only as far as keeps its start a multiple of ``multiple``: a network that pads to a
    multiple internally (windowed attention) then sees the same window grid as in the whole image, and
    the last window, ending at the border, is padded exactly as the whole image is.
    """
    if window >= n:
        return [0]
    regular = -(-(n - window) // tile)
    return [k * tile for k in range(regular)] + [-(-(n - window) // multiple) * multiple]


def _plan_axis(n: int, tile: int, overlap: int, radius: int, scale: int, multiple: int) -> _AxisPlan:
    """Windows of ``tile + 2·overlap`` input voxels every ``tile`` and their weight profiles.

    The weight of an output voxel at distance ``d`` (input voxels, from its centre) to an interior window
    edge is 0 for ``d < r`` — exactly the output voxels ``j' < r·s`` whose inputs reach past the edge —
    and rises as sin² over ``2·overlap − 2r``, so two regularly spaced neighbours sum to 1.
    """
    starts = _window_starts(n, tile, tile + 2 * overlap, multiple)
    sizes = [min(tile + 2 * overlap, n - start) for start in starts]
    width = 2 * overlap - 2 * radius
    profiles = []
    total = np.zeros(n * scale)
    for start, size in zip(starts, sizes, strict=True):
        d_left = (np.arange(size * scale) + 0.5) / scale
        w = np.ones(size * scale)
        if start > 0:
            w *= _ramp(d_left, radius, width)
        if start + size < n:
            w *= _ramp(size - d_left, radius, width)
        profiles.append(w)
        total[start * scale:(start + size) * scale] += w
    weights, crops = [], []
    for start, size, w in zip(starts, sizes, profiles, strict=True):
        nonzero = np.flatnonzero(w)
        crop = slice(int(nonzero[0]), int(nonzero[-1]) + 1)
        weights.append((w / total[start * scale:(start + size) * scale])[crop].astype(np.float32))
        crops.append(crop)
    return _AxisPlan(tuple(starts), tuple(sizes), tuple(weights), tuple(crops))


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def _per_axis(value: TileLike, ndim: int, name: str, minimum: int) -> tuple[int, ...]:
    values = (value,) * ndim if isinstance(value, int | np.integer) else tuple(value)
    if len(values) != ndim or any(isinstance(v, bool) or int(v) != v or int(v) < minimum for v in values):
        raise SciSRError(f"{name} {value!r} must be an int ≥ {minimum} or one per spatial axis ({ndim})")
    return tuple(int(v) for v in values)


def _available_memory(device: torch.device) -> int:
    """Bytes the process may still allocate on ``device`` (free + cached by torch on CUDA)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device))
    return available_ram()


def _bytes_per_voxel(model: nn.Module, device: torch.device, dtype: torch.dtype, amp: torch.dtype | None,
                     in_channels: int, scale: tuple[int, ...]) -> float:
    """Peak memory of a forward pass per input voxel, in bytes (measured on CUDA, estimated elsewhere).

    CUDA: the peak allocation of a probe forward. CPU/MPS: the largest input + output of any module in a
    probe forward (a dense concatenation shows up as the input of the conv that fuses it) times a safety
    factor for what else is alive at that moment. Cached on the model.
    """
    key = (str(device), dtype, amp, in_channels, scale)
    cache = model.__dict__.setdefault(_BYTES_CACHE_ATTR, {})
    if key in cache:
        return cache[key]
    dims = len(scale)
    side = _CUDA_PROBE[dims] if device.type == "cuda" else _CPU_PROBE
    x = torch.rand((1, in_channels, *(side,) * dims)).to(device, dtype)
    voxels = side**dims
    with torch.inference_mode(), torch.autocast(device.type, dtype=amp, enabled=amp is not None):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            base = torch.cuda.memory_allocated(device)
            torch.cuda.reset_peak_memory_stats(device)
            model(x)
            torch.cuda.synchronize(device)
            per_voxel = (torch.cuda.max_memory_allocated(device) - base) / voxels
        else:
            largest = [0]

            def record(module: nn.Module, inputs: tuple, output: object) -> None:
                tensors = [t for t in (*inputs, output) if isinstance(t, torch.Tensor)]
                largest[0] = max(largest[0], sum(t.numel() * t.element_size() for t in tensors))

            leaves = [m for m in model.modules() if not list(m.children())]
            handles = [m.register_forward_hook(record) for m in leaves]
            try:
                model(x)
            finally:
                for h in handles:
                    h.remove()
            per_voxel = _CPU_ACTIVATION_SAFETY * largest[0] / voxels
    cache[key] = float(per_voxel)
    return cache[key]


def _auto_tile(shape: tuple[int, ...], overlap: tuple[int, ...], radius: tuple[int, ...],
               budget_voxels: float, batch_size: int) -> tuple[int, ...]:
    """Largest tile whose windows fit ``budget_voxels`` (input voxels per forward), per axis.

    The whole image when it fits in one forward; otherwise ``batch_size`` windows share the budget,
    axes shorter than the equal share keep their full length and the others split the rest evenly.
    """
    budget = min(budget_voxels, MAX_AUTO_TILE_VOXELS)
    if math.prod(shape) <= budget:
        return shape
    budget /= batch_size
    window = list(shape)
    free = list(range(len(shape)))
    while free:
        fixed = math.prod(window[a] for a in range(len(shape)) if a not in free)
        side = (budget / fixed) ** (1 / len(free))
        short = [a for a in free if shape[a] <= side]
        if not short:
            for a in free:
                window[a] = int(side)
            break
        free = [a for a in free if a not in short]
    return tuple(n if w >= n else max(2 * r + 1, w - 2 * m)
                 for n, w, m, r in zip(shape, window, overlap, radius, strict=True))


class _WindowOutOfMemoryError(Exception):
    """A single window ran out of device memory."""


class _Network:
    """How windows go through the model: channels-last layout, precision, eager or compiled.

    Channels-last (``channels_last_3d`` for volumes) lets oneDNN on the CPU and cuDNN on the GPU run
    their fastest convolutions without reordering every layer's input. With ``compile_model=None`` the
    network runs eagerly while the eager seconds per input voxel are measured; when the remaining work
    of the job (this call and ``expected_calls - 1`` more like it) would take longer than
    :data:`COMPILE_PAYS_AFTER_S`, ``torch.compile`` is tried, timed once against eager, and kept only
    when faster (:data:`COMPILE_KEEP_RATIO`). Any error of the compiled path falls back to eager for good.
    The compiled function and the verdict live on the model per (device, precision, dimensionality), so
    the later calls of a job (the slices of a volume) and later jobs of the process reuse them.
    """

    def __init__(self, model: nn.Module, device: torch.device, amp: torch.dtype | None, dims: int,
                 compile_model: bool | None, expected_calls: int) -> None:
        self.device = device
        self.memory_format = torch.channels_last if dims == 2 else torch.channels_last_3d
        self.eager = autocast_forward(model, device.type, amp)
        self.compile_model, self.expected_calls = compile_model, max(1, int(expected_calls))
        cache = model.__dict__.setdefault(_ENGINE_CACHE_ATTR, {})
        # verdict: None (undecided), "eager" or "compiled"; eager_rate: best eager seconds per input voxel.
        self.state = cache.setdefault((str(device), amp, dims), {"compiled": None, "verdict": None,
                                                                  "eager_rate": math.inf, "eager_calls": 0})
        never = compile_model is False or (compile_model is None and device.type not in COMPILE_PAYS_AFTER_S)
        self.verdict = "eager" if never else self.state["verdict"]
        self.call_voxels = 0.0  # input voxels of all windows of the current call (set by the runner)

    def __call__(self, x: torch.Tensor, remaining_voxels: float) -> torch.Tensor:
        """The model's float32 output for ``x``; ``remaining_voxels``: input voxels still to come after ``x``."""
        x = x.contiguous(memory_format=self.memory_format)
        if self.verdict == "eager":
            return self.eager(x)
        if self.verdict == "compiled" or self.compile_model:
            return self._compiled(x, timed=False)
        if self.state["compiled"] is not None:  # compiled and warmed up: one timed comparison decides
            return self._compiled(x, timed=True)
        start = self._clock()
        y = self.eager(x)
        rate = (self._clock() - start) / (x.numel() / x.shape[1])
        # The first eager call includes one-off primitive creation: decide on a later, steady one.
        self.state["eager_calls"] += 1
        if self.state["eager_calls"] > 1:
            self.state["eager_rate"] = min(self.state["eager_rate"], rate)
            total = remaining_voxels + (self.expected_calls - 1) * self.call_voxels
            if self.state["eager_rate"] * total > COMPILE_PAYS_AFTER_S[self.device.type]:
                self._start_compile()
        return y

    def _clock(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    def _start_compile(self) -> None:
        # Inductor reads the folder when it first writes; a user's setting wins.
        os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", compile_cache_dir())
        try:
            # Static shapes: a tiling has a handful of window shapes, and static kernels are the fast ones.
            self.state["compiled"] = torch.compile(self.eager, dynamic=False)
        except Exception:  # compile unsupported here (platform, Python version): stay eager
            self._decide("eager")

    def _compiled(self, x: torch.Tensor, *, timed: bool) -> torch.Tensor:
        if self.state["compiled"] is None:
            self._start_compile()
            if self.state["compiled"] is None:
                return self.eager(x)
        # Static shapes compile once per window shape: only a shape compiled before gives a fair timing.
        shapes = self.state.setdefault("shapes", set())
        seen = tuple(x.shape) in shapes
        start = self._clock()
        try:
            y = self.state["compiled"](x)
        except torch.cuda.OutOfMemoryError:
            raise
        except Exception:  # a backend or tracing failure: the eager network gives the same numbers
            self._decide("eager")
            return self.eager(x)
        if timed and seen:
            rate = (self._clock() - start) / (x.numel() / x.shape[1])
            self._decide("compiled" if rate <= COMPILE_KEEP_RATIO * self.state["eager_rate"] else "eager")
        shapes.add(tuple(x.shape))
        return y

    def _decide(self, verdict: str) -> None:
        self.state["verdict"] = self.verdict = verdict
        if verdict == "eager":
            self.state["compiled"] = None


def predict_tiled(
    model: nn.Module,
    array: np.ndarray,
    scale: int | Sequence[int],
    *,
    tile: TileLike | None = None,
    overlap: TileLike | None = None,
    batch_size: int = 4,
    device: str | torch.device = "auto",
    amp: bool | None = None,
    progress: Callable[[float], None] | None = None,
    cancel: threading.Event | None = None,
    out: np.ndarray | None = None,
    transform: Callable[[np.ndarray], np.ndarray] | None = None,
    precision: str = "fp32",
    compile_model: bool | None = None,
    expected_calls: int = 1,
) -> np.ndarray:
    """Apply a super-resolution network to an image of any size, tile by tile, without seams.

    Parameters
    ----------
    model : torch.nn.Module
        Maps ``(N, C, *spatial)`` to ``(N, C_out, *spatial·scale)``; run in eval mode (its training
        flag is restored afterwards) and moved to ``device`` (where it stays).
    array : numpy.ndarray
        ``(C, *spatial)`` with 2 or 3 spatial axes, float32 (other dtypes are converted per window);
        ``C`` = ``model.in_channels`` when the model declares it. May be a ``numpy.memmap``.
    scale : int or sequence of int
        Integer factor per spatial axis, e.g. ``(2, 3)`` or ``(1, 1, 4)``.
    tile : int or sequence of int, optional
        Tile size in INPUT voxels per spatial axis, overlap not included. None: the largest that fits
        in memory (:func:`_available_memory` × a safety fraction ÷ a measured or estimated bytes per
        voxel; the whole image when it fits). Along an axis that is tiled it must be at least
        ``2r + 1`` (``r``: the receptive-field radius).
    overlap : int or sequence of int, optional
        Context in input voxels added on each side of a tile (neighbouring windows share ``2·overlap``).
        At least ``r`` (exactness); None: ``2r``, which leaves a cosine cross-fade ``2r`` wide.
    batch_size : int
        Windows per forward pass (halved on out-of-memory).
    device : str or torch.device
        ``"auto"`` (CUDA, else MPS, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"``.
    amp : bool, optional
        Older switch, kept for callers that use it; when given it overrides ``precision``: True = bf16
        (fp16 on MPS and on GPUs without bf16), False = fp32. None: ``precision`` decides.
    progress : callable, optional
        ``progress(fraction_done)`` after every forward pass; non-decreasing, ends at 1.0.
    cancel : threading.Event, optional
        Checked before every forward pass; when set, :class:`sciSR.errors.Cancelled` is raised.
    out : numpy.ndarray, optional
        ``(C_out, *spatial·scale)`` float array to write into (e.g. a ``numpy.memmap`` for outputs
        larger than RAM); it is overwritten, also where the prediction is later cancelled.
    transform : callable, optional
        Applied to each window's float32 input before the network (e.g. intensity normalisation), so
        that no transformed copy of a large image is ever made. Must act voxel by voxel.
    precision : str
        ``"fp32"``, ``"bf16"`` or ``"fp16"``, already resolved (see
        :func:`sciSR.infer.precision.resolve_precision`, which also turns ``"auto"`` into one of these).
        bf16/fp16 run the network under ``torch.autocast`` (the last layer of a post-upsampling network
        in float32, see :func:`sciSR.infer.precision.autocast_forward`); input transform, blending and
        output stay float32, so the result differs from fp32 by the rounding of the dtype, not by seams.
    compile_model : bool, optional
        ``torch.compile`` the network: None = when the job is long enough to repay the compile and the
        compiled network measures faster (see :class:`_Network`); True = compile now (unless compiling
        failed or measured slower before for this model); False = never. A failing compile falls back to
        eager silently. Its on-disk cache is :func:`compile_cache_dir`.
    expected_calls : int
        Calls like this one the caller will make for the same job, this one included (the slices of a
        volume); the compile decision weighs the whole job.

    Returns
    -------
    numpy.ndarray
        ``(C_out, *spatial·scale)`` float32 on the CPU (``out`` itself when given).

    Raises
    ------
    SciSRError
        Bad shapes or arguments, a tile below the receptive field, a model that does not produce
        ``scale``, or out-of-memory even at the smallest tile (``2r + 1``, batch 1).
    sciSR.errors.Cancelled
        When ``cancel`` is set.

    Notes
    -----
    For networks whose every operation is local (EDSR, RDN, RRDB, ...) the result equals the
    whole-image prediction up to float rounding (≤ 1e-5 on a unit-range image in full precision). A
    network with global pooling (channel attention, ``spec.global_pooling``) cannot be tiled exactly:
    a warning is issued when it is, and its windows blend over ``2·overlap`` with ``r`` set to the cap
    of :func:`sciSR.infer.receptive_field.receptive_field_radius`. A network that pads its input to a
    multiple internally (windowed attention, ``spec.window_multiple``) gets tiles, overlaps and window
    starts rounded up to that multiple, so its attention windows fall where they do in the whole image
    (SwinIR then tiles exactly too). On CUDA out-of-memory the batch is halved, then the tile per axis
    (not below ``2r + 1``), and the prediction restarts.
    """
    array = np.asarray(array)
    dims = array.ndim - 1
    if dims not in (2, 3):
        raise SciSRError(f"expected an array (C, *spatial) with 2 or 3 spatial axes, got shape {array.shape}")
    scale = normalize_scale(scale, dims)
    in_channels = int(array.shape[0])
    declared = getattr(model, "in_channels", None)
    if declared is not None and int(declared) != in_channels:
        raise SciSRError(f"the model takes {int(declared)} channel(s); the array has {in_channels} "
                         f"(shape {array.shape}, channels first)")
    if batch_size < 1:
        raise SciSRError(f"batch_size must be ≥ 1, got {batch_size}")
    shape = tuple(int(n) for n in array.shape[1:])
    out_shape = upscaled_shape(shape, scale)
    if out is not None and tuple(out.shape[1:]) != out_shape:
        raise SciSRError(f"out has shape {tuple(out.shape)}; expected (C_out, *{out_shape})")

    dev = resolve_device(device)
    if precision not in AUTOCAST_DTYPES:
        raise SciSRError(f"precision {precision!r} is not one of {', '.join(map(repr, AUTOCAST_DTYPES))}")
    amp_dtype = AUTOCAST_DTYPES[precision] if amp is None else autocast_dtype(dev, amp)
    was_training = model.training
    model.eval()
    param = next((p for p in model.parameters() if p.is_floating_point()), None)
    if param is not None and param.device != dev:
        model.to(dev)
    # The weights stay channels-last like they stay on the device (values and state dict are unchanged).
    model.to(memory_format=torch.channels_last if dims == 2 else torch.channels_last_3d)
    dtype = param.dtype if param is not None else torch.float32
    try:
        rf = receptive_field_radius(model, dims, scale, in_channels)
        window = spec_of(model, spatial_dims=dims, scale=scale, in_channels=in_channels).window_multiple
        multiple = _per_axis(window, dims, "spec.window_multiple", 1)
        overlap_ = tuple(2 * r for r in rf.radius) if overlap is None else _per_axis(overlap, dims, "overlap", 0)
        if any(m < r for m, r in zip(overlap_, rf.radius, strict=True)):
            raise SciSRError(f"overlap {overlap_} is smaller than the model's receptive-field radius "
                             f"{rf.radius} (input voxels): tiles would leave seams")
        overlap_ = tuple(_round_up(m, w) for m, w in zip(overlap_, multiple, strict=True))
        minimum = tuple(2 * r + 1 for r in rf.radius)
        if tile is None:
            budget = _available_memory(dev) * (CUDA_MEMORY_FRACTION if dev.type == "cuda" else CPU_MEMORY_FRACTION)
            per_voxel = _bytes_per_voxel(model, dev, dtype, amp_dtype, in_channels, scale)
            tile_ = _auto_tile(shape, overlap_, rf.radius, budget / per_voxel, batch_size)
        else:
            tile_ = _per_axis(tile, dims, "tile", 1)
            if any(t < n and t < lowest for t, n, lowest in zip(tile_, shape, minimum, strict=True)):
                raise SciSRError(
                    f"tile {tile_} is smaller than the model's receptive field (radius {rf.radius} input "
                    f"voxels, so at least {minimum} along tiled axes)")
        # Tile starts on multiples of the network's internal padding multiple (see _window_starts).
        tile_ = tuple(min(_round_up(t, w), n) for t, w, n in zip(tile_, multiple, shape, strict=True))
        network = _Network(model, dev, amp_dtype, dims, compile_model, expected_calls)
        runner = _Runner(network, array, scale, rf, overlap_, multiple, dev, dtype, progress, cancel, out, transform)
        while True:
            try:
                return runner.run(tile_, batch_size)
            except _WindowOutOfMemoryError:
                smaller = tuple(min(t, _round_up(max(lowest, t // 2), w))
                                for t, lowest, w in zip(tile_, minimum, multiple, strict=True))
                if smaller == tile_:
                    raise SciSRError(
                        f"out of memory even with tile {tile_} and batch 1 on {dev} (the receptive field "
                        f"needs ≥ {minimum}); use a device with more memory or precision='bf16'") from None
                tile_, batch_size = smaller, 1
    finally:
        model.train(was_training)


class _Runner:
    """One pass over all windows of a tiling; ``run`` can be repeated with a smaller tile after OOM."""

    def __init__(self, network: _Network, array: np.ndarray, scale: tuple[int, ...], rf: ReceptiveField,
                 overlap: tuple[int, ...], multiple: tuple[int, ...], device: torch.device, dtype: torch.dtype,
                 progress: Callable[[float], None] | None, cancel: threading.Event | None, out: np.ndarray | None,
                 transform: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
        self.network, self.array, self.scale, self.rf = network, array, scale, rf
        self.transform = transform
        self.overlap, self.multiple = overlap, multiple
        self.device, self.dtype = device, dtype
        self.progress, self.check_cancel, self.out = progress, cancel_checker(cancel), out
        self.reported = 0.0  # progress never goes back, even when an OOM restarts the pass
        # A memory-mapped output gives its written pages back as it goes, so the resident set stays
        # bounded by the windows in flight however large the result is.
        self.disk = out is not None and is_disk_backed(out)
        self.dirty = 0

    def run(self, tile: tuple[int, ...], batch_size: int) -> np.ndarray:
        axes = [_plan_axis(*args) for args in zip(self.array.shape[1:], tile, self.overlap, self.rf.radius,
                                                    self.scale, self.multiple, strict=True)]
        # Only windows of one shape can share a forward pass; a stable sort keeps raster order within.
        windows = sorted(itertools.product(*(range(len(a.starts)) for a in axes)),
                         key=lambda index: _window_shape(axes, index))
        if len(windows) > 1 and self.rf.global_pooling:
            warnings.warn(
                f"the model has global pooling: tiled prediction (tile {tile}) only approximates the "
                f"whole-image one; pass a tile covering the image for an exact result", stacklevel=3)
        if self.disk:
            for lo, hi in row_chunks(self.out.shape[1], self.out[:, :1].nbytes):
                self.out[:, lo:hi] = 0
                release_pages(self.out)
        elif self.out is not None:
            self.out[...] = 0
        voxels = [math.prod(_window_shape(axes, index)) for index in windows]
        self.network.call_voxels = float(sum(voxels))
        done = 0
        while done < len(windows):
            self.check_cancel()
            first = _window_shape(axes, windows[done])
            batch = [index for index in windows[done:done + batch_size] if _window_shape(axes, index) == first]
            try:
                pred = self._forward(axes, batch, float(sum(voxels[done + len(batch):])))
            except torch.cuda.OutOfMemoryError:
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                if len(batch) == 1:
                    raise _WindowOutOfMemoryError() from None
                batch_size = len(batch) // 2
                continue
            for k, index in enumerate(batch):
                self._accumulate(axes, index, pred[k])
            done += len(batch)
            if self.disk:
                self.dirty += sum(p.nbytes for p in pred)
                if self.dirty >= RELEASE_EVERY_BYTES or done == len(windows):
                    release_pages(self.out)
                    self.dirty = 0
            self._report(done / len(windows))
        return self.out

    def _forward(self, axes: list[_AxisPlan], batch: list[tuple[int, ...]], remaining: float) -> list[np.ndarray]:
        """Weighted, cropped predictions of a batch of windows of one shape, on the CPU (``remaining``: input
        voxels of the windows after this batch)."""
        tiles = [np.asarray(self.array[(slice(None), *(slice(a.starts[i], a.starts[i] + a.sizes[i])
                                                      for a, i in zip(axes, index, strict=True)))],
                            dtype=np.float32) for index in batch]
        if self.transform is not None:
            tiles = [self.transform(t) for t in tiles]
        x = torch.from_numpy(np.stack(tiles)).to(self.device, self.dtype)
        expected = upscaled_shape(x.shape[2:], self.scale)
        with torch.inference_mode():
            y = self.network(x, remaining)
            if y.ndim != x.ndim or tuple(y.shape[2:]) != expected:
                raise SciSRError(f"the model maps windows {tuple(x.shape)} to {tuple(y.shape)}, not "
                                 f"(N, C_out, *{expected}): it does not produce scale {self.scale}")
            results = []
            for k, index in enumerate(batch):
                part = y[(k, slice(None), *(a.crops[i] for a, i in zip(axes, index, strict=True)))].float()
                # Separable weights: one broadcast 1-D profile per axis, nothing window-sized to transfer.
                for axis, (a, i) in enumerate(zip(axes, index, strict=True)):
                    view = [1] * part.ndim
                    view[axis + 1] = -1
                    part = part * torch.from_numpy(a.weights[i]).to(part.device).view(view)
                results.append(part.cpu().numpy())
        return results

    def _accumulate(self, axes: list[_AxisPlan], index: tuple[int, ...], part: np.ndarray) -> None:
        if self.out is None:
            self.out = np.zeros((part.shape[0], *upscaled_shape(self.array.shape[1:], self.scale)), np.float32)
        elif part.shape[0] != self.out.shape[0]:
            raise SciSRError(f"out has {self.out.shape[0]} channels; the model gives {part.shape[0]}")
        target = tuple(slice(a.starts[i] * s + a.crops[i].start, a.starts[i] * s + a.crops[i].stop)
                       for a, i, s in zip(axes, index, self.scale, strict=True))
        self.out[(slice(None), *target)] += part

    def _report(self, fraction: float) -> None:
        if self.progress is not None and fraction >= self.reported:
            self.reported = fraction
            self.progress(fraction)


def _window_shape(axes: list[_AxisPlan], index: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(a.sizes[i] for a, i in zip(axes, index, strict=True))
