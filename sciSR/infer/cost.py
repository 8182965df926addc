"""Rough run-time estimates, so that a job that would run for days is refused before any work.

An estimate is output voxels × work per output voxel ÷ throughput (docs/architecture.md §5):

- **Interpolation**: :data:`INTERPOLATION_SECONDS_PER_VOXEL` per output voxel (cubic on a volume measured
  at about 100 ns per voxel on one core). The largest result the size guard accepts (64 GiB, 16 Gi voxels)
  then takes under half an hour, so an interpolation is never refused for time.
- **Networks**: the floating-point operations of one forward pass per output voxel, counted once per
  network by :class:`torch.utils.flop_counter.FlopCounterMode` on a tiny probe input (convolutions,
  transposed convolutions, matrix products and attention; element-wise operations are left out), divided
  by the device's throughput: :data:`CPU_FLOPS_PER_THREAD` × torch's thread count on the CPU, else
  :data:`ACCELERATOR_FLOPS`.

The throughputs are at the high end of what the hardware reaches and overheads (tile overlap, the
normalisation, writing) are left out, so the estimate errs short: a job refused for time would take at least
about that long. It is a guard against mistakes (a whole-body volume through a large 3D network on a
laptop), not a prediction.
"""

from __future__ import annotations

import contextlib
import math
import weakref
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn

    from sciSR.models.spec import ModelSpec

INTERPOLATION_SECONDS_PER_VOXEL = 1e-7
"""Seconds per output voxel of an interpolation (the cubic B-spline on a volume, one core)."""

CPU_FLOPS_PER_THREAD = 1e11
"""Floating-point operations per second one CPU thread reaches on large convolutions (AVX-512 near its peak;
about 0.85e11 was measured for EDSR on an AMD EPYC core)."""

ACCELERATOR_FLOPS = {"cuda": 1e14, "mps": 1e13}
"""Floating-point operations per second of a network on a GPU (a data-centre GPU with TF32 convolutions; an
Apple GPU), by ``torch.device`` type."""

PROBE_SIDE = {2: 8, 3: 4}
"""Side (input voxels) of the probe input whose forward pass is counted, by the network's spatial dims."""

# FLOPs per output voxel, per network: counted once, so a batch of many files probes once.
_FLOPS: weakref.WeakKeyDictionary[nn.Module, float] = weakref.WeakKeyDictionary()


def network_flops_per_voxel(net: nn.Module, spec: ModelSpec) -> float:
    """Floating-point operations of one forward pass of ``net``, per output voxel (all output channels).

    Counted by :class:`torch.utils.flop_counter.FlopCounterMode` on a zero probe of
    :data:`PROBE_SIDE` voxels per axis (rounded up to the network's ``window_multiple``), on the device and
    dtype of the network's weights, and cached per network. For networks that take stacks or a reference,
    and any network the probe fails on, ``2 · parameters / scale factor`` stands in (each weight applied
    once per input voxel; exact for a post-upsampling network made of convolutions, short for others).

    Parameters
    ----------
    net : torch.nn.Module
        The network, in eval mode.
    spec : ModelSpec
        Its contract (spatial dims, input channels, window multiple, inputs).

    Returns
    -------
    float
        FLOPs (2 per multiply-add) per output voxel.
    """
    cached = _FLOPS.get(net)
    if cached is not None:
        return cached
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    flops = None
    weights = next(net.parameters(), None)
    if spec.inputs == "image" and weights is not None:
        side = math.ceil(PROBE_SIDE[spec.spatial_dims] / spec.window_multiple) * spec.window_multiple
        probe = torch.zeros((1, spec.in_channels, *[side] * spec.spatial_dims), dtype=weights.dtype,
                            device=weights.device)
        # A network that cannot run the probe gets the fallback below: an estimate must not stop the job.
        with contextlib.suppress(Exception), torch.no_grad(), FlopCounterMode(display=False) as counter:
            out = net(probe)
            flops = counter.get_total_flops() / math.prod(out.shape[2:])
    if flops is None:
        # Each weight applied once per input voxel, i.e. once per scale factor's worth of output voxels.
        flops = 2.0 * sum(p.numel() for p in net.parameters()) / math.prod(spec.scale)
    _FLOPS[net] = float(flops)
    return float(flops)


def flops_per_second(device: str = "auto") -> float:
    """The throughput assumed for a network on ``device`` (``"auto"`` resolved as inference resolves it)."""
    import torch

    from sciSR.infer.tiled import resolve_device

    kind = resolve_device(device).type
    return ACCELERATOR_FLOPS.get(kind, CPU_FLOPS_PER_THREAD * torch.get_num_threads())


def interpolation_seconds(voxels: int) -> float:
    """Rough wall-clock seconds of an interpolation producing ``voxels`` output voxels (all channels)."""
    return voxels * INTERPOLATION_SECONDS_PER_VOXEL


def network_seconds(voxels: int, net: nn.Module, spec: ModelSpec, device: str = "auto") -> float:
    """Rough wall-clock seconds of ``net`` computing ``voxels`` output voxels on ``device``.

    Parameters
    ----------
    voxels : int
        Output voxels, each channel pass counted (a 1-channel network on a 3-channel image computes every
        spatial voxel three times).
    net : torch.nn.Module
        The network.
    spec : ModelSpec
        Its contract.
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``.

    Returns
    -------
    float
        Seconds; errs short (see the module's description).
    """
    return voxels * network_flops_per_voxel(net, spec) / flops_per_second(device)
