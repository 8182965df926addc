"""PNG (Pillow) and TIFF (tifffile) reader and writer.

Arrays are ``[y, x]``, ``[z, y, x]`` for stacks, with colour/channel/time last. Values are float32
in the stored units (no rescaling to [0, 1]). Physical pixel size comes from OME-XML or ImageJ
metadata in TIFF files; PNG carries none that we trust (pHYs is usually a screen DPI), so PNG
spacing is 1.0.
"""

from __future__ import annotations

import os
import struct
import warnings
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
from PIL import Image

from sciSR.errors import SciSRError
from sciSR.image import SciImage, infer_domain
from sciSR.io.validate import check_memory, check_spacing, check_values, reader_boundary

SUFFIXES: tuple[str, ...] = (".png", ".tif", ".tiff", ".ome.tif", ".ome.tiff")

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_TIFF_MAGICS = (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+")  # classic TIFF and BigTIFF, both byte orders
_PNG_ERRORS = (OSError, SyntaxError, ValueError, EOFError, zlib.error, Image.DecompressionBombError)
_TIFF_ERRORS = (tifffile.TiffFileError, OSError, ValueError, EOFError, KeyError, struct.error)

# Length units as written by ImageJ / OME, normalised; "pixel" means uncalibrated.
_UNIT_ALIASES = {
    "micron": "µm", "microns": "µm", "um": "µm", "\u03bcm": "µm", "\\u00b5m": "µm",
    "pixel": None, "pixels": None, "": None,
}
_METRES = {"pm": 1e-12, "nm": 1e-9, "µm": 1e-6, "mm": 1e-3, "cm": 1e-2, "m": 1.0}
_IMAGEJ_DTYPES = (np.uint8, np.uint16, np.float32)
# tifffile axis letters: depth-like axes become z, these name a channel axis.
_DEPTH_AXES = "ZIQ"
_CHANNEL_NAMES = {"C": "channel", "T": "time", "S": "samples"}
# Samples per pixel of each PNG colour type (grey, RGB, palette, grey+alpha, RGBA).
_PNG_SAMPLES = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
# Physical pixel sizes in TIFF metadata, in any length unit: wider than the medical mm range, since
# units run from nm to m.
_TIFF_SPACING = (1e-12, 1e12)


def _magic(path: str | os.PathLike) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(33)  # PNG signature + IHDR chunk
    except OSError:
        return b""


def sniff(path: str | os.PathLike) -> bool:
    """Whether ``path`` starts with the PNG signature or a TIFF/BigTIFF header (``II*``/``MM*``)."""
    head = _magic(path)
    return head.startswith(_PNG_MAGIC) or head[:4] in _TIFF_MAGICS


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0]}" if text else type(err).__name__


def _unit(name: Any) -> str | None:
    """A length unit from file metadata, normalised (``"micron"`` → ``"µm"``); None if uncalibrated."""
    if name is None:
        return None
    text = str(name).strip()
    return _UNIT_ALIASES.get(text.lower(), text)


def _in_unit(value: float, unit: str | None, target: str | None) -> float:
    """``value`` (in ``unit``) expressed in ``target`` when both are known lengths."""
    if unit == target or unit not in _METRES or target not in _METRES:
        return value
    return value * _METRES[unit] / _METRES[target]


# --------------------------------------------------------------------------------------------- PNG


def _png_rows_bytes(width: int, height: int, bits_per_pixel: int, interlaced: bool) -> int:
    """Bytes of filtered scanlines (one filter byte per row) the IHDR promises, all Adam7 passes summed."""
    passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
    if not interlaced:
        passes = [(0, 0, 1, 1)]
    total = 0
    for x0, y0, dx, dy in passes:
        w, h = (width - x0 + dx - 1) // dx, (height - y0 + dy - 1) // dy
        if w > 0 and h > 0:
            total += h * (1 + (w * bits_per_pixel + 7) // 8)
    return total


def _check_png(path: Path, head: bytes) -> None:
    """Refuse a PNG whose image data are shorter than its IHDR says (Pillow pads the rest with zeros)."""
    width, height = struct.unpack(">II", head[16:24])
    bit_depth, colour_type, interlace = head[24], head[25], head[28]
    if width == 0 or height == 0 or colour_type not in _PNG_SAMPLES:
        raise SciSRError(f"IHDR declares a {width} x {height} image of colour type {colour_type}: not a valid PNG",
                         path)
    check_memory((height, width, _PNG_SAMPLES[colour_type]), 4, path, field="IHDR width/height")
    expected = _png_rows_bytes(width, height, bit_depth * _PNG_SAMPLES[colour_type], interlace == 1)
    inflate, got, ended = zlib.decompressobj(), 0, False
    with open(path, "rb") as f:
        f.seek(8)
        while not ended:
            size_type = f.read(8)
            if len(size_type) < 8:
                break
            size, kind = struct.unpack(">I4s", size_type)
            if kind == b"IEND":
                ended = True
            elif kind == b"IDAT":
                chunk = f.read(size)
                if len(chunk) < size:
                    raise SciSRError(f"IDAT chunk cut short: {len(chunk)} of {size} bytes (truncated file)", path)
                # max_length: a decompression bomb cannot inflate past what the IHDR promises.
                got += len(inflate.decompress(chunk, max(expected - got, 0) + 1))
                f.seek(4, os.SEEK_CUR)
            else:
                f.seek(size + 4, os.SEEK_CUR)
    if got < expected:
        raise SciSRError(
            f"image data end early: IHDR declares {width} x {height} pixels ({expected} bytes of scanlines) but "
            f"the IDAT chunks hold {got} (truncated file)", path,
        )


def _read_png(path: Path) -> tuple[np.ndarray, dict[str, Any]]:
    head = _magic(path)
    if len(head) < 33 or head[12:16] != b"IHDR":
        raise SciSRError("damaged PNG: no IHDR chunk after the signature", path)
    _check_png(path, head)
    bit_depth, colour_type = head[24], head[25]
    if bit_depth == 16 and colour_type in (2, 4, 6):
        # Pillow silently reduces 16-bit colour PNG to 8 bits: refuse rather than lose precision.
        raise SciSRError("16-bit colour PNG is not supported (Pillow reduces it to 8 bits); convert to TIFF", path)
    notes: list[str] = []
    with Image.open(path) as im:
        im.load()
        if getattr(im, "n_frames", 1) > 1:
            notes.append(f"animated PNG: read the first of {im.n_frames} frames")
        frame = im
        if im.mode == "P":
            frame = im.convert("RGBA" if "transparency" in im.info else "RGB")
            notes.append(f"palette image expanded to {frame.mode}")
        array = np.asarray(frame)
        mode = frame.mode
    meta: dict[str, Any] = {
        "format": "png",
        # Pillow gives 16-bit grey as int32 ("I") or uint16 ("I;16"): the file holds uint16.
        "stored_dtype": "uint16" if bit_depth == 16 else "bool" if mode == "1" else "uint8",
        "notes": notes,
    }
    if array.ndim == 3:
        meta["channel_axis"] = 2
        meta["channel_name"] = mode.lower()
    return array, meta


def _write_png(img: SciImage, path: Path) -> None:
    if img.spatial_ndim != 2:
        raise SciSRError(f"PNG holds 2D images, this one has {img.spatial_ndim} spatial axes; write TIFF", path)
    channels = img.array.shape[-1] if img.channel_axis is not None else 1
    if channels > 4:
        raise SciSRError(f"PNG holds 1 to 4 channels (grey, LA, RGB, RGBA), got {channels}", path)
    dtype = _storage_dtype(img, "png")
    if dtype == np.uint16 and channels > 1:
        raise SciSRError("16-bit colour PNG cannot be written with Pillow; write TIFF instead", path)
    data = _to_dtype(img.array, dtype, path)
    if img.channel_axis is not None and channels == 1:
        data = data[..., 0]
    Image.fromarray(data).save(path, format="PNG")


# -------------------------------------------------------------------------------------------- TIFF


def _ome_pixels(tif: tifffile.TiffFile) -> dict[str, Any]:
    images = tifffile.xml2dict(tif.ome_metadata).get("OME", {}).get("Image", {})
    first = images[0] if isinstance(images, list) else images
    return first.get("Pixels", {})


def _physical_size(tif: tifffile.TiffFile, axes: str) -> tuple[dict[str, float], str | None, list[str]]:
    """Pixel size per axis letter (X, Y, Z) in one unit, that unit, and notes."""
    sizes: dict[str, float] = {}
    units: dict[str, str | None] = {}
    notes: list[str] = []
    if tif.is_ome:
        pixels = _ome_pixels(tif)
        for ax in "XYZ":
            if f"PhysicalSize{ax}" in pixels:
                sizes[ax] = float(pixels[f"PhysicalSize{ax}"])
                # The OME schema's default length unit is the micrometre.
                units[ax] = _unit(pixels.get(f"PhysicalSize{ax}Unit", "µm"))
    elif tif.is_imagej:
        ij = tif.imagej_metadata or {}
        page = tif.pages.first
        if "XResolution" in page.tags:
            # TIFF resolution is pixels per unit; ImageJ keeps the unit in its description.
            xres, yres = page.resolution
            if xres > 0 and yres > 0:
                sizes["X"], sizes["Y"] = 1.0 / xres, 1.0 / yres
        if "Z" in axes and ij.get("spacing"):
            sizes["Z"] = float(ij["spacing"])
        units = dict.fromkeys(sizes, _unit(ij.get("unit")))
    unit = units.get("X", units.get("Y", units.get("Z")))
    converted = {}
    for ax, value in sizes.items():
        if units[ax] != unit and not (units[ax] in _METRES and unit in _METRES):
            notes.append(f"PhysicalSize{ax} is in {units[ax]}, X in {unit}: kept the number unconverted")
        converted[ax] = _in_unit(value, units[ax], unit)
    return converted, unit, notes


def _read_tiff(path: Path) -> tuple[np.ndarray, dict[str, Any], tuple[float, ...]]:
    notes: list[str] = []
    with tifffile.TiffFile(path) as tif:
        if not tif.series:
            raise SciSRError("damaged TIFF: no readable image pages", path)
        series = tif.series[0]
        if len(tif.series) > 1:
            notes.append(f"file holds {len(tif.series)} series (pages of different shapes); read the first")
        if len(series.levels) > 1:
            notes.append(f"pyramid of {len(series.levels)} levels; read the full-resolution level")
        # float32 is what the reader hands out: refuse a header that claims more than memory holds first.
        check_memory(series.shape, 4, path, field="TIFF ImageWidth/ImageLength/pages")
        array = series.asarray()
        if array.size == 0:  # ImageWidth/ImageLength 0 (checked here: the axis handling below needs pixels)
            raise SciSRError(f"the image is empty (shape {array.shape}, TIFF ImageWidth/ImageLength): no pixel "
                             "to read", path)
        axes = series.axes.upper()
        photometric = series.keyframe.photometric
        sizes, unit, size_notes = _physical_size(tif, axes)
        notes.extend(size_notes)
        if series.kind == "generic" and "I" in axes:
            notes.append(f"{array.shape[axes.index('I')]} pages of the same shape stacked as z")
    if array.dtype.kind == "c":
        raise SciSRError("complex-valued TIFF is not supported", path)
    if sizes:
        check_spacing([sizes[ax] for ax in "ZYX" if ax in sizes], path, field="physical pixel size (OME/ImageJ)",
                      unit=unit or "units", limits=_TIFF_SPACING)
    # Drop singleton axes (OME/ImageJ write T, C, Z even when they are 1), except Y and X.
    keep = [i for i, ax in enumerate(axes) if array.shape[i] > 1 or ax in "YX"]
    array = array.reshape([array.shape[i] for i in keep])
    axes = "".join(axes[i] for i in keep)
    depth = [ax for ax in axes if ax in _DEPTH_AXES]
    extra = [ax for ax in axes if ax not in "YX" and ax not in _DEPTH_AXES]
    if len(depth) > 1 or len(extra) > 1:
        raise SciSRError(
            f"TIFF axes {axes!r}: only one depth axis (Z) and one channel/time axis are supported", path
        )
    order = [*depth, "Y", "X", *extra]
    array = np.transpose(array, [axes.index(ax) for ax in order])
    meta: dict[str, Any] = {"format": "tiff", "notes": notes, "spacing_unit": unit if sizes else None}
    if extra:
        meta["channel_axis"] = array.ndim - 1
        name = _CHANNEL_NAMES.get(extra[0], "channel")
        if extra[0] == "S" and photometric == tifffile.PHOTOMETRIC.RGB and array.shape[-1] in (3, 4):
            name = "rgb" if array.shape[-1] == 3 else "rgba"
        meta["channel_name"] = name
    # Generic page stacks (I, Q) have no physical z size: sizes has no "Z" for them.
    spacing = tuple(sizes.get(ax, 1.0) for ax in ("ZYX" if depth else "YX"))
    return array, meta, spacing


def _write_tiff(img: SciImage, path: Path) -> None:
    if not 2 <= img.spatial_ndim <= 3:
        raise SciSRError(f"TIFF output holds 2D or 3D images, this one has {img.spatial_ndim} spatial axes", path)
    dtype = _storage_dtype(img, "tiff")
    data = _to_dtype(img.array, dtype, path)
    axes = "ZYX"[3 - img.spatial_ndim :]
    spacing = dict(zip(axes, img.spacing, strict=True))
    name = img.meta.get("channel_name")
    rgb = img.channel_axis is not None and name in ("rgb", "rgba") and data.shape[-1] in (3, 4)
    if img.channel_axis is not None and not rgb:
        # ImageJ/OME order is T Z C Y X: time goes first, other channels just before Y.
        if name == "time":
            data, axes = np.moveaxis(data, -1, 0), "T" + axes
        else:
            data, axes = np.moveaxis(data, -1, -3), axes[:-2] + "CYX"
    elif rgb:
        axes += "S"
    unit = img.meta.get("spacing_unit") or ("mm" if img.affine is not None else None)
    ome = path.name.lower().endswith((".ome.tif", ".ome.tiff"))
    imagej = not ome and data.dtype in _IMAGEJ_DTYPES and (not rgb or (data.dtype == np.uint8 and data.shape[-1] == 3))
    photometric = "rgb" if rgb else "minisblack"
    calibrated = unit is not None or any(v != 1.0 for v in spacing.values())
    if imagej:
        metadata: dict[str, Any] = {"axes": axes}
        if unit is not None:
            metadata["unit"] = "micron" if unit == "µm" else unit  # ImageJ's own spelling of µm
        if "Z" in spacing:
            metadata["spacing"] = spacing["Z"]
        resolution = (1.0 / spacing["X"], 1.0 / spacing["Y"]) if calibrated else None
        tifffile.imwrite(path, data, imagej=True, photometric=photometric, resolution=resolution, metadata=metadata)
    else:
        metadata = {"axes": axes}
        if calibrated:
            for ax, value in spacing.items():
                metadata[f"PhysicalSize{ax}"] = value
                # "pixel" is the OME length unit for "not calibrated"; omitting it would mean µm.
                metadata[f"PhysicalSize{ax}Unit"] = unit or "pixel"
        tifffile.imwrite(path, data, ome=True, photometric=photometric, metadata=metadata)


# ------------------------------------------------------------------------------------------ shared


def _storage_dtype(img: SciImage, fmt: str) -> np.dtype:
    """The dtype to write: the stored one where the format can hold it, else uint8/uint16 by range."""
    # Only raster values are in stored units; NIfTI/DICOM/FITS values are rescaled (HU, scl_slope,
    # BSCALE), so their stored integer type would clip or round them.
    stored = img.meta.get("stored_dtype") if img.meta.get("format") in ("png", "tiff") else None
    try:
        kind = np.dtype(stored) if stored is not None else None
    except TypeError:
        kind = None
    if kind is None and img.array.dtype.kind in "uif":
        kind = img.array.dtype  # data made in memory: its own dtype is what was meant
    if kind is not None:
        if kind in (np.uint8, np.uint16):
            return np.dtype(kind)
        if fmt == "tiff" and kind.kind == "f":
            return np.dtype(np.float32)
        if fmt == "tiff" and kind.kind in "ui" and kind.itemsize <= 4:
            return np.dtype(kind)
    finite = img.array[np.isfinite(img.array)] if img.array.dtype.kind == "f" else img.array
    return np.dtype(np.uint16 if finite.size and float(finite.max()) > 255 else np.uint8)


def _to_dtype(array: np.ndarray, dtype: np.dtype, path: Path) -> np.ndarray:
    """Round and clip to an integer ``dtype`` (warning what was clipped); floats become float32."""
    if dtype.kind == "f":
        return np.asarray(array, dtype=np.float32)
    info = np.iinfo(dtype)
    values = np.rint(np.asarray(array, dtype=np.float64))
    bad = ~np.isfinite(values)
    clipped = int(np.count_nonzero((values < info.min) | (values > info.max)))
    if clipped or bad.any():
        warnings.warn(
            f"{path.name}: {clipped} values clipped to the {dtype.name} range [{info.min}, {info.max}]"
            + (f", {int(bad.sum())} NaN/inf set to {info.min}" if bad.any() else ""),
            stacklevel=3,
        )
    values[bad] = info.min
    return np.clip(values, info.min, info.max).astype(dtype)


def read(path: str | os.PathLike, *, domain: str | None = None, series: Any = None) -> SciImage:
    """Read a PNG or TIFF (incl. OME-TIFF and ImageJ hyperstacks).

    Parameters
    ----------
    path : str or os.PathLike
        PNG or TIFF file (the format is decided by content).
    domain : str, optional
        Force the domain; default ``"ct"`` when values look like HU (min ≤ −500), else ``"generic"``.
    series : object, optional
        Ignored: the first TIFF series is read (a note says when there are more).

    Returns
    -------
    SciImage
        ``array``: float32 ``[y, x]`` or ``[z, y, x]`` (multi-page / Z stacks), channel axis last
        (``meta["channel_name"]``: ``"rgb"``, ``"rgba"``, ``"la"``, ``"channel"``, ``"time"``);
        values in stored units (8-bit 0–255, 16-bit 0–65535). ``spacing``: physical pixel size per
        spatial axis from OME ``PhysicalSize*`` or ImageJ resolution/``spacing`` in
        ``meta["spacing_unit"]`` (e.g. ``"µm"``), else 1.0. ``affine`` is None. ``meta``: ``format``
        (``"png"``/``"tiff"``), ``source``, ``units`` (None), ``stored_dtype``, ``notes``,
        ``provenance``.

    Raises
    ------
    SciSRError
        Not a PNG/TIFF, damaged file, 16-bit colour PNG, or more than one channel-like TIFF axis.
    """
    del series  # only the first TIFF series is read
    path = Path(path)
    with reader_boundary("PNG/TIFF", path):
        return _read(path, domain)


def _read(path: Path, domain: str | None) -> SciImage:
    """:func:`read` without the exception boundary."""
    head = _magic(path)
    try:
        if head.startswith(_PNG_MAGIC):
            array, meta = _read_png(path)
            spacing: tuple[float, ...] = (1.0, 1.0)
        elif head[:4] in _TIFF_MAGICS:
            array, meta, spacing = _read_tiff(path)
        else:
            raise SciSRError("not a PNG or TIFF file (no PNG signature or TIFF header)", path)
    except SciSRError:
        raise
    except _PNG_ERRORS + _TIFF_ERRORS as err:
        kind = "PNG" if head.startswith(_PNG_MAGIC) else "TIFF"
        raise SciSRError(f"damaged or unsupported {kind} ({_one_line(err)})", path) from err
    meta.setdefault("stored_dtype", array.dtype.name)
    array = check_values(array.astype(np.float32), path)
    meta.update({"source": os.fspath(path), "units": None, "provenance": []})
    return SciImage(array=array, spacing=spacing, domain=domain or infer_domain(array, "generic"), meta=meta)


def write(img: SciImage, path: str | os.PathLike) -> None:
    """Write ``img`` as PNG or TIFF, chosen by the suffix of ``path``.

    Parameters
    ----------
    img : SciImage
        ``[y, x]`` or ``[z, y, x]`` (TIFF only), channel axis last.
    path : str or os.PathLike
        Destination ending in ``.png``, ``.tif``/``.tiff`` or ``.ome.tif``/``.ome.tiff``
        (a temporary path owned by :func:`sciSR.io.atomic.atomic_output`).

    Notes
    -----
    Data type: for images read from PNG/TIFF, ``meta["stored_dtype"]`` when the format holds it
    (PNG: uint8/uint16; TIFF: also other integers up to 32 bits, and float → float32). For other
    images (NIfTI, DICOM and FITS values are rescaled, so their stored type does not apply) and
    arrays made in memory, the array's own dtype decides the same way. Otherwise (e.g. float data
    to PNG): uint16 if the maximum exceeds 255, else uint8. Integer output is rounded and clipped
    to the type's range, with a warning counting the clipped values (NaN/inf become the minimum).

    TIFF keeps the physical pixel size: ImageJ metadata (resolution tags, ``unit``, z ``spacing``)
    for uint8/uint16/float32 data that ImageJ can hold, OME-XML ``PhysicalSize*`` otherwise and for
    ``.ome.tif`` names. The unit is ``meta["spacing_unit"]``, ``"mm"`` for images with an affine.
    PNG writes no spacing (and 16-bit PNG only for greyscale).
    """
    path = Path(path)
    png = path.name.lower().endswith(".png")
    try:
        _write_png(img, path) if png else _write_tiff(img, path)
    except (ValueError, TypeError, OSError) as err:
        raise SciSRError(f"cannot write {'PNG' if png else 'TIFF'} ({_one_line(err)})", path) from err
