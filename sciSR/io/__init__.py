"""Readers and writers, chosen by suffix or content.

Every format module exposes ``SUFFIXES`` (lower-case), ``sniff(path) -> bool`` (content check),
``read(path, **options) -> SciImage`` and ``write(img, path)`` (``path`` is a temp path owned by
:func:`sciSR.io.atomic.atomic_output`; the writer only writes there).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from types import ModuleType

from sciSR.errors import SciSRError
from sciSR.image import SciImage
from sciSR.io import dicom, fits, nifti, raster
from sciSR.io.atomic import atomic_output, check_input, check_output

FORMATS: dict[str, ModuleType] = {"dicom": dicom, "nifti": nifti, "fits": fits, "raster": raster}


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for fmt in FORMATS.values():
        for suffix in sorted(fmt.SUFFIXES, key=len, reverse=True):
            if name.endswith(suffix):
                return suffix
    return path.suffix.lower()


def format_for(path: str | os.PathLike, *, for_writing: bool = False) -> str:
    """Name of the format module that handles ``path``.

    Parameters
    ----------
    path : str or os.PathLike
        A file, or a folder (DICOM series).
    for_writing : bool
        Decide from the suffix only (the file does not exist yet); a path without a suffix is a
        DICOM output folder.

    Returns
    -------
    str
        A key of :data:`FORMATS`.
    """
    p = Path(path)
    if not for_writing and p.is_dir():
        return "dicom"
    suffix = _suffix(p)
    for name, fmt in FORMATS.items():
        if suffix in fmt.SUFFIXES:
            return name
    if for_writing:
        if suffix == "":
            return "dicom"
    elif p.is_file():
        for name, fmt in FORMATS.items():
            if fmt.sniff(p):
                return name
    known = sorted({s for fmt in FORMATS.values() for s in fmt.SUFFIXES if s})
    raise SciSRError(f"unknown format (suffix {suffix or 'none'!r}); known: {', '.join(known)}", path)


def _every_series_is_dicom(name: str, path: str | os.PathLike) -> None:
    """Refuse ``series="all"`` for a format other than DICOM (a single image, which the caller took for a study)."""
    if name != "dicom":
        raise SciSRError(f'series="all" (--series all) reads every series of a DICOM folder; this is a {name} file',
                         path)


def read(path: str | os.PathLike, **options) -> SciImage | list[SciImage]:
    """Read a file or DICOM series folder; see :func:`sciSR.read` (a list only for DICOM ``series="all"``)."""
    p = check_input(path)  # a named pipe would block the reader forever
    name = format_for(p)
    if options.get("series") == "all":
        _every_series_is_dicom(name, path)
    return FORMATS[name].read(p, **options)


def list_series(path: str | os.PathLike) -> list[dicom.Series]:
    """The series of a DICOM file or folder from their headers; see :func:`sciSR.io.dicom.list_series`.

    Raises
    ------
    SciSRError
        ``path`` is missing, not a file or folder, or not DICOM; the DICOM reader's header errors.
    """
    p = check_input(path)
    _every_series_is_dicom(format_for(p), path)
    return dicom.list_series(p)


def write(img: SciImage, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write ``img`` atomically; see :func:`sciSR.write`."""
    name = format_for(path, for_writing=True)
    sources = tuple(s for s in [img.meta.get("source")] if s)
    folder = name == "dicom"
    out = check_output(path, overwrite=overwrite, inputs=sources, folder=folder)
    try:
        with atomic_output(out, overwrite=overwrite, folder=folder, inputs=sources) as tmp:
            FORMATS[name].write(img, tmp)
    except SciSRError as err:
        # Writers only know the temporary name; the user knows the output they asked for.
        raise SciSRError(_full_disk(err) or err.message, path) from None
    except OSError as err:  # the libraries' own file errors (pydicom, gzip, ...) reach here unwrapped
        raise SciSRError(_full_disk(err) or f"cannot write ({err.strerror or err}); nothing written", path) from None
    return out


def _full_disk(err: BaseException) -> str | None:
    """The message for a write that ran out of space, when ``err`` or an error behind it is ENOSPC or EDQUOT.

    Writers wrap the libraries' errors (keeping them as the cause or the context), with the temporary
    file's name in them; a full disk deserves its own plain words instead.
    """
    seen: set[int] = set()
    cause: BaseException | None = err
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, OSError) and cause.errno in (errno.ENOSPC, errno.EDQUOT):
            return (f"{os.strerror(cause.errno).lower()} while writing; nothing written and temporary files "
                    "removed (free some space, or choose another output folder)")
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return None


__all__ = ["FORMATS", "atomic_output", "check_output", "format_for", "list_series", "read", "write"]
