"""Blur-and-decimate forward models (MRI slice profile, CT): the least-squares projection, axis by axis."""

from __future__ import annotations

import numpy as np

from sciSR.consistency.model import ForwardModel
from sciSR.degrade.ct import ct_downsample
from sciSR.degrade.mri import thick_slice


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


def project_blur(x: np.ndarray, y: np.ndarray, op: ForwardModel, valid: np.ndarray | None) -> np.ndarray:
    """``x + A⁺(y − A x)`` for a separable blur-and-decimate ``A = ⊗ A_a``, with ``A⁺ = ⊗ pinv(A_a)``.

    The pseudo-inverse of a Kronecker product is the product of the axis pseudo-inverses, so the
    least-squares correction costs one small dense ``(n, n/s)`` matrix per degraded axis (memory ``n²``).

    Parameters
    ----------
    x : numpy.ndarray
        ``(*spatial·factors, ...)`` float64 estimate.
    y : numpy.ndarray
        ``(*spatial, ...)`` float64 LR input (masked samples already zero).
    op : ForwardModel
        The operator (kind ``"slice_profile"`` or ``"ct"``).
    valid : numpy.ndarray or None
        ``(*spatial, 1, ...)`` 0/1 weights of the residual (None: all valid).

    Returns
    -------
    numpy.ndarray
        float64 like ``x``; see :func:`sciSR.consistency.project`.
    """
    matrices = {a: _axis_matrix(op, x.shape[a], a) for a in op.axes}
    estimate = x
    for a, matrix in matrices.items():
        estimate = _along(matrix, estimate, a)
    residual = y - estimate
    if valid is not None:
        residual = residual * valid
    for a, matrix in matrices.items():
        residual = _along(np.linalg.pinv(matrix), residual, a)
    return x + residual
