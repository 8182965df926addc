"""Data consistency: the acquisition's forward model ``A`` and the projection that makes ``A(x) = y``.

An upscaled estimate ``x`` of a low-resolution input ``y`` is *consistent* when degrading it again
with the acquisition's forward model gives the input back. :func:`project` moves an estimate (cubic,
zero-filled, a network's output) the least distance that makes it so; :func:`forward_model_for` says
which ``A`` an image was acquired with; :func:`degrade` applies ``A`` exactly as :mod:`sciSR.degrade`
does (it calls those functions, so the two never drift apart).

Forward models (``LR`` voxel ``n`` centred on ``HR`` position ``s·n + (s − 1)/2``, docs/architecture.md §3):

``"kspace"``
    MRI in-plane: :func:`sciSR.degrade.mri.kspace_downsample` (central lines, optional Hamming window,
    half-voxel phase ramp). A magnitude image does not hold the scanner's k-space, so consistency is
    with the DFT of the LR image itself.
``"slice_profile"``
    MRI through-plane: :func:`sciSR.degrade.mri.thick_slice` (slice-profile blur, then decimation).
``"ct"``
    :func:`sciSR.degrade.ct.ct_downsample` (Gaussian reconstruction blur, then block mean).
``"flux"``
    Sky: block sums (``"conserve"``) or means (``"mean"``), the projection of :mod:`sciSR.flux`.

Modules: :mod:`~sciSR.consistency.model` (:class:`ForwardModel`, :func:`degrade`),
:mod:`~sciSR.consistency.kspace` and :mod:`~sciSR.consistency.blur` (the projections per forward model; the
flux one is :func:`sciSR.flux.project_blocks`), :mod:`~sciSR.consistency.noise` (the input's noise level, which
weights the k-space and blur projections), :mod:`~sciSR.consistency.acquisition` (which operator an
image was acquired with, and the baseline to beat), :mod:`~sciSR.consistency.slice_profile` (the slice
thickness from the header, or estimated from the image's spectra).

Arrays are ``(*spatial, ...)``: the first ``len(factors)`` axes are spatial, trailing axes (channels)
are carried along. Every projection works on the whole array in float64 (memory: a few copies of the
high-resolution array; the k-space one holds its complex128 spectrum, 16 bytes per output voxel).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from sciSR.consistency.acquisition import forward_model_for, strongest_baseline, through_plane
from sciSR.consistency.blur import project_blur
from sciSR.consistency.kspace import (
    estimate_window,
    project_kspace,
    window_beyond,
    window_from_reference,
)
from sciSR.consistency.model import KINDS, SOURCES, ForwardModel, acquired_lines, degrade, zero_filled
from sciSR.consistency.noise import estimate_noise_sigma, match_noise, recorrupted_pair, without_rician_floor
from sciSR.consistency.slice_profile import (
    SliceProfile,
    estimate_slice_profile,
    recorded_slice_profile,
    slice_profile_for,
)
from sciSR.errors import SciSRError
from sciSR.flux import project_blocks

__all__ = [
    "KINDS",
    "SOURCES",
    "ForwardModel",
    "SliceProfile",
    "acquired_lines",
    "degrade",
    "estimate_noise_sigma",
    "estimate_slice_profile",
    "estimate_window",
    "forward_model_for",
    "match_noise",
    "project",
    "recorded_slice_profile",
    "recorrupted_pair",
    "slice_profile_for",
    "strongest_baseline",
    "through_plane",
    "window_beyond",
    "window_from_reference",
    "without_rician_floor",
    "zero_filled",
]


def project(hr: np.ndarray, lr: np.ndarray, op: ForwardModel, *, mask: np.ndarray | None = None) -> np.ndarray:
    """Data-consistency projection: the nearest ``x'`` to ``hr`` with ``degrade(x', op) == lr``.

    ``x' = x + A⁺ (y − A x)`` with ``A⁺`` the pseudo-inverse (for ``"kspace"``, ``"ct"`` and ``"slice_profile"``
    with noise, the Wiener-weighted version). On denormalised values (HU, image units, flux), never on
    network-normalised ones.

    Parameters
    ----------
    hr : numpy.ndarray
        ``(*spatial·factors, ...)`` real estimate, e.g. a cubic or network upscale of ``lr``.
    lr : numpy.ndarray
        ``(*spatial, ...)`` the low-resolution input (same trailing axes).
    op : ForwardModel
        The acquisition's operator; ``noise_sigma`` None is estimated once from ``lr``
        (:func:`estimate_noise_sigma`).
    mask : numpy.ndarray, optional
        ``(*spatial)`` bool, True where ``lr`` is invalid (e.g. the NaN mask of a FITS image): the
        residual there counts as zero, so those samples pull nothing (for ``"flux"`` their blocks are
        left exactly as they are, as in :func:`sciSR.flux.enforce_flux`).

    Returns
    -------
    numpy.ndarray
        float64, the shape of ``hr``. Without mask, and with ``noise_sigma == 0`` (or kind ``"flux"``),
        ``degrade(result, op)`` equals ``lr`` to float32 rounding. With noise the k-space correction is
        weighted per coefficient ``conj(T)·P / (|T|²·P + M·σ²)`` (``T`` the transfer function incl.
        window, ``P = |X|²`` the power of the estimate's coefficient as pilot, ``M`` the LR voxel count):
        a Hamming edge weight of 0.08 is not inverted where noise dominates, so noise is not amplified;
        a windowed non-negative (magnitude) ``lr`` is matched without its Rician noise floor
        (:func:`~sciSR.consistency.noise.without_rician_floor`).
        The blur kinds weight the same way in the singular basis of ``A``
        (:func:`~sciSR.consistency.blur.project_blur`).

    Raises
    ------
    SciSRError
        Shapes that do not match ``op.factors``.
    """
    x = np.asarray(hr, dtype=np.float64)
    y = np.asarray(lr, dtype=np.float64)
    k = len(op.factors)
    if (y.ndim < k or x.shape[k:] != y.shape[k:]
            or x.shape[:k] != tuple(n * s for n, s in zip(y.shape[:k], op.factors, strict=True))):
        raise SciSRError(f"HR shape {x.shape} is not LR shape {y.shape} times the factors {op.factors}")
    valid = None
    if mask is not None:
        keep = ~np.asarray(mask, dtype=bool)
        valid = keep.reshape(keep.shape + (1,) * (y.ndim - k)).astype(np.float64)
        # A masked sample may be NaN; it must not leak into the (zero-weighted) residual.
        y = np.where(valid > 0, y, 0.0)
    if op.noise_sigma is None and op.kind != "flux":
        # One estimate, from the input, for whichever weighted projection runs.
        op = dataclasses.replace(op, noise_sigma=estimate_noise_sigma(y, k))
    if op.kind == "kspace":
        return project_kspace(x, y, op, valid)
    if op.kind == "flux":
        # project_blocks (the computation of enforce_flux) wants the trailing axes in front.
        lead = tuple(range(k, x.ndim))
        front = tuple(range(len(lead)))
        out = project_blocks(np.moveaxis(x, lead, front), np.moveaxis(y, lead, front), op.factors, op.flux,
                             None if valid is None else np.moveaxis(valid, lead, front))
        return np.moveaxis(out, front, lead)
    return project_blur(x, y, op, valid)
