"""SciImage ↔ napari layers: the display convention, contrast limits and the placement of results.

Display convention
------------------
napari puts a slider on every leading array axis and draws the last two, with world axis 0 as "z",
then "y" (down the screen) and "x" (across). A layer's data axis ``n`` is drawn along world axis ``n``;
napari cannot reslice a grid into another orientation.

- **Medical images** (a SciImage with an affine, nibabel order ``array[i, j, k]`` = x first): the layer
  data is the array with its axes reversed, ``[k, j, i]`` (a view, no copy). The slider runs over the
  slices and each plane shows rows down and columns across — a DICOM series looks as in a DICOM viewer.
  A channel/time axis (last in the SciImage) becomes the first slider.
- **World coordinates** of a medical layer are millimetres (the image's length unit) along the patient
  axes nearest to the layer's axes, signed so that they grow with the voxel index, like nibabel's
  ``aff2axcodes`` — e.g. ``("S", "P", "L")`` for a standard axial DICOM series, so the coordinates are
  DICOM's patient (LPS) coordinates. The codes are the layer's ``axis_labels``. An axis-aligned grid
  gets ``scale`` = spacing and ``translate`` = position of the first voxel centre; an oblique volume
  gets napari's ``affine`` (the rotation is kept, slicing stays orthogonal to the nearest axis). A lone
  2D slice tilted out of its nearest patient plane is drawn on its own pixel grid (the full affine
  stays in the metadata). Two medical layers overlay when they share the axis codes.
- **Other images** (FITS, rasters) are shown as stored, ``[y, x]``, with ``scale`` = spacing (deg per
  pixel for sky images) and no translate. napari puts row 0 at the top, so a FITS frame appears
  flipped vertically compared with DS9 (North down for a standard WCS); positions are unaffected.

The SciImage travels in ``layer.metadata[SCISR_KEY]`` with the permutation from its axes to the
layer's axes in ``layer.metadata[ORDER_KEY]``, so the widget and the writer work on the original
geometry (affine, WCS, units, FITS header).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np

import sciSR
from sciSR.geometry import upscale_translate

if TYPE_CHECKING:
    from napari.layers import Image

SCISR_KEY = "scisr_image"
ORDER_KEY = "scisr_axes"
# Relative size of an off-diagonal term below which a grid counts as axis-aligned (DICOM direction
# cosines are stored with ~6 decimals).
_ALIGNED_TOL = 1e-4
# Anatomical code per RAS axis for a positive / negative direction.
_CODES = (("R", "L"), ("A", "P"), ("S", "I"))
# Soft-tissue CT window (W 400, L 40) in HU, used when the file names no window of its own.
_CT_WINDOW = (-160.0, 240.0)
# Contrast statistics use at most this many voxels (a strided sample) to stay fast on big volumes.
_MAX_SAMPLES = 1_000_000
# How many input voxels of context a preview slab keeps on each side of the current plane.
SLAB_HALF_WIDTH = 2

LayerDataTuple = tuple[Any, dict[str, Any], str]


def display_order(img: sciSR.SciImage) -> tuple[int, ...]:
    """Permutation from SciImage axes to layer axes: ``layer.data = img.array.transpose(order)``.

    The channel axis goes first (a slider); spatial axes are reversed for medical images.
    """
    spatial = list(range(img.spatial_ndim))
    if img.affine is not None:
        spatial.reverse()
    channel = [img.array.ndim - 1] if img.channel_axis is not None else []
    return tuple(channel + spatial)


def _nearest_patient_axes(directions: np.ndarray) -> tuple[list[int], list[float]]:
    """RAS axis and sign nearest to each column of ``directions`` (3 × n), each axis used once.

    Greedy on the largest remaining cosine, which is nibabel's ``io_orientation`` for any grid that is
    not close to 45° between two patient axes.
    """
    cosines = np.abs(directions / np.linalg.norm(directions, axis=0))
    axes = [-1] * directions.shape[1]
    for _ in range(directions.shape[1]):
        row, col = np.unravel_index(np.argmax(cosines), cosines.shape)
        axes[col] = int(row)
        cosines[row, :] = -1.0
        cosines[:, col] = -1.0
    signs = [1.0 if directions[a, c] >= 0 else -1.0 for c, a in enumerate(axes)]
    return axes, signs


def _length_unit(img: sciSR.SciImage) -> str | None:
    """Unit of the layer's world coordinates (``None``: pixels)."""
    if img.meta.get("spacing_unit"):
        return str(img.meta["spacing_unit"])
    if img.affine is not None:
        return "mm"
    return "deg" if img.wcs is not None else None


def layer_geometry(img: sciSR.SciImage) -> dict[str, Any]:
    """napari layer keyword arguments that place ``img`` (see the module notes for the convention).

    Returns
    -------
    dict
        ``scale`` and ``translate`` or ``affine``, plus ``axis_labels`` (patient axis codes for
        medical images) and ``units`` when known. Entries follow the layer's axes.
    """
    n_spatial = img.spatial_ndim
    channel = int(img.channel_axis is not None)
    unit = _length_unit(img)
    kwargs: dict[str, Any] = {}
    channel_label = [str(img.meta.get("channel_name", "channel"))] if channel else []
    if img.affine is None:
        kwargs["scale"] = [1.0] * channel + [float(s) for s in img.spacing]
        kwargs["translate"] = [0.0] * (channel + n_spatial)
    else:
        axes, signs = _nearest_patient_axes(img.affine[:3, :n_spatial])
        # Rows: the chosen patient axes (signed); columns: the SciImage axes; both reversed for display.
        rows = np.array([sign * img.affine[a] for a, sign in zip(axes, signs, strict=True)])[::-1]
        linear, origin = rows[:, :n_spatial][:, ::-1], rows[:, 3]
        spacing = np.linalg.norm(img.affine[:3, :n_spatial], axis=0)[::-1]
        aligned = np.all(np.abs(linear - np.diag(np.diag(linear))) <= _ALIGNED_TOL * spacing)
        # A 2D slice tilted out of the displayed patient plane would shrink if projected onto it.
        tilted = not np.allclose(np.linalg.norm(linear, axis=0), spacing, rtol=_ALIGNED_TOL)
        if aligned or tilted:
            kwargs["scale"] = [1.0] * channel + [float(s) for s in spacing]
            kwargs["translate"] = [0.0] * channel + [float(t) for t in origin]
        else:
            matrix = np.eye(channel + n_spatial + 1)
            matrix[channel:-1, channel:-1] = linear
            matrix[channel:-1, -1] = origin
            kwargs["affine"] = matrix
        codes = [_CODES[a][0 if s > 0 else 1] for a, s in zip(axes, signs, strict=True)]
        kwargs["axis_labels"] = channel_label + codes[::-1]
    if unit is not None:
        kwargs["units"] = ["pixel"] * channel + [unit] * n_spatial
    return kwargs


def _sample(values: np.ndarray) -> np.ndarray:
    flat = values.ravel()[:: max(1, values.size // _MAX_SAMPLES)]
    return flat[np.isfinite(flat)]


def _dicom_window(meta: dict[str, Any]) -> tuple[float, float] | None:
    """The first WindowCenter/WindowWidth pair of the DICOM header the reader kept, if any."""
    template = meta.get("dicom_template")
    if template is None:
        return None
    center, width = template.get("WindowCenter"), template.get("WindowWidth")
    if center is None or width is None:
        return None
    # Both may be multi-valued (several windows): the first is the scanner's default.
    center, width = float(np.ravel(center)[0]), float(np.ravel(width)[0])
    return (center - width / 2.0, center + width / 2.0) if width > 0 else None


def contrast_limits(img: sciSR.SciImage) -> tuple[float, float]:
    """Display range for ``img``.

    CT: the file's own window (DICOM WindowCenter/Width) when present, else the soft-tissue window
    −160..240 HU when the values span it; sky: astropy's ZScale; otherwise the 0.5–99.5 percentiles.
    """
    values = _sample(img.array)
    if values.size == 0:
        return (0.0, 1.0)
    if img.domain == "sky":
        from astropy.visualization import ZScaleInterval

        low, high = ZScaleInterval().get_limits(values)
    else:
        low, high = np.percentile(values, [0.5, 99.5])
        if img.domain == "ct":
            window = _dicom_window(img.meta)
            if window is not None:
                low, high = window
            elif low <= _CT_WINDOW[0] and high >= _CT_WINDOW[1]:
                low, high = _CT_WINDOW
    if not high > low:
        low, high = float(values.min()), float(values.max())
        high = high if high > low else low + 1.0
    return (float(low), float(high))


def image_layer(img: sciSR.SciImage, name: str | None = None, **extra: Any) -> LayerDataTuple:
    """A napari layer data tuple for ``img``: data in display order, geometry, contrast, metadata.

    Parameters
    ----------
    img : sciSR.SciImage
        The image; kept in the layer's metadata.
    name : str, optional
        Layer name; default the source file name.
    **extra
        Further layer keyword arguments (they override the computed ones).
    """
    order = display_order(img)
    source = img.meta.get("source")
    kwargs: dict[str, Any] = {
        "name": name or (os.path.basename(os.path.normpath(source)) if source else "sciSR image"),
        "colormap": "gray",
        "contrast_limits": contrast_limits(img),
        "metadata": {
            SCISR_KEY: img,
            ORDER_KEY: order,
            "affine": img.affine,
            "wcs": img.wcs,
            "spacing": img.spacing,
            "domain": img.domain,
            "units": img.meta.get("units"),
            "source": source,
        },
        **layer_geometry(img),
        **extra,
    }
    return img.array.transpose(order), kwargs, "image"


def _inverse(order: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(int(i) for i in np.argsort(order))


def _layer_array(layer: Image) -> np.ndarray:
    """Full-resolution data of a layer (level 0 of a multiscale pyramid)."""
    return np.asarray(layer.data[0] if layer.multiscale else layer.data)


def _physical_linear(layer: Image) -> np.ndarray:
    """``rotate · shear · diag(scale)`` of a layer: its data → physical map before ``affine``.

    napari composes data → world as ``affine ∘ (translate + rotate·shear·scale)``; the product is
    recovered from the public ``data_to_world`` (differences, so a grid-mode offset cancels).
    """
    origin = np.asarray(layer.data_to_world(np.zeros(layer.ndim)), dtype=np.float64)
    columns = [np.asarray(layer.data_to_world(e), dtype=np.float64) - origin for e in np.eye(layer.ndim)]
    return np.linalg.solve(layer.affine.linear_matrix, np.stack(columns, axis=1))


def layer_matrix(layer: Image) -> np.ndarray:
    """The layer's data → world map as an ``(ndim + 1, ndim + 1)`` matrix (grid mode ignored)."""
    physical = np.eye(layer.ndim + 1)
    physical[:-1, :-1] = _physical_linear(layer)
    physical[:-1, -1] = layer.translate
    return layer.affine.affine_matrix @ physical


def layer_to_sciimage(layer: Image, *, with_affine: bool = False) -> tuple[sciSR.SciImage, tuple[int, ...]]:
    """The SciImage behind an image layer and the permutation to the layer's axes.

    Parameters
    ----------
    layer : napari.layers.Image
        A layer from the sciSR reader or widget (its SciImage is reused with the layer's current
        data) or any other image layer.
    with_affine : bool
        For a 2D/3D layer without a SciImage: build a medical image — axes reversed back to
        ``[i, j, k]`` and the layer's data → world map as the affine, its world axes taken as
        (S, A, R) — instead of a generic one with spacing only.

    Returns
    -------
    (sciSR.SciImage, tuple of int)
        The image and ``order`` with ``layer data == image.array.transpose(order)``.
    """
    data = _layer_array(layer)
    img = layer.metadata.get(SCISR_KEY)
    if isinstance(img, sciSR.SciImage):
        order = tuple(layer.metadata.get(ORDER_KEY, display_order(img)))
        if img.array.transpose(order).shape == data.shape:
            return img.replace(array=data.transpose(_inverse(order))), order
    source = layer.source.path
    meta: dict[str, Any] = {"source": os.fspath(source)} if source else {}
    if layer.rgb:
        meta["channel_axis"] = data.ndim - 1
    spacing = tuple(abs(float(s)) for s in layer.scale)
    if not (with_affine and not layer.rgb and layer.ndim <= 3):
        return sciSR.SciImage.from_array(data, spacing=spacing, meta=meta), tuple(range(data.ndim))
    n = layer.ndim
    order = tuple(range(n))[::-1]
    reverse = np.eye(n + 1)[[*order, n]]
    matrix = reverse @ layer_matrix(layer) @ reverse
    affine = np.eye(4)
    affine[:n, :n] = matrix[:n, :n]
    affine[:n, 3] = matrix[:n, n]
    return sciSR.SciImage.from_array(data.transpose(order), spacing=spacing[::-1], affine=affine, meta=meta), order


def upscaled_placement(layer: Image, factors: tuple[float, ...], start: tuple[int, ...] | None = None
                       ) -> dict[str, Any]:
    """Layer keyword arguments that put an upscaled layer (or upscaled crop of it) on the input.

    Old index ``i`` and new index ``i'`` of one point satisfy ``i = (i' + 0.5)/s − 0.5`` (docs/architecture.md §3), so
    the new scale is ``scale/s`` and the first new voxel centre lies ``(1/s − 1)/2`` old voxels before
    the first old one (:func:`sciSR.geometry.upscale_translate`); a crop starting at ``start`` adds
    ``start`` old voxels. The offset is added to the input's translate through its rotate·shear;
    rotate, shear and affine are kept.

    Parameters
    ----------
    layer : napari.layers.Image
        The input layer.
    factors : tuple of float
        Factor ``n'/n`` per layer axis (1 on channel axes; not an integer when a spacing chose the grid).
    start : tuple of int, optional
        First input voxel of the upscaled crop, per layer axis.
    """
    scale = np.asarray(layer.scale, dtype=np.float64)
    begin = np.zeros(layer.ndim) if start is None else np.asarray(start, dtype=np.float64)
    offset = np.asarray(upscale_translate(scale, factors)) + scale * begin
    rotate_shear = _physical_linear(layer) / scale[np.newaxis, :]
    return {
        "scale": scale / np.asarray(factors, dtype=np.float64),
        "translate": np.asarray(layer.translate, dtype=np.float64) + rotate_shear @ offset,
        "rotate": layer.rotate,
        "shear": layer.shear,
        "affine": layer.affine.affine_matrix,
        "axis_labels": layer.axis_labels,
        "units": layer.units,
    }
