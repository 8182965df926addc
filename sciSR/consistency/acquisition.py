"""Which forward model an image was acquired with (header, spectrum, model card, domain default)."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from sciSR.consistency.model import CT_FWHM, ForwardModel
from sciSR.consistency.slice_profile import resampled_since_read, slice_profile_for
from sciSR.flux import flux_mode_for_units
from sciSR.geometry import normalize_scale
from sciSR.image import SciImage

# Model-card degradation "type" -> forward-model kind (sciSR/weights/*.json, training recipes).
HEADER_WINDOWS = {"NONE": None, "HAMMING": "hamming", "TUKEY": "tukey"}
"""DICOM KSpaceFiltering values with an exact k-space window here (others, e.g. HANNING or FERMI, fall back
to the card: a near miss would be imposed exactly by the projection)."""

REFORMAT_SPACING_RATIO = 2.5
"""How much coarser than the other axis a 2D slice's one scaled axis must be to be taken as a slice axis.
Acquired MR slices have rectangular pixels up to about 2:1 (phase resolution reduced to half), which stay
in k-space; reformats across thick slices are coarser (0.5–1 mm in-plane against 3–6 mm slices)."""

_CARD_KINDS = {"kspace": "kspace", "thick_slice": "slice_profile", "ct": "ct", "telescope": "flux", "bin": "flux"}


def through_plane(image: SciImage, factors: Sequence[int] | int) -> bool:
    """Whether an upscale runs across thick slices rather than in k-space.

    True for a volume scaled along one axis only, its coarsest (ties included): the slice axis of a
    thick-slice stack. A 2D slice qualifies when that axis is also at least
    :data:`REFORMAT_SPACING_RATIO` times coarser than the other: a slice reformatted across such a stack
    (a sagittal reformat of 5 mm axial slices), whereas an acquired slice with square pixels upscaled
    along one axis (its phase lines, say) stays in k-space. The forward model is then a slice profile,
    the baseline cubic.

    Parameters
    ----------
    image : SciImage
        A 2D slice or a volume.
    factors : int or sequence of int
        Factor per spatial axis.
    """
    factors = normalize_scale(factors, image.spatial_ndim)
    scaled = [a for a, s in enumerate(factors) if s > 1]
    if len(scaled) != 1 or image.spacing[scaled[0]] < max(image.spacing):
        return False
    return image.spatial_ndim == 3 or image.spacing[scaled[0]] >= REFORMAT_SPACING_RATIO * min(image.spacing)


def _middle(value: Any) -> float | None:
    """The middle of a card's training range ``[lo, hi]`` (or the value itself)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, Sequence) and len(value) == 2 and all(isinstance(v, int | float) for v in value):
        return (float(value[0]) + float(value[1])) / 2.0
    return None


def forward_model_for(
    image: SciImage, factors: Sequence[int] | int, *, card_degradation: Mapping[str, Any] | None = None
) -> ForwardModel | None:
    """The operator an image was acquired with, for a given upscaling.

    Parameters are taken, in this order, from the header where it says, from the image's own spectrum,
    from the model card's training degradation (``card["training"]["degradation"]``), else the domain
    default; :attr:`ForwardModel.source` records which.

    - **sky**: ``"flux"``, ``"conserve"`` or ``"mean"`` from ``BUNIT`` (:func:`sciSR.flux.flux_mode_for_units`;
      source ``"header"``), ``"mean"`` (``"default"``) when the unit does not say.
    - **mri, through-plane** (:func:`through_plane`: one scaled axis, the coarsest; a volume or a 2D
      reformat): ``"slice_profile"``, Gaussian with FWHM = the slice thickness, which may be narrower than
      the spacing (a gap) or wider (overlap):
      the thickness the reader recorded from DICOM ``SliceThickness`` or a BIDS sidecar (``"header"``),
      else the estimate from the image's own spectra when it fits (``"estimated"``,
      :func:`~sciSR.consistency.slice_profile.slice_profile_for`), else the card's ``gap`` and ``profile``
      (``"card"``), else FWHM = factor (``"default"``). ``slice_profile`` records the thickness in mm.
      ``noise_sigma`` None, as for CT (mri-thick-x4 on held-out MR_small.dcm, FWHM 4, 5 % noise: +0.36 →
      +1.28 dB over cubic; noise-free cells within 0.02 dB).
    - **mri, in-plane**: ``"kspace"``. DICOM has no standard field for the reconstruction filter, and a
      guess from the spectrum (:func:`~sciSR.consistency.kspace.estimate_window`) mistakes a sharp
      image's own fall-off for a window, so the window comes from the enhanced-MR attribute
      KSpaceFiltering when the reader found it (``meta["kspace_filtering"]``: NONE, HAMMING or TUKEY;
      ``"header"``; ignored once a scaled axis was resampled, ``meta["grid_factors"]`` ≠ 1), else from
      the card (``window``, or ``window_prob > 0.5`` → Hamming), else there is none here; the upscale
      then tests the input against the network's result for a Hamming window before it projects
      (:func:`sciSR.pipeline.projection_operator`, source ``"estimated"``). ``noise_sigma``
      None: estimated from the image when projecting, so a noise-free image gets the exact projection and a noisy
      one the Wiener-weighted one instead of having its noise re-imposed (held-out MR_small/emri_small with
      Hamming + 2 % Rician noise: +0.07/+0.05 dB over the exact projection, sharp images within ±0.03 dB;
      benchmarks/quality.py). ``acquired`` is the reader's ``meta["acquired"]`` (the share of k-space lines
      the scanner measured before zero-filling, from DICOM AcquisitionMatrix), on the scaled axes.
    - **ct**: ``"ct"``, FWHM from the middle of the card's ``fwhm`` range, else 1.0. The DICOM
      ``ConvolutionKernel`` is a vendor name with no portable width, so it is not read. ``noise_sigma``
      None (estimated when projecting): CT always carries quantum noise, which the exact correction would
      deconvolve (held-out CT_small.dcm, ct-x2, FWHM 1.75: 10 HU noise +0.77 → +2.11 dB over cubic, 20 HU
      −2.47 → +1.06; the noise-free copy +3.93 → +3.69, its own noise then being weighted too).
    - **generic**: None (no consistency: the acquisition is unknown).

    Parameters
    ----------
    image : SciImage
        The low-resolution input.
    factors : int or sequence of int
        Factor per spatial axis.
    card_degradation : mapping, optional
        A card's training degradation, e.g. ``{"type": "kspace", "window_prob": 0.5, ...}``; ignored
        when its ``type`` is not the kind chosen for the domain.

    Returns
    -------
    ForwardModel or None
        None for generic images and factors that are all 1.
    """
    factors = normalize_scale(factors, image.spatial_ndim)
    if image.domain == "generic" or all(s == 1 for s in factors):
        return None
    card = dict(card_degradation or {})
    if image.domain == "sky":
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            mode = flux_mode_for_units(image.meta.get("units"))
        return ForwardModel("flux", factors, flux=mode, source="default" if caught else "header")
    if image.domain == "ct":
        width = _middle(card.get("fwhm")) if _CARD_KINDS.get(card.get("type")) == "ct" else None
        return ForwardModel("ct", factors, fwhm=CT_FWHM if width is None else width, noise_sigma=None,
                            source="default" if width is None else "card")
    if through_plane(image, factors):
        axis = factors.index(max(factors))
        s = factors[axis]
        widths = [1.0] * len(factors)
        measured = slice_profile_for(image, axis)
        if measured is not None:
            widths[axis] = measured.width_in_voxels(s)
            return ForwardModel("slice_profile", factors, fwhm=tuple(widths), slice_profile=measured.to_dict(),
                                noise_sigma=None, source="estimated" if measured.source == "estimated" else "header")
        if _CARD_KINDS.get(card.get("type")) == "slice_profile":
            gap = _middle(card.get("gap", 0.0)) or 0.0
            widths[axis] = s - gap
            return ForwardModel("slice_profile", factors, profile=card.get("profile", "gaussian"),
                                fwhm=tuple(widths), noise_sigma=None, source="card")
        widths[axis] = float(s)
        return ForwardModel("slice_profile", factors, fwhm=tuple(widths), noise_sigma=None)
    # The spectral window estimate is not used: a sharply truncated image's own spectral fall-off reads as
    # a Hamming window on real slices (emri_small: −9 dB after the wrong projection, benchmarks/quality.py).
    # The header's window describes the scanner's grid; once an in-plane axis was resampled (a re-upscale of
    # a result) the image's spectrum is no longer windowed by it.
    scaled = [a for a, s in enumerate(factors) if s > 1]
    filtering = None if resampled_since_read(image, scaled) else image.meta.get("kspace_filtering")
    if filtering in HEADER_WINDOWS:
        window, source = HEADER_WINDOWS[filtering], "header"
    elif _CARD_KINDS.get(card.get("type")) == "kspace":
        window = card.get("window") or ("hamming" if float(card.get("window_prob", 0.0)) > 0.5 else None)
        source = "card"
    else:
        window, source = None, "default"
    window = None if window == "none" else window
    # Lines the scanner zero-filled (DICOM AcquisitionMatrix, the reader's meta["acquired"]) are no data.
    shares = None if resampled_since_read(image, scaled) else image.meta.get("acquired")
    acquired = None if shares is None else tuple(
        float(shares[a]) if a < len(shares) and factors[a] > 1 else 1.0 for a in range(len(factors)))
    return ForwardModel("kspace", factors, window=window, noise_sigma=None, source=source, acquired=acquired)


def strongest_baseline(domain: str, factors: Sequence[int] | int, *, through_plane: bool) -> str:
    """The interpolation a model must beat: what a careful user would run without one.

    Parameters
    ----------
    domain : str
        ``"mri"``, ``"ct"``, ``"sky"`` or ``"generic"``.
    factors : int or sequence of int
        Factor per spatial axis (all 1: nothing to upscale, ``"cubic"``).
    through_plane : bool
        The upscaling is across thick slices (no k-space along that axis).

    Returns
    -------
    str
        ``"zerofill"`` for MRI in-plane (k-space zero padding: the scanner's own interpolation, exact
        for the k-space forward model); ``"cubic"`` otherwise. For sky images the cubic result is meant
        to be followed by the flux projection (:func:`sciSR.consistency.project` with kind ``"flux"``), as the upscale
        of sky images does.
    """
    scaled = any(s > 1 for s in ((factors,) if np.isscalar(factors) else factors))
    return "zerofill" if domain == "mri" and scaled and not through_plane else "cubic"
