"""Blur-and-decimate forward models (MRI slice profile, CT): the least-squares projection, axis by axis."""

from __future__ import annotations

import numpy as np

from sciSR.consistency.model import ForwardModel
from sciSR.degrade.ct import ct_downsample
from sciSR.degrade.mri import thick_slice

# Singular values below this fraction of the largest count as zero (numpy.linalg.pinv's default cutoff).
_RCOND = 1e-15


def _axis_matrix(op: ForwardModel, n: int, axis: int) -> np.ndarray:
    """The ``(n / s, n)`` matrix of ``A`` along one axis, as the degrade function computes it."""
    s, width = op.factors[axis], op.fwhm[axis]
    eye = np.eye(n)
    if op.kind == "slice_profile":
        return thick_slice(eye, (s, 1), op.profile, gap=(s - width, 0.0)).astype(np.float64)
    return ct_downsample(eye, (s, 1), (width, 0.0)).astype(np.float64)


def _along(matrix: np.ndarray, x: np.ndarray, axis: int) -> np.ndarray:
    """Apply ``matrix`` to every line of ``x`` along ``axis``."""
    return np.moveaxis(np.tensordot(matrix, x, axes=(1, axis)), 0, axis)


def _svd(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Thin SVD ``A_a = U S Vᵀ`` of one axis matrix, singular values below NumPy's pinv cutoff set to 0."""
    u, s, vt = np.linalg.svd(matrix, full_matrices=False)
    s = np.where(s > _RCOND * s.max(), s, 0.0)
    return u, s, vt


def project_blur(x: np.ndarray, y: np.ndarray, op: ForwardModel, valid: np.ndarray | None) -> np.ndarray:
    """``x + A⁺(y − A x)`` for a separable blur-and-decimate ``A = ⊗ A_a``, Wiener-weighted when noisy.

    The SVD of a Kronecker product is the product of the axis SVDs (``A_a = U_a S_a V_aᵀ``), so the
    correction is computed coefficient by coefficient in that basis at the cost of one small dense
    ``(n/s, n)`` SVD per degraded axis (memory ``n²``): the residual's coefficient ``r = Uᵀ(y − A x)``
    becomes ``V (g · r)`` with ``g = 1/s`` (the pseudo-inverse) when noise-free, else
    ``g = s·P / (s²·P + σ²)`` with ``P`` the squared coefficient of the estimate ``Vᵀ x`` as pilot, the
    weighting of the k-space projection. Noise in ``y`` is otherwise deconvolved: on the held-out CT_small.dcm
    with ct-x2's middle blur (FWHM 1.75) and 20 HU noise, the exact correction of ct-x2's result is 2.5 dB
    below cubic, the weighted one 1.1 dB above (benchmarks/quality.py's CT cells: 10 HU +0.77 → +2.11;
    noise-free +3.93 → +3.69, because the slice's own quantum noise then counts as noise).

    Parameters
    ----------
    x : numpy.ndarray
        ``(*spatial·factors, ...)`` float64 estimate.
    y : numpy.ndarray
        ``(*spatial, ...)`` float64 LR input (masked samples already zero).
    op : ForwardModel
        The operator (kind ``"slice_profile"`` or ``"ct"``), its ``noise_sigma`` known
        (:func:`sciSR.consistency.project` estimates an unknown one).
    valid : numpy.ndarray or None
        ``(*spatial, 1, ...)`` 0/1 weights of the residual (None: all valid).

    Returns
    -------
    numpy.ndarray
        float64 like ``x``; see :func:`sciSR.consistency.project`.
    """
    matrices = {a: _axis_matrix(op, x.shape[a], a) for a in op.axes}
    bases = {a: _svd(matrix) for a, matrix in matrices.items()}
    estimate = x
    for a, matrix in matrices.items():
        estimate = _along(matrix, estimate, a)
    residual = y - estimate
    if valid is not None:
        residual = residual * valid
    for a, (u, _, _) in bases.items():
        residual = _along(u.T, residual, a)
    singular = np.ones((1,) * x.ndim)
    for a, (_, s, _) in bases.items():
        singular = singular * s.reshape(tuple(-1 if b == a else 1 for b in range(x.ndim)))
    sigma = op.noise_sigma
    if sigma > 0:
        pilot = x
        for a, (_, _, vt) in bases.items():
            pilot = _along(vt, pilot, a)
        power = pilot**2
        gain = singular * power / (singular**2 * power + sigma**2)
    else:
        gain = np.divide(1.0, singular, out=np.zeros_like(singular), where=singular > 0)
    correction = gain * residual
    for a, (_, _, vt) in bases.items():
        correction = _along(vt.T, correction, a)
    return x + correction
