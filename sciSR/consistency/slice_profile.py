"""The through-plane slice profile of a thick-slice volume: from the header, else from the image itself.

A multi-slice acquisition blurs along the slice axis with its slice profile (FWHM = the slice thickness
``t``) and samples at the slice spacing ``Δz`` (centre to centre). ``t < Δz`` leaves a gap between
slices (a profile narrower than the spacing), ``t = Δz`` is contiguous, ``t > Δz`` overlaps. The readers
record what the header says (docs/architecture.md §4.1, §4.2): ``meta["slice_thickness"]`` in the
spacing's units (mm), ``meta["slice_thickness_source"]`` (``"dicom"``, ``"bids"``) and
``meta["slice_axis"]``; a caller may set the first and the last. :func:`recorded_slice_profile` reads
them back.

When nothing says, :func:`estimate_slice_profile` fits the profile to the image, in the spirit of
ESPRESO (Han et al., MICCAI 2021): blurred with the right profile and sampled at the slice spacing, an
in-plane axis looks like the through-plane axis. Here "looks like" is measured by power spectra
rather than a patch discriminator. For an in-plane axis ``a`` and the slice axis ``z`` the volume is
degraded along ``a`` with a candidate profile of width ``w`` (the result is sampled at ``Δz`` on both
axes); the mean 1D power spectrum along ``a`` is then compared with the one along ``z``. With ``w``
equal to the true profile the ``a``–``z`` planes are statistically symmetric (an isotropic object,
degraded the same way along both axes), so the two spectra agree at every frequency, aliasing
included; a narrower ``w`` leaves more high-frequency power along ``a``, a wider one less. The fit
minimises, over ``w``, the variance across frequencies of the log ratio of the two spectra (a ratio that
is the same at every frequency is the object's own broadband anisotropy, not a blur). Each in-plane
axis is fitted alone first; one that fits much worse than the other sees a different object (structures
elongated along it) and is left out of the joint fit.

Assumptions, which bias the estimate where they fail: the object is statistically isotropic (no
structures elongated along one axis, as the long bones of a limb), the in-plane resolution is finer
than the slice spacing (ratio ≥ 1.5), and noise is small next to the signal at the compared
frequencies (white noise is smoothed by the candidate blur along ``a`` but not along ``z``, which pulls
the estimate towards narrower profiles: a few per cent at a noise σ of 5 % of the image's standard
deviation). The estimate is the blur that turns the in-plane resolution into the through-plane one, the
operator data consistency needs: with coarse in-plane voxels it is narrower than the nominal thickness
(by the voxel's own width, in quadrature for a Gaussian), and profiles narrower than about two in-plane
voxels cannot be told apart.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.fft
from scipy.optimize import minimize_scalar

from sciSR.degrade.kernels import boxcar_profile, gaussian_profile, mirror_index
from sciSR.degrade.mri import PROFILES
from sciSR.errors import SciSRError
from sciSR.image import SciImage

PROFILE_SOURCES = ("dicom", "bids", "given", "estimated")
"""Values of :attr:`SliceProfile.source`."""

# Widths searched, in units of the slice spacing: from a large gap (15 % of the spacing) to a strong overlap.
_SEARCH = (0.15, 2.5)
# Voxels per plane pair the spectra are computed on (a regular stride over the third axis keeps it bounded).
_MAX_VOXELS = 1 << 20
# Fewer samples per line than this give too few frequencies to fit a width.
_MIN_SAMPLES = 12
# The in-plane spacing must be this much finer than the slice spacing for an in-plane axis to be a reference.
_MIN_RATIO = 1.5
# An in-plane axis whose own best mismatch (dB²) exceeds the best axis' by this factor is left out.
_CONSISTENT = 2.0

RELIABLE_RESIDUAL_DB = 1.0
"""Estimates that fit worse than this (dB) are not used by :func:`slice_profile_for`. An isotropic volume
degraded by a known Gaussian or boxcar profile fits to 0.25–0.4 dB, with or without noise; the knee
phantom fits to 0.7–0.85 dB (errors ≤ 12 %) in sagittal slices and to 1.8–3.1 dB (errors of −67 to −85 %)
in axial slices, across its long bones (``benchmarks/slice_profile.py``)."""


@dataclass(frozen=True)
class SliceProfile:
    """The slice profile across one axis of a volume, in the image's spacing units (mm).

    Attributes
    ----------
    fwhm_mm : float
        Slice thickness: the Gaussian FWHM or the boxcar width, mm (> 0).
    kind : str
        ``"gaussian"`` or ``"boxcar"``.
    source : str
        ``"dicom"`` (SliceThickness), ``"bids"`` (the sidecar JSON's SliceThickness), ``"given"`` (a
        ``meta["slice_thickness"]`` set by the caller) or ``"estimated"`` (:func:`estimate_slice_profile`).
    axis : int
        The spatial axis the profile is across.
    spacing_mm : float
        The slice spacing (centre to centre) along ``axis``, mm.
    residual_db : float or None
        Estimates only: the RMS over frequencies of the dB ratio between the in-plane spectra degraded by
        this profile and the through-plane spectrum, its mean removed (0 for a perfect match; see
        :data:`RELIABLE_RESIDUAL_DB`).
    """

    fwhm_mm: float
    kind: str
    source: str
    axis: int
    spacing_mm: float
    residual_db: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in PROFILES:
            raise SciSRError(f"slice profile must be one of {PROFILES}, got {self.kind!r}")
        if self.source not in PROFILE_SOURCES:
            raise SciSRError(f"slice profile source must be one of {PROFILE_SOURCES}, got {self.source!r}")
        for name in ("fwhm_mm", "spacing_mm"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value > 0):
                raise SciSRError(f"slice profile {name} must be a positive number, got {value!r}")

    @property
    def gap_mm(self) -> float:
        """``spacing − thickness``, mm: > 0 a gap between slices, < 0 an overlap."""
        return self.spacing_mm - self.fwhm_mm

    def width_in_voxels(self, factor: float) -> float:
        """The thickness in voxels of the grid upscaled by ``factor`` along :attr:`axis` (spacing / factor)."""
        return factor * self.fwhm_mm / self.spacing_mm

    def to_dict(self) -> dict[str, Any]:
        """Every field and :attr:`gap_mm` as plain JSON data, for ``meta`` and provenance."""
        return {**dataclasses.asdict(self), "gap_mm": self.gap_mm}


def resampled_since_read(image: SciImage, axes: tuple[int, ...] | list[int]) -> bool:
    """Whether any of ``axes`` was resampled since the reader recorded the header (``meta["grid_factors"]``
    ≠ 1 there): what the header says about the acquisition along those axes no longer describes the grid."""
    grid = image.meta.get("grid_factors") or ()
    return any(float(grid[a]) != 1 for a in axes if a < len(grid))


def recorded_slice_profile(image: SciImage, axis: int, *, kind: str = "gaussian") -> SliceProfile | None:
    """The slice profile across ``axis`` that the image's header gave, if any.

    Parameters
    ----------
    image : SciImage
        A volume read by :func:`sciSR.read` (DICOM, or NIfTI with a BIDS sidecar).
    axis : int
        Spatial axis.
    kind : str
        The shape: headers give the thickness (the FWHM of the profile), not the shape.

    Returns
    -------
    SliceProfile or None
        None when ``meta`` records no thickness, records it across another axis, or when the axis was
        resampled since the header was read (``meta["grid_factors"]`` > 1 there: the header's slices are
        gone). Source ``"given"`` when ``meta["slice_thickness_source"]`` is absent.

    Raises
    ------
    SciSRError
        A recorded thickness that is not a positive number.
    """
    meta = image.meta
    thickness = meta.get("slice_thickness")
    if thickness is None or meta.get("slice_axis") != axis:
        return None
    if resampled_since_read(image, (axis,)):
        return None
    try:
        thickness = float(thickness)
    except (TypeError, ValueError):
        raise SciSRError(f"meta['slice_thickness'] must be a number of mm, got {thickness!r}",
                         meta.get("source")) from None
    return SliceProfile(thickness, kind, meta.get("slice_thickness_source", "given"), axis,
                        float(image.spacing[axis]))


def _sampling_matrix(n: int, ratio: float, width: float, kind: str) -> np.ndarray:
    """``(n, m)`` weights: column ``k`` blurs a line of ``n`` voxels with the profile and samples it at slice ``k``.

    Slice ``k`` is centred on voxel position ``(k + ½)·ratio − ½`` (the outer edges of the first and last
    slice on those of the line, docs/architecture.md §3), ``m = ⌊n / ratio⌋``; ``width`` in voxels; borders
    mirrored and weights normalised as :func:`sciSR.degrade.kernels.downsample_axis` does.
    """
    profile, radius = (gaussian_profile if kind == "gaussian" else boxcar_profile)(width)
    centres = (np.arange(int(n / ratio)) + 0.5) * ratio - 0.5
    taps = np.arange(int(np.floor(-radius)) - 1, int(np.ceil(radius)) + 2)
    nearest = np.rint(centres).astype(np.int64)
    weights = profile(nearest[None, :] + taps[:, None] - centres[None, :])
    weights /= weights.sum(axis=0, keepdims=True)
    matrix = np.zeros((n, len(centres)))
    np.add.at(matrix, (mirror_index(nearest[None, :] + taps[:, None], n), np.arange(len(centres))[None, :]), weights)
    return matrix


def _line_power(x: np.ndarray, axis: int) -> np.ndarray:
    """Mean power spectrum of the lines along ``axis`` (mean removed, Hann taper), frequencies 1 … n/2."""
    n = x.shape[axis]
    shape = [1] * x.ndim
    shape[axis] = n
    taper = np.hanning(n + 2)[1:-1].reshape(shape)
    lines = (x - x.mean(axis=axis, keepdims=True)) * taper
    power = np.abs(scipy.fft.rfft(lines, axis=axis)) ** 2
    return np.moveaxis(power, axis, 0).reshape(power.shape[axis], -1).mean(axis=1)[1 : n // 2 + 1]


@dataclass
class _Pair:
    """One in-plane axis against the slice axis: the volume as ``(in-plane, other, slices)`` and its ratio."""

    volume: np.ndarray
    ratio: float  # slice spacing / in-plane spacing
    pixel: float  # in-plane spacing, mm
    length: int  # samples per compared line (both axes cropped to it)

    def spectra(self, width_mm: float, kind: str) -> tuple[np.ndarray, np.ndarray]:
        """Power spectra along the degraded in-plane axis and along the slice axis, for one profile width."""
        matrix = _sampling_matrix(self.volume.shape[0], self.ratio, width_mm / self.pixel, kind)
        degraded = np.tensordot(matrix, self.volume, axes=(0, 0))
        # The same number of samples along both axes, so the two spectra share their frequencies.
        start = [(degraded.shape[a] - self.length) // 2 if a != 1 else 0 for a in range(3)]
        crop = degraded[start[0] : start[0] + self.length, :, start[2] : start[2] + self.length]
        return _line_power(crop, 0), _line_power(crop, 2)


def _pairs(values: np.ndarray, spacing: tuple[float, ...], axis: int) -> list[_Pair]:
    """Every in-plane axis fine enough to serve as the reference for ``axis``, volume strided to a bounded size."""
    pairs = []
    for a in (b for b in range(3) if b != axis):
        ratio = spacing[axis] / spacing[a]
        other = 3 - a - axis
        length = min(int(values.shape[a] / ratio), values.shape[axis])
        if ratio < _MIN_RATIO or length < _MIN_SAMPLES:
            continue
        volume = np.moveaxis(values, (a, other, axis), (0, 1, 2))
        stride = max(1, int(np.ceil(volume.size / _MAX_VOXELS)))
        pairs.append(_Pair(np.asarray(volume[:, ::stride], dtype=np.float64), ratio, spacing[a], length))
    return pairs


def _fit(pairs: list[_Pair], slice_spacing: float, kind: str) -> tuple[float, float]:
    """``(width mm, mismatch dB²)``: the profile width whose degraded in-plane spectra best match the slices'.

    The mismatch of a pair is the variance over frequencies of the log ratio (dB) of its two spectra: a
    constant ratio is left out because it is the object's own broadband anisotropy (more structure along
    one axis than another at every scale), not a blur, which attenuates the higher frequencies only.
    Pairs are averaged.
    """

    def mismatch(log_width: float) -> float:
        total = 0.0
        for pair in pairs:
            along, across = pair.spectra(slice_spacing * float(np.exp(log_width)), kind)
            tiny = 1e-30 * max(float(across.max()), 1e-300)  # a flat (constant) line has zero power
            total += float(np.var(10 * np.log10((along + tiny) / (across + tiny))))
        return total / len(pairs)

    # A coarse grid first: the mismatch need not be unimodal far from the optimum (boxcar zeros alias).
    grid = np.linspace(np.log(_SEARCH[0]), np.log(_SEARCH[1]), 17)
    best = int(np.argmin([mismatch(g) for g in grid]))
    low, high = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
    fit = minimize_scalar(mismatch, bounds=(low, high), method="bounded", options={"xatol": 1e-3})
    return slice_spacing * float(np.exp(fit.x)), float(fit.fun)


def estimate_slice_profile(img: SciImage, axis: int | None = None, *, kind: str = "gaussian") -> SliceProfile:
    """Estimate the slice profile across the slice axis from the image's own in-plane and through-plane spectra.

    The method and its assumptions are in the module docstring. Cost: three 1D fits of about 30
    evaluations, each a dense resampling of at most 2²⁰ voxels per in-plane axis (a second or two for a
    clinical volume on one core).

    Parameters
    ----------
    img : SciImage
        A 3D volume (a trailing channel axis is allowed; its first channel is used), in-plane spacing at
        least 1.5 times finer than the slice spacing, at least 12 slices, and at least 12 slice spacings
        across an in-plane axis.
    axis : int, optional
        The slice axis; default the axis with the largest spacing.
    kind : str
        The profile shape fitted: ``"gaussian"`` (FWHM) or ``"boxcar"`` (width). The shape itself is not
        estimated: a boxcar profile fitted with a Gaussian gives a FWHM of 0.65–0.8 × the boxcar width
        (0.68 has the same variance).

    Returns
    -------
    SliceProfile
        ``source="estimated"``, ``fwhm_mm`` between 0.15 and 2.5 slice spacings, and the fit's ``residual_db``.

    Raises
    ------
    SciSRError
        Not a 3D volume (or a single plane of one, ``(n, m, 1)``), an axis out of range, an unknown kind, an
        in-plane spacing not finer than the slice spacing, or too few slices or in-plane voxels.
    """
    source = img.meta.get("source")
    if img.spatial_ndim != 3:
        raise SciSRError(f"a slice profile is estimated on a 3D volume; this image has {img.spatial_ndim} "
                         "spatial axes", source)
    if kind not in PROFILES:
        raise SciSRError(f"slice profile must be one of {PROFILES}, got {kind!r}", source)
    spacing = tuple(float(s) for s in img.spacing)
    axis = int(np.argmax(spacing)) if axis is None else axis
    if axis not in range(3):
        raise SciSRError(f"axis must be 0, 1 or 2, got {axis!r}", source)
    values = img.array if img.channel_axis is None else img.array[..., 0]
    if 1 in values.shape:
        # One plane compares one in-plane direction of one slice's anatomy with the slice axis: on a real
        # head slice (s1045.ima.gz, FWHM 4 mm) that read 2.05 mm, and the projection then lost 0.7 dB.
        raise SciSRError(f"cannot estimate the slice profile of a single plane (shape {values.shape}): it "
                         "needs a volume", source)
    values = np.nan_to_num(np.asarray(values, dtype=np.float64))
    pairs = _pairs(values, spacing, axis)
    if not pairs:
        raise SciSRError(
            f"cannot estimate the slice profile across axis {axis}: it needs an in-plane spacing at least "
            f"{_MIN_RATIO}× finer than the slice spacing and {_MIN_SAMPLES} slices and slice spacings across "
            f"(spacing {tuple(round(s, 4) for s in spacing)}, shape {values.shape})", source)

    alone = [_fit([pair], spacing[axis], kind) for pair in pairs]
    best = min(m for _, m in alone)
    kept = [pair for pair, (_, m) in zip(pairs, alone, strict=True) if m <= _CONSISTENT * best]
    width, mismatch = _fit(kept, spacing[axis], kind) if len(kept) > 1 else min(alone, key=lambda f: f[1])
    return SliceProfile(width, kind, "estimated", axis, spacing[axis], residual_db=float(np.sqrt(mismatch)))


def slice_profile_for(image: SciImage, axis: int, *, kind: str = "gaussian") -> SliceProfile | None:
    """The slice profile across ``axis``: the header's thickness, else a reliable estimate from the image.

    Parameters
    ----------
    image : SciImage
        A volume.
    axis : int
        The slice axis.
    kind : str
        ``"gaussian"`` or ``"boxcar"``.

    Returns
    -------
    SliceProfile or None
        :func:`recorded_slice_profile`; else :func:`estimate_slice_profile` when the image allows an
        estimate and it fits to :data:`RELIABLE_RESIDUAL_DB` or better; else None (the caller's default).
    """
    recorded = recorded_slice_profile(image, axis, kind=kind)
    if recorded is not None or image.spatial_ndim != 3:
        return recorded
    try:
        estimate = estimate_slice_profile(image, axis, kind=kind)
    except SciSRError:  # too few slices, or no finer in-plane axis: nothing to estimate from
        return None
    return estimate if estimate.residual_db <= RELIABLE_RESIDUAL_DB else None
