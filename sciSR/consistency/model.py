"""The typed forward model ``A`` of an acquisition and its application through :mod:`sciSR.degrade`."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.fft

from sciSR.blocks import bin_array
from sciSR.degrade.ct import ct_downsample
from sciSR.degrade.mri import PROFILES, WINDOWS, kspace_downsample, thick_slice
from sciSR.errors import SciSRError
from sciSR.geometry import normalize_scale

KINDS = ("kspace", "slice_profile", "ct", "flux")
"""Values of :attr:`ForwardModel.kind`."""

SOURCES = ("header", "estimated", "card", "default")
"""Values of :attr:`ForwardModel.source`: where the operator's parameters came from."""

# The ct_downsample default: its Gaussian FWHM in HR voxels when nothing says otherwise.
CT_FWHM = 1.0


@dataclass(frozen=True)
class ForwardModel:
    """How an acquisition turned the (unknown) high-resolution image into the low-resolution input.

    Attributes
    ----------
    kind : str
        ``"kspace"``, ``"slice_profile"``, ``"ct"`` or ``"flux"`` (see the module docstring).
    factors : tuple of int
        Factor per spatial axis (1: the axis is not degraded), e.g. ``(2, 2)`` or ``(1, 1, 4)``.
    window : str or None
        ``"kspace"`` only: None (sharp truncation) or ``"hamming"``; ``"none"`` is accepted for None.
    noise_sigma : float or None
        Noise σ of the LR image in image units (``"kspace"``, ``"ct"``, ``"slice_profile"``; ``"flux"``
        ignores it). 0: noise-free, the projection is exact (divides by the transfer function or the
        singular values of ``A``); > 0: a Wiener-weighted projection; None: unknown, estimated from the LR
        image by :func:`sciSR.consistency.estimate_noise_sigma` when projecting.
    profile : str
        ``"slice_profile"`` only: ``"gaussian"`` or ``"boxcar"``.
    fwhm : tuple of float or None
        Per spatial axis, in HR voxels. ``"slice_profile"``: the slice thickness (Gaussian FWHM or
        boxcar width; default the factor, i.e. no gap); ``"ct"``: the extra Gaussian blur FWHM before
        the block mean (default 1.0). Ignored (None) for the other kinds. A scalar applies to all axes.
    flux : str
        ``"flux"`` only: ``"conserve"`` (blocks sum to the input) or ``"mean"`` (blocks average to it).
    source : str
        Where the parameters came from: ``"header"``, ``"estimated"`` (the image's own spectrum),
        ``"card"`` (the model card's training degradation) or ``"default"`` (the domain default).
    acquired : tuple of float or None
        ``"kspace"`` only: per spatial axis, the share of the low-resolution grid's k-space lines that were
        measured (0 < share ≤ 1; 1 or None: all). A scanner that zero-fills k-space before reconstruction
        (DICOM AcquisitionMatrix smaller than Rows/Columns) leaves the outer lines empty: ``A`` then keeps
        the central ``share`` of the reduction's lines and zeros the rest, and the projection corrects only
        the measured ones.
    slice_profile : dict or None
        ``"slice_profile"`` from a header or an estimate: the
        :meth:`~sciSR.consistency.slice_profile.SliceProfile.to_dict` (thickness, spacing and gap in mm,
        fit residual) that ``fwhm`` was computed from, for provenance. Not compared or hashed.

    Raises
    ------
    SciSRError
        On construction, for a value outside the ranges above.
    """

    kind: str
    factors: tuple[int, ...]
    window: str | None = None
    noise_sigma: float | None = 0.0
    profile: str = "gaussian"
    fwhm: tuple[float, ...] | None = None
    flux: str = "mean"
    source: str = "default"
    acquired: tuple[float, ...] | None = None
    slice_profile: dict[str, Any] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise SciSRError(f"forward model kind must be one of {KINDS}, got {self.kind!r}")
        if self.source not in SOURCES:
            raise SciSRError(f"forward model source must be one of {SOURCES}, got {self.source!r}")
        if np.isscalar(self.factors):
            raise SciSRError(f"forward model factors need one value per spatial axis, got {self.factors!r}")
        # Frozen: normalised values go in through object.__setattr__.
        object.__setattr__(self, "factors", normalize_scale(self.factors, len(self.factors)))
        window = None if self.window == "none" else self.window
        if window not in WINDOWS:
            raise SciSRError(f"k-space window must be one of {WINDOWS}, got {self.window!r}")
        object.__setattr__(self, "window", window)
        if self.noise_sigma is not None:
            if not np.isfinite(self.noise_sigma) or self.noise_sigma < 0:
                raise SciSRError(f"noise_sigma must be ≥ 0 or None, got {self.noise_sigma!r}")
            object.__setattr__(self, "noise_sigma", float(self.noise_sigma))
        if self.profile not in PROFILES:
            raise SciSRError(f"slice profile must be one of {PROFILES}, got {self.profile!r}")
        if self.flux not in ("conserve", "mean"):
            raise SciSRError(f"flux must be 'conserve' or 'mean', got {self.flux!r}")
        object.__setattr__(self, "fwhm", self._widths())
        object.__setattr__(self, "acquired", self._acquired())

    def _acquired(self) -> tuple[float, ...] | None:
        """The measured share of lines per axis, None when every line was (or for kinds other than k-space)."""
        if self.acquired is None:
            return None
        shares = tuple(float(a) for a in self.acquired)
        if self.kind != "kspace" or len(shares) != len(self.factors):
            raise SciSRError(f"acquired needs kind 'kspace' and one share per spatial axis, got {self.acquired!r}")
        if not all(0.0 < a <= 1.0 for a in shares):
            raise SciSRError(f"acquired shares must be in (0, 1], got {shares}")
        return None if all(a == 1.0 for a in shares) else shares

    def _widths(self) -> tuple[float, ...] | None:
        """The per-axis widths the kind uses, defaults filled in; None for kinds without one."""
        if self.kind not in ("slice_profile", "ct"):
            return None
        n = len(self.factors)
        if self.fwhm is None:
            widths = tuple(float(s) for s in self.factors) if self.kind == "slice_profile" else (CT_FWHM,) * n
        else:
            widths = (float(self.fwhm),) * n if np.isscalar(self.fwhm) else tuple(float(w) for w in self.fwhm)
        if len(widths) != n:
            raise SciSRError(f"fwhm needs one value per spatial axis ({n}), got {len(widths)}")
        if self.kind == "slice_profile" and any(w <= 0 for s, w in zip(self.factors, widths, strict=True) if s > 1):
            raise SciSRError(f"slice thickness must be positive, got {widths}")
        if any(w < 0 for w in widths):
            raise SciSRError(f"fwhm must be ≥ 0, got {widths}")
        return widths

    @property
    def axes(self) -> tuple[int, ...]:
        """The spatial axes the operator degrades (factor > 1)."""
        return tuple(a for a, s in enumerate(self.factors) if s > 1)

    def to_dict(self) -> dict[str, Any]:
        """Every field as plain JSON data (tuples as lists), for provenance."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


def acquired_lines(shape: Sequence[int], acquired: Sequence[float]) -> np.ndarray:
    """bool, broadcastable over ``shape``'s leading axes in FFT order: the lines within each axis' share.

    Along an axis of ``n`` lines with share ``a``, the signed frequencies ``|k| ≤ ⌊a·n/2⌋`` were measured
    (both ends kept alike, so a real image stays real).
    """
    inside = np.ones((1,) * len(shape), dtype=bool)
    for axis, share in enumerate(acquired):
        if share >= 1.0:
            continue
        n = int(shape[axis])
        k = np.abs(np.rint(np.fft.fftfreq(n) * n))
        axis_shape = [1] * len(shape)
        axis_shape[axis] = n
        inside = inside & (k <= math.floor(share * n / 2)).reshape(axis_shape)
    return inside


def zero_filled(lr: np.ndarray, acquired: Sequence[float]) -> np.ndarray:
    """``lr`` with its k-space lines beyond each axis' ``acquired`` share set to zero (float64, real)."""
    axes = [a for a, share in enumerate(acquired) if share < 1.0]
    if not axes:
        return np.asarray(lr, dtype=np.float64)
    spectrum = scipy.fft.fftn(np.asarray(lr, dtype=np.float64), axes=axes)
    spectrum *= acquired_lines(lr.shape, acquired)
    return scipy.fft.ifftn(spectrum, axes=axes).real


def degrade(hr: np.ndarray, op: ForwardModel) -> np.ndarray:
    """Apply the forward model ``A`` (noise-free) by calling the :mod:`sciSR.degrade` function it names.

    Parameters
    ----------
    hr : numpy.ndarray
        ``(*spatial, ...)`` high-resolution values; each spatial size a multiple of its factor.
    op : ForwardModel
        The operator.

    Returns
    -------
    numpy.ndarray
        float64 ``(*spatial / factors, ...)``: the values the degrade function returns (float32 for
        all but ``"flux"`` ``"conserve"``), widened.
    """
    if op.kind == "kspace":
        lr = kspace_downsample(hr, op.factors, op.window)
        if op.acquired is not None:
            lr = zero_filled(lr, op.acquired)
    elif op.kind == "slice_profile":
        lr = thick_slice(hr, op.factors, op.profile, gap=[s - w for s, w in zip(op.factors, op.fwhm, strict=True)])
    elif op.kind == "ct":
        lr = ct_downsample(hr, op.factors, op.fwhm)
    else:
        lr = bin_array(np.asarray(hr), op.factors, "sum" if op.flux == "conserve" else "mean")
    return np.asarray(lr, dtype=np.float64)
