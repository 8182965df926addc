"""Readers and writers, chosen by suffix or content.

Every format module exposes ``SUFFIXES`` (lower-case), ``sniff(path) -> bool`` (content check),
``read(path, **options) -> SciImage`` and ``write(img, path)`` (``path`` is a temp path owned by
:func:`sciSR.io.atomic.atomic_output`; the writer only writes there).
"""

from __future__ import annotations

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


def read(path: str | os.PathLike, **options) -> SciImage:
    """Read a file or DICOM series folder; see :func:`sciSR.read`."""
    p = check_input(path)  # a named pipe would block the reader forever
    return FORMATS[format_for(p)].read(p, **options)


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
        raise SciSRError(err.message, path) from None
    return out


__all__ = ["FORMATS", "atomic_output", "check_output", "format_for", "read", "write"]
