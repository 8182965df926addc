"""napari reader for DICOM (files and series folders), NIfTI and FITS through :func:`sciSR.read`.

Layers follow the display convention of :mod:`napari_scisr._layers`; each keeps its SciImage in
``layer.metadata["scisr_image"]``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import sciSR

from ._layers import LayerDataTuple, image_layer

PathLike = str | os.PathLike
ReaderFunction = Callable[[PathLike | list[PathLike]], list[LayerDataTuple]]

SUFFIXES = (".dcm", ".dicom", ".ima", ".nii", ".nii.gz", ".fits", ".fit", ".fts", ".fz", ".fits.gz", ".fits.fz")
# A DICOM Part 10 file has "DICM" after a 128-byte preamble.
_DICOM_MAGIC_OFFSET = 128
_DICOM_MAGIC = b"DICM"
# Files looked at before deciding that a folder holds no DICOM (series folders are flat).
_FOLDER_PROBE = 50


def _is_dicom_file(path: Path) -> bool:
    if path.suffix.lower() == ".dcm":
        return True
    try:
        with path.open("rb") as f:
            f.seek(_DICOM_MAGIC_OFFSET)
            return f.read(len(_DICOM_MAGIC)) == _DICOM_MAGIC
    except OSError:
        return False


def _readable(path: PathLike) -> bool:
    p = Path(path)
    if p.is_dir():
        # napari offers every folder to every reader that accepts folders: claim DICOM ones only.
        files = (f for f in sorted(p.iterdir()) if f.is_file() and not f.name.startswith("."))
        return any(_is_dicom_file(f) for _, f in zip(range(_FOLDER_PROBE), files, strict=False))
    return p.is_file() and p.name.lower().endswith(SUFFIXES)


def napari_get_reader(path: PathLike | list[PathLike]) -> ReaderFunction | None:
    """Return :func:`read_layers` when sciSR reads ``path``, else None (napari tries another reader).

    Parameters
    ----------
    path : str or os.PathLike or list of them
        A file (``.dcm``, ``.dicom``, ``.ima``, ``.nii``, ``.nii.gz``, ``.fits``, ``.fit``, ``.fts``,
        ``.fz``, ``.fits.gz``, ``.fits.fz``) or a folder holding DICOM files; a list opens each path.
    """
    paths = path if isinstance(path, list) else [path]
    return read_layers if paths and all(_readable(p) for p in paths) else None


def read_layers(path: PathLike | list[PathLike]) -> list[LayerDataTuple]:
    """Read each path with :func:`sciSR.read` into one image layer.

    Returns
    -------
    list of LayerDataTuple
        ``(data, kwargs, "image")`` per path: data in display order, ``scale``/``translate`` (or
        ``affine``), contrast limits (CT window, sky ZScale, else robust percentiles) and metadata with
        the SciImage, affine, WCS, spacing, units and source.
    """
    paths = path if isinstance(path, list) else [path]
    return [image_layer(sciSR.read(p)) for p in paths]
