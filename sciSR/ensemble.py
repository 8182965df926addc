"""Symmetry ensembles of a network upscale: an ensemble mean and a per-voxel spread (uncertainty).

A network applied to a flipped (or, along axes with equal factors, transposed) copy of the input gives a
second opinion on the same voxels; where the opinions disagree the result is less certain. Each member is
finished and projected onto the input (flux, consistency) before it is compared, so the spread measures
what the acquisition leaves undetermined, not what the projection would remove anyway. The projections are
affine constraints, so the ensemble mean satisfies them too (docs/architecture.md §9). A 2D network through
the plane has two families of planes: its members fall into one group per family (the symmetries that swap
the thin axes run on the other), and the result fuses the two groups as a single upscale fuses the two
families (:mod:`sciSR.infer.orientations`), then is projected again.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
from collections.abc import Iterator

import numpy as np

from sciSR.consistency import ForwardModel
from sciSR.errors import SciSRError
from sciSR.image import SciImage
from sciSR.infer.orientations import describe_fusion, fuse_orientations, other_orientation
from sciSR.pipeline import (
    UpscaleRequest,
    detail_share,
    finish,
    keep_detail,
    network_provenance,
    prepare,
    project_in_place,
    projection_operator,
    regrid,
    run,
    self_check,
    to_grid,
    use_consistency,
)
from sciSR.progress import ProgressLike, cancel_checker, progress_callback

# (permutation of the spatial axes, flipped axes), applied in that order.
Symmetry = tuple[tuple[int, ...], tuple[int, ...]]


def symmetries(factors: tuple[int, ...]) -> list[Symmetry]:
    """The flips and equal-factor axis swaps that keep the scale vector, identity first.

    Parameters
    ----------
    factors : tuple of int
        Factor per spatial axis.

    Returns
    -------
    list of Symmetry
        ``2^n`` flips times the permutations inside each group of equal factors: 8 for ``(2, 2)``, 4 for
        ``(2, 1)``, 16 for ``(1, 1, 4)``, 48 for ``(2, 2, 2)``.

    Notes
    -----
    A 2D through-plane network on a volume runs on the planes that hold the thick axis and the first other
    axis (:func:`sciSR.infer.predict.plan_axes`). Swapping the two thin axes therefore makes it run on the
    other family of planes: for ``(1, 1, 4)`` half of the 16 members see the volume in each of the two
    orientations of through-plane SR.
    """
    ndim = len(factors)
    groups: dict[int, list[int]] = {}
    for axis, f in enumerate(factors):
        groups.setdefault(int(f), []).append(axis)
    perms = []
    for choice in itertools.product(*(itertools.permutations(axes) for axes in groups.values())):
        perm = list(range(ndim))
        for axes, permuted in zip(groups.values(), choice, strict=True):
            for a, b in zip(axes, permuted, strict=True):
                perm[a] = b
        perms.append(tuple(perm))
    flips = [tuple(a for a in range(ndim) if bits >> a & 1) for bits in range(2**ndim)]
    return [(p, f) for p in sorted(perms, key=lambda p: p != tuple(range(ndim))) for f in flips]


def _apply(x: np.ndarray, sym: Symmetry) -> np.ndarray:
    perm, flips = sym
    y = np.transpose(x, (*perm, *range(len(perm), x.ndim)))
    return np.ascontiguousarray(np.flip(y, flips) if flips else y)


def _undo(y: np.ndarray, sym: Symmetry) -> np.ndarray:
    perm, flips = sym
    y = np.flip(y, flips) if flips else y
    return np.ascontiguousarray(np.transpose(y, (*np.argsort(perm), *range(len(perm), y.ndim))))


def _members(request: UpscaleRequest, image: SciImage, values: np.ndarray, mask: np.ndarray | None,
             syms: list[Symmetry], consistent: bool, progress: ProgressLike,
             cancel: threading.Event | None) -> Iterator[tuple[np.ndarray, ForwardModel | None]]:
    """Each member's finished, projected result on the input's orientation (float32, input units), and the
    operator it was projected with (:func:`sciSR.pipeline.projection_operator`, chosen on the first member)."""
    operator = request.operator
    check = cancel_checker(cancel)
    with progress_callback(progress) as report:
        for k, sym in enumerate(syms):
            def member_progress(fraction: float, k: int = k) -> None:
                if report is not None:
                    report((k + fraction) / len(syms))

            array, params = run(request, image, _apply(values, sym), progress=member_progress, cancel=cancel,
                                orientations=1)
            check()
            array = _undo(array, sym)
            finish(array, values, params, request.factors, request.flux, None if consistent else mask)
            if consistent:
                if k == 0:
                    operator = projection_operator(request, values, array)
                operator = project_in_place(array, values, operator, mask)
            yield array, operator


def upscale_ensemble(
    image: SciImage,
    request: UpscaleRequest,
    *,
    ensemble: bool = True,
    progress: ProgressLike = False,
    cancel: threading.Event | None = None,
) -> tuple[SciImage, SciImage]:
    """Run a network over every symmetry of :func:`symmetries`; return the result and its spread.

    Parameters
    ----------
    image : SciImage
        The input.
    request : UpscaleRequest
        Built for ``image`` with a network (not an interpolation) and ``guard=False``.
    ensemble : bool
        Return the ensemble mean (True) or the single pass on the input as it is (False) as the result.
    progress : bool or callable
        ``True`` for a progress bar, or ``f(fraction_done)`` over all members.
    cancel : threading.Event, optional
        Raises :class:`sciSR.Cancelled` when set.

    Returns
    -------
    result : SciImage
        As :func:`sciSR.pipeline.upscale_image` returns; its provenance step records ``ensemble`` (the
        number of members averaged, 1 for a single pass) and ``uncertainty_members``.
    spread : SciImage
        Same grid and units as ``result``: the per-voxel standard deviation over the members (population,
        float32; NaN where the input is masked). Its provenance step says ``"quantity": "ensemble std"``.

    Raises
    ------
    SciSRError
        An interpolation model (it has no second opinion to give) or ``guard=True``.
    """
    if request.model.is_interpolator:
        raise SciSRError(f"uncertainty and ensembles need a network; {request.model.name!r} is an interpolation",
                         image.meta.get("source"))
    if request.guard:
        raise SciSRError("guard cannot be combined with uncertainty or ensemble (the guard may replace the "
                         "network by an interpolation that has no spread)", image.meta.get("source"))
    values, mask = prepare(image)
    checked = self_check(request, image, values, cancel=cancel)
    consistent = use_consistency(request, checked)
    syms = symmetries(request.factors)
    # Off the network's grid (spacing=), masked voxels are blanked after resampling: a NaN would spread.
    blank = mask if request.shape is None else None
    planes = other_orientation(request.model.net.spatial_dims, request.factors, image.spatial_shape)
    identity = tuple(range(image.spatial_ndim))
    # Through the plane, the members whose symmetry swaps the thin axes run on the other family of planes.
    family = [int(planes is not None and perm != identity) for perm, _ in syms]
    mean: np.ndarray | None = None
    m2: np.ndarray | None = None
    # Only what the result needs is kept: each family's first member (single pass) or its running mean.
    group_means = planes is not None and ensemble
    firsts: list[np.ndarray | None] = [None, None]
    family_means: list[np.ndarray | None] = [None, None]
    family_counts = [0, 0]
    members = _members(request, image, values, blank, syms, consistent, progress, cancel)
    projected_with = request.operator
    for n, ((member, operator), group) in enumerate(zip(members, family, strict=True), start=1):
        projected_with = operator
        family_counts[group] += 1
        if family_counts[group] == 1:
            if not ensemble:
                firsts[group] = member
            if group_means:
                family_means[group] = member.astype(np.float64)
        elif group_means:
            family_means[group] += (member - family_means[group]) / family_counts[group]
        if mean is None:
            mean, m2 = member.astype(np.float64), np.zeros(member.shape)
            continue
        # Welford's update: one pass, float64, no stack of members in memory.
        delta = member - mean
        mean += delta / n
        m2 += delta * (member - mean)
    assert mean is not None and m2 is not None
    request = dataclasses.replace(request, operator=projected_with)
    spread = np.sqrt(m2 / len(syms)).astype(np.float32)
    fusion = None
    if planes is None:
        result = mean.astype(np.float32) if ensemble else firsts[0]
    else:
        pair = family_means if ensemble else firsts
        result, weights = fuse_orientations(pair[0], pair[1], planes[0])
        fusion = describe_fusion(weights, request.factors[planes[0]], planes)
        if consistent:  # the fusion filters along the thick axis, which the slice profile constrains
            project_in_place(result, values, projected_with, blank)
    if consistent:
        # Each member blended with zero-filling alike: the mean is blended, the spread scaled.
        share = detail_share(checked)
        keep_detail(result, values, request, share)
        spread *= np.float32(share)
    extra = {**network_provenance(request, consistent, checked),
             "ensemble": len(syms) if ensemble else 1, "uncertainty_members": len(syms)}
    if fusion is not None:
        extra["fusion"] = fusion
    if request.shape is not None:
        # Both maps go onto the voxel size asked for the same way, so the spread stays in the result's units
        # (an interpolated standard deviation can dip below 0 between voxels: clipped).
        result, extra["grid"] = to_grid(result, request.shape, request.flux)
        spread = np.maximum(to_grid(spread, request.shape, request.flux)[0], 0.0)
    out = regrid(image, result, request.factors, request.model.name, flux=request.flux, mask=mask, **extra)
    spread_image = regrid(image, spread, request.factors, request.model.name, flux=request.flux, mask=mask,
                          outside=0.0, quantity="ensemble std", members=len(syms))
    if request.shape is not None and "mask" in out.meta:
        for img in (out, spread_image):
            img.array[img.meta["mask"]] = np.nan  # the mask regrid put on the new grid
    return out, spread_image
