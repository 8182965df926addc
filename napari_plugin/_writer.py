"""napari writer: an image layer to NIfTI, FITS or a DICOM series folder through :func:`sciSR.write`.

A layer from the sciSR reader or widget is written from its SciImage (affine, WCS, FITS header, DICOM
identifiers, provenance) with the layer's current data. Any other image layer is written from its
data and placement: for NIfTI/DICOM its axes are reversed to ``[i, j, k]`` and its data → world map
becomes the affine (world axes taken as S, A, R); for FITS it is written as stored with no WCS.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from napari.layers import Layer

import sciSR

from ._layers import layer_to_sciimage

MEDICAL_SUFFIXES = (".nii", ".nii.gz", ".dcm")


def write_image(path: str, data: Any, meta: dict[str, Any]) -> list[str]:
    """Write one image layer; napari calls this from File ▸ Save and ``viewer.layers.save``.

    Parameters
    ----------
    path : str
        Output ``.nii``, ``.nii.gz``, ``.fits``, ``.fit``, ``.fits.gz``, or ``NAME.dcm`` for a DICOM
        series folder ``NAME`` (napari needs a suffix to choose a writer; the folder drops it).
    data : array-like
        The layer data.
    meta : dict
        The layer state napari passes (scale, translate, affine, metadata, ...).

    Returns
    -------
    list of str
        The written file or folder. napari has asked about replacing it, so it is overwritten.
    """
    layer = Layer.create(data, meta, "image")
    name = os.path.basename(path).lower()
    img, _ = layer_to_sciimage(layer, with_affine=name.endswith(MEDICAL_SUFFIXES))
    target = Path(path)
    if name.endswith(".dcm"):
        target = target.with_suffix("")
    return [os.fspath(sciSR.write(img, target, overwrite=True))]
