"""Checks every reader applies at its edge, so a damaged header is refused instead of read wrongly.

A reader calls these after parsing the header and before (or right after) allocating the pixels. Each
check raises :class:`~sciSR.errors.SciSRError` with one line naming the file and the header field, so
the user knows what to repair. Library exceptions are turned into the same kind of line by
:func:`reader_boundary`.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from sciSR.errors import SciSRError

# Voxel sizes of medical images (mm): a micrometre to a kilometre covers microscopy-scale MRI to
# whole-body CT with margin; anything outside is a corrupt field (1e37, 1e-39 and the like).
MEDICAL_SPACING_MM = (1e-6, 1e6)
# Pixel sizes on the sky (deg/pixel): a few micro-arcseconds (VLBI) to a whole hemisphere.
SKY_SPACING_DEG = (1e-9, 180.0)
# Share of the available memory one image may take: the result of an upscale is larger still.
_MEMORY_SHARE = 0.5


def printable(text: str, limit: int = 80) -> str:
    """``text`` safe to quote in a one-line message: control and other unprintable characters as ``?``, cut short."""
    shown = "".join(c if c.isprintable() else "?" for c in str(text))
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


def one_line(err: BaseException) -> str:
    """``"Type: first line of the message"`` with whitespace collapsed, for wrapping library errors."""
    text = printable(" ".join(str(err).split()), 300)
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def check_spacing(
    spacing: Sequence[float],
    path: str | os.PathLike,
    *,
    field: str,
    unit: str = "mm",
    limits: tuple[float, float] = MEDICAL_SPACING_MM,
) -> tuple[float, ...]:
    """Refuse voxel sizes that are not finite, not positive or outside ``limits``.

    Parameters
    ----------
    spacing : sequence of float
        One size per spatial axis, in ``unit``.
    path : str or os.PathLike
        The file the sizes come from (named in the error).
    field : str
        Header field(s) the sizes come from, e.g. ``"PixelSpacing"`` or ``"pixdim"``.
    unit : str
        Unit of ``spacing`` and ``limits``, for the message.
    limits : (float, float)
        Smallest and largest accepted size.

    Returns
    -------
    tuple of float
        The sizes, as floats.
    """
    values = tuple(float(s) for s in spacing)
    lo, hi = limits
    for axis, value in enumerate(values):
        if not math.isfinite(value) or not lo <= value <= hi:
            raise SciSRError(
                f"{field} gives a voxel size of {value:g} {unit} on axis {axis}; it must be finite and within "
                f"{lo:g}..{hi:g} {unit} (corrupt header?)",
                path,
            )
    return values


def check_affine(affine: np.ndarray, path: str | os.PathLike, *, field: str, n_spatial: int = 3) -> np.ndarray:
    """Refuse a voxel → world affine that is not finite or cannot be inverted.

    Parameters
    ----------
    affine : numpy.ndarray
        ``(4, 4)`` voxel index → world mm.
    path : str or os.PathLike
        The file it comes from.
    field : str
        Header fields it was built from, e.g. ``"ImagePositionPatient/ImageOrientationPatient"``.
    n_spatial : int
        Spatial axes of the image; only these columns must be independent (a 2D slice's third column
        is the slice normal times the thickness, which may be missing).

    Returns
    -------
    numpy.ndarray
        The affine as float64.
    """
    affine = np.asarray(affine, dtype=np.float64)
    if affine.shape != (4, 4) or not np.all(np.isfinite(affine)):
        raise SciSRError(f"{field}: non-finite voxel-to-world affine (NaN or inf in the header)", path)
    columns = affine[:3, :n_spatial]
    norms = np.linalg.norm(columns, axis=0)
    # Rank from singular values relative to the largest column, so tiny-but-valid voxels pass.
    singular = np.linalg.svd(columns, compute_uv=False)
    if not np.all(norms > 0) or singular[-1] <= 1e-9 * singular[0]:
        raise SciSRError(f"{field}: singular voxel-to-world affine (axes of zero length or parallel)", path)
    return affine


def check_memory(shape: Sequence[int], itemsize: int, path: str | os.PathLike, *, field: str) -> None:
    """Refuse, before allocating, an image whose header claims more memory than is available.

    Parameters
    ----------
    shape : sequence of int
        Array shape the header declares.
    itemsize : int
        Bytes per value of the array the reader will build (e.g. 4 for float32).
    path : str or os.PathLike
        The file.
    field : str
        Header field holding the shape, e.g. ``"dim"`` or ``"Rows/Columns"``.
    """
    dims = [int(n) for n in shape]
    if any(n < 0 for n in dims):
        raise SciSRError(f"{field} holds a negative size {dims} (corrupt header)", path)
    needed = math.prod(dims) * int(itemsize)
    available = available_memory()
    if needed > _MEMORY_SHARE * available:
        raise SciSRError(
            f"{field} declares a {'x'.join(map(str, dims))} image ({needed / 2**30:.3g} GiB), more than half the "
            f"available memory ({available / 2**30:.3g} GiB); corrupt header, or crop the image first",
            path,
        )


def available_memory() -> int:
    """Bytes of memory this process can still use (``MemAvailable``, else total physical memory)."""
    with contextlib.suppress(OSError, ValueError), open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    with contextlib.suppress(AttributeError, ValueError, OSError):
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    return 2**34  # unknown platform: assume 16 GiB rather than refuse everything


def check_values(array: np.ndarray, path: str | os.PathLike, *, what: str = "the image") -> np.ndarray:
    """Refuse an empty array or one without a single finite value.

    Parameters
    ----------
    array : numpy.ndarray
        Calibrated values, any shape.
    path : str or os.PathLike
        The file.
    what : str
        What the array is, for the message (e.g. ``"HDU 1"``).

    Returns
    -------
    numpy.ndarray
        ``array`` unchanged.
    """
    if array.size == 0:
        raise SciSRError(f"{what} is empty (shape {array.shape}): no pixel to read", path)
    if array.dtype.kind in "fc" and not np.isfinite(array).any():
        raise SciSRError(f"every value of {what} is NaN or inf: nothing to read", path)
    return array


@contextlib.contextmanager
def reader_boundary(kind: str, path: str | os.PathLike) -> Iterator[None]:
    """Turn any library exception raised while reading ``path`` into one :class:`SciSRError` line.

    Parameters
    ----------
    kind : str
        Format name for the message, e.g. ``"NIfTI"``.
    path : str or os.PathLike
        The file being read.
    """
    try:
        yield
    except SciSRError as err:
        if err.message.isprintable():
            raise
        # Header text quoted in a message (a damaged UID, a description) must not break the one line.
        raise SciSRError(printable(err.message, 500), err.path) from None
    except MemoryError:
        raise SciSRError(f"not enough memory to read this {kind} file (header sizes corrupt?)", path) from None
    except RecursionError:
        raise SciSRError(f"damaged {kind} file (nesting too deep to parse)", path) from None
    except Exception as err:  # the boundary: whatever the library raised, the user gets one line
        raise SciSRError(f"damaged or unsupported {kind} file ({one_line(err)})", path) from None


def finite_floats(values: Any, path: str | os.PathLike, *, field: str, count: int | None = None) -> np.ndarray:
    """A multi-valued header field as finite float64 numbers, refusing anything else with its name.

    Parameters
    ----------
    values : object
        The field's value: a sequence of numbers or numeric strings (a single number counts as one).
    path : str or os.PathLike
        The file.
    field : str
        Name of the field.
    count : int, optional
        Required number of values.

    Returns
    -------
    numpy.ndarray
        ``(n,)`` float64.
    """
    # A single number where a list belongs (e.g. PixelSpacing written as one DS) is still named and counted.
    items = [values] if isinstance(values, str | bytes) or not hasattr(values, "__iter__") else list(values)
    try:
        out = np.asarray([float(v) for v in items], dtype=np.float64)
    except (TypeError, ValueError):
        shown = printable("\\".join(str(v) for v in items))
        hint = " (decimal commas? DICOM numbers use a point)" if "," in shown else ""
        raise SciSRError(f"{field} is not a list of numbers: '{shown}'{hint}", path) from None
    if count is not None and out.size != count:
        raise SciSRError(f"{field} must hold {count} numbers, found {out.size}: {out.tolist()}", path)
    if not np.all(np.isfinite(out)):
        raise SciSRError(f"{field} holds a non-finite number: {out.tolist()}", path)
    return out
