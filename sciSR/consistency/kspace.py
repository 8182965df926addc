"""MRI in-plane k-space: the projection onto the LR image's spectrum, and what the spectrum tells."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
import scipy.fft

from sciSR.consistency.model import ForwardModel, acquired_lines
from sciSR.consistency.noise import estimate_noise_sigma, without_rician_floor
from sciSR.degrade.mri import kspace_truncate, kspace_window

# Window guess from the LR spectrum (noise floor removed): the power of the outer frequencies
# (|f| ≥ 0.4 cycles/voxel) over that of the middle band (0.15 ≤ |f| < 0.25). Measured on k-space ×2
# copies of MR_small.dcm, camera, astronaut and nibabel's anatomical.nii, noise 0–3 % of the maximum:
# Hamming ≤ 0.003 (often negative once the floor is removed), no window ≥ 0.02 (mostly 0.07–0.17).
_HAMMING_BELOW = 0.01
_NONE_ABOVE = 0.03
_MIN_WINDOW_LENGTH = 16
# Window test against a reference (an estimate of the unwindowed object, e.g. a network's result), per band
# of LR frequencies (cycles/voxel): how far the input's gain goes from 1 (sharp) towards Hamming's.
# mri-x2 on k-space ×2 copies of MR_small.dcm, emri_small.dcm and camera.png, noise 0 and 2 %: Hamming
# 0.49–0.84 (middle) and 0.56–0.91 (outer); Tukey ≤ 0.28 and ≤ 0.58; sharp ≤ 0.05 and ≤ 0.08. Projecting
# with Hamming an input that had none or Tukey's divides lines by up to 12 (there: −8 to −22 dB). The middle
# band tells Hamming from Tukey, whose flat top leaves it whole: its threshold sits between them. Past it
# only sharp is left to tell apart, in the outer band: that threshold sits between sharp and Hamming. It was
# 0.45 until pydicom's examples_overlay.dcm (a smooth 300 × 484 abdomen reformat, Hamming + 2 % Rician ×2)
# read 0.63 and 0.40, as mri-x2 restores less of its outer band: projected as sharp, 1.5 dB below no
# projection (docs/models.rst, "Withdrawn from the matrix").
_BANDS = ((0.15, 0.3), (0.3, 0.51))
_HAMMING_SHARES = (0.4, 0.3)
_SHARP_SHARES = (0.15, 0.25)


def _kspace_axis(n: int, s: int, window: str | None) -> tuple[np.ndarray, np.ndarray]:
    """HR FFT indices of the kept lines and their transfer ``t`` (LR FFT order) along one axis.

    ``t`` is read off :func:`kspace_truncate` itself (the DFT of its response to a unit impulse), so the
    window, phase ramp and ``M/N`` scale are exactly those of the degradation: ``LR_k = t_k·HR_{index_k}``.
    """
    m = n // s
    impulse = np.zeros(n)
    impulse[0] = 1.0
    transfer = scipy.fft.fft(kspace_truncate(impulse, (s,), window).astype(np.complex128))
    # The lines kspace_truncate keeps: signed LR frequencies −⌊m/2⌋ … ⌈m/2⌉ − 1, folded into HR order.
    index = np.mod(np.rint(np.fft.fftfreq(m) * m).astype(np.int64), n)
    return index, transfer


def _kept_block(shape: Sequence[int], factors: Sequence[int], window: str | None
                ) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """``(block, transfer)`` of a reduction of an HR array of ``shape``: ``LR spectrum = transfer·HR[block]``.

    ``block`` indexes the kept lines of the leading ``len(factors)`` axes (:func:`numpy.ix_`), ``transfer``
    broadcasts against it (window, phase ramp and scale of :func:`kspace_truncate`).
    """
    kept = [_kspace_axis(shape[a], s, window) for a, s in enumerate(factors)]
    transfer = np.ones((1,) * len(shape), dtype=np.complex128)
    for a, (_, t) in enumerate(kept):
        axis_shape = [1] * len(shape)
        axis_shape[a] = t.size
        transfer = transfer * t.reshape(axis_shape)
    return np.ix_(*(index for index, _ in kept)), transfer


def project_kspace(x: np.ndarray, y: np.ndarray, op: ForwardModel, valid: np.ndarray | None) -> np.ndarray:
    """k-space projection: replace (or Wiener-correct) the kept block of the HR spectrum, keep it Hermitian.

    Parameters
    ----------
    x : numpy.ndarray
        ``(*spatial·factors, ...)`` float64 estimate.
    y : numpy.ndarray
        ``(*spatial, ...)`` float64 LR input (masked samples already zero).
    op : ForwardModel
        The operator (kind ``"kspace"``), its ``noise_sigma`` known (:func:`sciSR.consistency.project`
        estimates an unknown one).
    valid : numpy.ndarray or None
        ``(*spatial, 1, ...)`` 0/1 weights of the residual (None: all valid).

    Returns
    -------
    numpy.ndarray
        float64 like ``x``; see :func:`sciSR.consistency.project`.
    """
    k = len(op.factors)
    scaled = [a for a, f in enumerate(op.factors) if f > 1]
    if 0 < len(scaled) < k:
        # k-space is per scaled plane (a multi-slice scan's slices each have their own): unscaled axes are
        # moved behind the scaled ones and transformed by nothing, so the projection is separable along
        # them and a result can be projected slab by slab (sciSR.pipeline.project_in_place).
        flat = [a for a in range(k) if a not in scaled]
        lead, behind = [*scaled, *flat], list(range(k))
        shares = None if op.acquired is None else tuple(op.acquired[a] for a in scaled)
        reduced = dataclasses.replace(op, factors=tuple(op.factors[a] for a in scaled), acquired=shares)
        moved = project_kspace(np.moveaxis(x, lead, behind), np.moveaxis(y, lead, behind), reduced,
                               None if valid is None else np.moveaxis(valid, lead, behind))
        return np.moveaxis(moved, behind, lead)
    axes = tuple(range(k))
    sigma = op.noise_sigma
    if sigma > 0 and op.window is not None and float(np.min(y)) >= 0:
        # A magnitude input's Rician floor is no signal (without_rician_floor). Only behind a window: σ is the
        # MAD of the finest differences, which hold noise alone where a window emptied them of signal; in a
        # sharp input Gibbs ringing and texture inflate it (emri_small.dcm sharp ×2: 6.3 % of p99 for about
        # 2 % of noise), and removing an inflated floor removes signal (mri-x2 there: −1.2 dB).
        y = without_rician_floor(y, sigma)
    block, transfer = _kept_block(x.shape, op.factors, op.window)
    spectrum = scipy.fft.fftn(x, axes=axes)
    coeffs = spectrum[block]
    residual = y - scipy.fft.ifftn(transfer * coeffs, axes=axes)
    if valid is not None:
        residual = residual * valid
    residual = scipy.fft.fftn(residual, axes=axes)
    if op.acquired is not None:
        residual = residual * acquired_lines(residual.shape, op.acquired)  # empty lines measure nothing
    if sigma > 0:
        power = np.abs(coeffs) ** 2
        noise_power = math.prod(y.shape[:k]) * sigma**2  # E|DFT of white noise|², unnormalised DFT
        gain = np.conj(transfer) * power / (np.abs(transfer) ** 2 * power + noise_power)
    else:
        gain = 1.0 / transfer
    coeffs = coeffs + gain * residual
    # A real image's spectrum is Hermitian. For an even LR size the kept Nyquist line (−M/2) has its
    # partner (+M/2) outside the kept block, which the forward model never sees: it must be the
    # conjugate, or dropping the imaginary part would halve the Nyquist line that A reads.
    mirror = np.ix_(*(np.mod(-index.ravel(), n) for index, n in zip(block, x.shape[:k], strict=True)))
    spectrum[mirror] = np.conj(coeffs)
    spectrum[block] = coeffs
    return scipy.fft.ifftn(spectrum, axes=axes).real


def estimate_window(lr: np.ndarray, axes: Sequence[int]) -> str | None:
    """Guess whether a magnitude MR image was reconstructed with a Hamming k-space window.

    Along each axis, the power of the outermost frequencies (``|f| ≥ 0.4`` cycles/voxel) relative to a
    middle band (``0.15 ≤ |f| < 0.25``), after subtracting the white-noise floor
    (:func:`estimate_noise_sigma`): a Hamming window cuts the outer band ~40× more than the middle.

    Parameters
    ----------
    lr : numpy.ndarray
        ``(*spatial, ...)`` the low-resolution image.
    axes : sequence of int
        The in-plane axes to look along (each at least 16 voxels).

    Returns
    -------
    str or None
        ``"hamming"`` (all axes below 0.01), ``"none"`` (all above 0.03), None when it cannot tell
        (axes disagree, ratio in between, too few voxels).
    """
    x = np.asarray(lr, dtype=np.float64)
    if not axes or any(x.shape[a] < _MIN_WINDOW_LENGTH for a in axes):
        return None
    n_spatial = max(axes) + 1
    sigma = estimate_noise_sigma(x, n_spatial)
    ratios = []
    for axis in axes:
        m = x.shape[axis]
        power = np.abs(scipy.fft.fft(x - x.mean(), axis=axis)) ** 2
        power = np.moveaxis(power, axis, 0).reshape(m, -1).mean(axis=1)
        f = np.abs(np.fft.fftfreq(m))
        floor = m * sigma**2
        middle = power[(f >= 0.15) & (f < 0.25)].mean() - floor
        if middle <= 0:
            return None
        ratios.append((power[f >= 0.4].mean() - floor) / middle)
    if all(r < _HAMMING_BELOW for r in ratios):
        return "hamming"
    if all(r > _NONE_ABOVE for r in ratios):
        return "none"
    return None


def window_from_reference(lr: np.ndarray, reference: np.ndarray, factors: Sequence[int]) -> str | None:
    """Whether ``lr`` is the Hamming-windowed or the sharp k-space reduction of ``reference``.

    ``reference`` estimates the object on the fine grid without any window (a network trained on both
    kinds of acquisition restores much of what a window damps). Its sharp and Hamming reductions ``S`` and
    ``H`` (:func:`kspace_truncate`, the conventions of the degradation) are compared with the input's
    spectrum ``Y`` in two bands of LR frequencies, the largest ``|f|`` over the scaled axes in ``[0.15, 0.3)``
    and ``[0.3, 0.5]`` cycles/voxel. Per band, the input's gain ``g = Σ Re(Y·S̄) / Σ |S|²`` is 1 for a sharp
    acquisition and ``g_H = Σ Re(H·S̄) / Σ |S|²`` (about 0.62 and 0.21) for a Hamming one; the share of the
    way from 1 to ``g_H`` that ``g`` goes tells them apart. A Tukey window leaves the middle band whole, so
    it does not read as Hamming; noise in ``Y`` that the reference does not carry averages out; and unlike
    :func:`estimate_window`, an object's own fall-off does not read as a window (the reference falls off too).

    Parameters
    ----------
    lr : numpy.ndarray
        ``(*spatial, ...)`` the low-resolution magnitudes.
    reference : numpy.ndarray
        ``lr``'s shape times ``factors`` on the spatial axes: the estimate on the fine grid.
    factors : sequence of int
        Factor per leading spatial axis.

    Returns
    -------
    str or None
        ``"hamming"`` (shares at least 0.4 in the middle band and 0.45 in the outer one), ``"none"`` (below
        0.15 and 0.25), else None: it cannot tell (also for a scaled axis shorter than 16 LR voxels or a
        band without signal).
    """
    axes = tuple(a for a, f in enumerate(factors) if f > 1)
    y = np.asarray(lr, dtype=np.float64)
    if not axes or any(y.shape[a] < _MIN_WINDOW_LENGTH for a in axes):
        return None
    leading = tuple(range(len(factors)))
    given = scipy.fft.fftn(y, axes=leading)
    # One HR transform; each reduction's LR spectrum is its kept block times its transfer (as in project_kspace).
    spectrum = scipy.fft.fftn(np.asarray(reference, dtype=np.float64), axes=leading)
    sharp, hamming = (transfer * spectrum[block] for block, transfer in
                      (_kept_block(spectrum.shape, factors, w) for w in (None, "hamming")))
    radius = np.zeros(tuple(y.shape[a] for a in axes))
    for k, a in enumerate(axes):
        shape = [1] * len(axes)
        shape[k] = -1
        radius = np.maximum(radius, np.abs(np.fft.fftfreq(y.shape[a])).reshape(shape))
    radius = np.broadcast_to(np.expand_dims(radius, tuple(a for a in range(y.ndim) if a not in axes)), y.shape)
    shares = []
    for low, high in _BANDS:
        band = (radius >= low) & (radius < high)
        power = float(np.sum(np.abs(sharp[band]) ** 2))
        if not power > 0:
            return None
        gain, hamming_gain = (float(np.sum((v[band] * sharp[band].conj()).real)) / power for v in (given, hamming))
        shares.append((1.0 - gain) / (1.0 - hamming_gain))
    if all(share >= least for share, least in zip(shares, _HAMMING_SHARES, strict=True)):
        return "hamming"
    if all(share < most for share, most in zip(shares, _SHARP_SHARES, strict=True)):
        return "none"
    return None


def window_beyond(x: np.ndarray, factors: Sequence[int], window: str) -> np.ndarray:
    """``x`` with the frequencies a ``factors`` reduction drops weighted as ``window`` weights its own lines.

    ``x`` is an acquisition of ``n`` lines per axis reconstructed with ``window``; a reduction by ``s``
    keeps its central ``n // s`` lines (±``n // s // 2``). An estimate of the *unwindowed* object, compared with
    ``x``, has to carry that window beyond the kept block (the separable product of each axis' weights);
    inside the block it is the reduction's own data and stays as it is.

    Parameters
    ----------
    x : numpy.ndarray
        ``(*spatial, [C])`` on the acquisition's grid; the axes with a factor above 1 are transformed.
    factors : sequence of int
        Factor per leading spatial axis of the reduction.
    window : str
        ``"hamming"`` or ``"tukey"`` (:func:`sciSR.degrade.mri.kspace_window`).

    Returns
    -------
    numpy.ndarray
        float64, the shape of ``x``.
    """
    axes = [a for a, s in enumerate(factors) if s > 1]
    spectrum = scipy.fft.fftn(np.asarray(x, dtype=np.float64), axes=axes)
    weight = np.ones((1,) * x.ndim)
    inside = np.ones((1,) * x.ndim, dtype=bool)
    for a in axes:
        n = x.shape[a]
        k = np.rint(np.fft.fftfreq(n) * n)
        m = n // factors[a]
        shape = [1] * x.ndim
        shape[a] = n
        weight = weight * kspace_window(k, n, window).reshape(shape)
        # Both HR lines ±m/2 of an even m fold into the kept Nyquist line: kept alike, so real stays real.
        inside = inside & (np.abs(k) <= m // 2).reshape(shape)
    spectrum *= np.where(inside, 1.0, weight)
    return scipy.fft.ifftn(spectrum, axes=axes).real
