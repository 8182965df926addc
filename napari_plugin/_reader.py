"""napari reader for DICOM (files and series folders), NIfTI and FITS through :func:`sciSR.read`.

Layers follow the display convention of :mod:`napari_scisr._layers`; each keeps its SciImage in
``layer.metadata["scisr_image"]``. A folder holding several DICOM series opens as one layer per series
(docs/architecture.md §8).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import sciSR

from ._layers import LayerDataTuple, image_layer

PathLike = str | os.PathLike
ReaderFunction = Callable[[PathLike | list[PathLike]], list[LayerDataTuple]]

SUFFIXES = (".dcm", ".dicom", ".ima", ".nii", ".nii.gz", ".fits", ".fit", ".fts", ".fz", ".fits.gz", ".fits.fz")
# A DICOM Part 10 file has "DICM" after a 128-byte preamble.
_DICOM_MAGIC_OFFSET = 128
_DICOM_MAGIC = b"DICM"
# Files looked at (sub-folders included: a study often keeps each series in its own) before deciding
# that a folder holds no DICOM.
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


def _files_below(folder: Path) -> Iterator[Path]:
    """Regular, non-hidden files under ``folder``, in sorted order, lazily (a FIFO would block the probe)."""
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            path = Path(root) / name
            if not name.startswith(".") and path.is_file():
                yield path


def _readable(path: PathLike) -> bool:
    p = Path(path)
    if p.is_dir():
        # napari offers every folder to every reader that accepts folders: claim DICOM ones only.
        return any(_is_dicom_file(f) for _, f in zip(range(_FOLDER_PROBE), _files_below(p), strict=False))
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


def series_layer_name(img: sciSR.SciImage) -> str:
    """Layer name of one series of a multi-series folder.

    Its SeriesDescription, else ``series <SeriesNumber>``, else its SeriesInstanceUID.
    """
    meta = img.meta
    if meta.get("series_description"):
        return str(meta["series_description"])
    if meta.get("series_number") not in (None, ""):
        return f"series {int(meta['series_number'])}"
    return str(meta.get("series_uid") or "DICOM series")


def read_layers(path: PathLike | list[PathLike]) -> list[LayerDataTuple]:
    """Read each path with :func:`sciSR.read` into image layers: one per file, one per series of a folder.

    A DICOM folder is read with ``series="all"``: a single series is named after the folder, each series
    of a study by :func:`series_layer_name` (napari numbers repeated names). Localizer-only series are
    left out, as :func:`sciSR.read` does.

    Returns
    -------
    list of LayerDataTuple
        ``(data, kwargs, "image")`` per image: data in display order, its own ``scale``/``translate`` (or
        ``affine``), contrast limits (CT window, sky ZScale, else robust percentiles) and metadata with
        the SciImage, affine, WCS, spacing, units and source.
    """
    paths = path if isinstance(path, list) else [path]
    layers = []
    for p in paths:
        if not Path(p).is_dir():
            layers.append(image_layer(sciSR.read(p)))
            continue
        images = sciSR.read(p, series="all")
        several = len(images) > 1
        layers.extend(image_layer(img, name=series_layer_name(img) if several else None) for img in images)
    return layers
