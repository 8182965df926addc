"""NIfTI-1 / NIfTI-2 reader and writer (nibabel).

Arrays stay as stored (``array[i, j, k]``, no reorientation); ``img.affine`` is nibabel's best affine
(sform when ``sform_code > 0``, else qform). A 4th axis (time, or any non-spatial series) becomes the
channel axis. On write, the (upscaled) affine goes into BOTH the qform and the sform so every reader,
whichever form it prefers, puts a voxel at the same place.
"""

from __future__ import annotations

import gzip
import itertools
import json
import math
import os
import warnings
import zlib
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from nibabel.filebasedimages import ImageFileError
from nibabel.spatialimages import HeaderDataError

from sciSR.errors import SciSRError
from sciSR.image import SciImage, infer_domain
from sciSR.io.validate import check_affine, check_memory, check_spacing, check_values, reader_boundary

SUFFIXES: tuple[str, ...] = (".nii", ".nii.gz")

_GZIP_MAGIC = b"\x1f\x8b"
# Errors nibabel, gzip and numpy raise on damaged or foreign files.
_READ_ERRORS = (ImageFileError, HeaderDataError, OSError, EOFError, ValueError, zlib.error)
_DESCRIP_BYTES = 80
# Length units that other readers record in meta["spacing_unit"], as NIfTI xyz unit names.
_SPACE_UNITS = {"mm": "mm", "µm": "micron", "um": "micron", "micron": "micron", "m": "meter", "meter": "meter"}
# ... and back: NIfTI xyz unit → meta["spacing_unit"] (None when the file says "unknown").
_SPACING_UNITS = {"mm": "mm", "micron": "µm", "meter": "m"}


def _opener(path: str | os.PathLike) -> Any:
    """``gzip.open`` for gzipped files, else ``open`` (decided by content, not suffix)."""
    with open(path, "rb") as f:
        return gzip.open if f.read(2) == _GZIP_MAGIC else open


def _version(path: str | os.PathLike) -> int | None:
    """NIfTI version (1 or 2) from ``sizeof_hdr`` and the single-file magic, or None."""
    try:
        with _opener(path)(path, "rb") as f:
            head = f.read(548)
    except (OSError, EOFError, zlib.error):
        return None
    if len(head) < 348:
        return None
    for order in ("<", ">"):
        sizeof_hdr = int(np.frombuffer(head[:4], dtype=f"{order}i4")[0])
        if sizeof_hdr == 348 and head[344:347] == b"n+1":
            return 1
        if sizeof_hdr == 540 and head[4:7] == b"n+2":
            return 2
    return None


def sniff(path: str | os.PathLike) -> bool:
    """Whether ``path`` holds a single-file NIfTI-1 or NIfTI-2 image (plain or gzipped).

    Parameters
    ----------
    path : str or os.PathLike
        Any file.

    Returns
    -------
    bool
        True when ``sizeof_hdr`` is 348 (magic ``n+1``) or 540 (magic ``n+2``), either byte order.
    """
    return _version(path) is not None


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0]}" if text else type(err).__name__


def _load(path: Path) -> tuple[nib.Nifti1Image | nib.Nifti2Image, Any]:
    """The nibabel image and the header exactly as stored (nibabel's own checks repair some fields)."""
    version = _version(path)
    if version is None:
        raise SciSRError("not a NIfTI-1/2 file (no sizeof_hdr 348/540 with magic n+1/n+2)", path)
    klass = nib.Nifti1Image if version == 1 else nib.Nifti2Image
    with _opener(path)(path, "rb") as f:
        # check=False: nibabel's load replaces a zero pixdim by 1 (with only a log line).
        raw_header = klass.header_class.from_fileobj(f, check=False)
        _check_dims(raw_header, path)
        if not path.name.lower().endswith(SUFFIXES):
            # Found by content (sniff); nibabel's load() decides by suffix, so read the bytes directly.
            f.seek(0)
            return klass.from_bytes(f.read()), raw_header
    return nib.load(path), raw_header


def _check_dims(header: Any, path: Path) -> None:
    """Refuse a ``dim`` field nibabel would turn into an OverflowError, an empty array or a MemoryError."""
    dim = [int(d) for d in header["dim"]]
    ndim = dim[0]
    if not 1 <= ndim <= 7:
        raise SciSRError(f"dim[0] is {ndim}: a NIfTI image has 1 to 7 dimensions (corrupt header)", path)
    shape = dim[1 : 1 + ndim]
    if any(n < 1 for n in shape):
        raise SciSRError(f"dim[1:{1 + ndim}] = {shape} holds a size below 1: empty or corrupt header", path)
    dtype = header.get_data_dtype()
    # The array handed out is float32 per value; a structured type (RGB24) gives one per field.
    check_memory(shape, 4 * max(1, len(dtype.names or ())), path, field="dim")


def _pixels(nii: Any, path: Path) -> tuple[np.ndarray, str | None]:
    """float32 values, colour types (RGB24, RGBA32) as a last axis of their components, and its name."""
    dtype = nii.header.get_data_dtype()
    if not dtype.names:
        return nii.get_fdata(caching="unchanged", dtype=np.float32), None
    if len(nii.shape) > 3:
        raise SciSRError(f"{dtype.names} colour NIfTI with {len(nii.shape)} dimensions: only 2D/3D colour is read",
                         path)
    stored = np.asanyarray(nii.dataobj)
    return np.stack([stored[name].astype(np.float32) for name in dtype.names], axis=-1), "".join(
        dtype.names).lower()


def _descrip(header: Any) -> str:
    # descrip is a C string: text after the first NUL is not part of it.
    raw = bytes(header["descrip"]).split(b"\0", 1)[0]
    return raw.decode("utf-8", errors="replace").strip()


def _sidecar_profile(path: Path, spacing_mm: np.ndarray, to_mm: float, notes: list[str]) -> dict[str, Any]:
    """``meta`` entries for the slice thickness a BIDS sidecar ``<stem>.json`` beside the image states.

    Parameters
    ----------
    path : pathlib.Path
        The NIfTI file (``<stem>.nii`` or ``<stem>.nii.gz``).
    spacing_mm : numpy.ndarray
        ``(3,)`` voxel size per spatial axis, mm.
    to_mm : float
        Millimetres per unit of the image's spacing.
    notes : list of str
        Receives a line for a sidecar that cannot be used or disagrees with the image.

    Returns
    -------
    dict
        Empty without a usable ``SliceThickness`` (mm); else ``slice_thickness`` in the spacing's units,
        ``slice_thickness_source`` ``"bids"`` and ``slice_axis`` (from ``SliceEncodingDirection`` ``i``/``j``/``k``
        with an optional ``-``; ``k``, as dcm2niix stores slices, when absent). A sidecar is auxiliary: what
        is wrong with it is a note, never an error.
    """
    name = path.name
    stem = name[: -len(".nii.gz")] if name.lower().endswith(".nii.gz") else path.stem
    sidecar = path.with_name(f"{stem}.json")
    if not sidecar.is_file():
        return {}
    try:
        fields = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        notes.append(f"BIDS sidecar {sidecar.name} is not readable JSON ({_one_line(err)}); ignored")
        return {}
    if not isinstance(fields, dict) or fields.get("SliceThickness") is None:
        return {}
    thickness = fields["SliceThickness"]
    if isinstance(thickness, bool) or not isinstance(thickness, int | float) or not (
            math.isfinite(thickness) and thickness > 0):
        notes.append(f"BIDS sidecar {sidecar.name}: SliceThickness {thickness!r} is not a positive number of mm; "
                     "ignored")
        return {}
    direction = fields.get("SliceEncodingDirection", "k")
    axis = {"i": 0, "j": 1, "k": 2}.get(str(direction).rstrip("-"))
    if axis is None:
        notes.append(f"BIDS sidecar {sidecar.name}: SliceEncodingDirection {direction!r} is not i, j or k; "
                     "slice thickness ignored")
        return {}
    between = fields.get("SpacingBetweenSlices")
    if isinstance(between, int | float) and not math.isclose(between, spacing_mm[axis], rel_tol=1e-2):
        notes.append(f"BIDS sidecar {sidecar.name}: SpacingBetweenSlices {between:g} mm disagrees with the "
                     f"{spacing_mm[axis]:g} mm voxel size along axis {axis}; the voxel size gives the spacing")
    return {"slice_thickness": float(thickness) / to_mm, "slice_thickness_source": "bids", "slice_axis": axis}


def read(path: str | os.PathLike, *, domain: str | None = None, series: Any = None) -> SciImage:
    """Read a NIfTI-1/2 file.

    Parameters
    ----------
    path : str or os.PathLike
        ``.nii`` or ``.nii.gz`` (or any name, if the content is NIfTI).
    domain : str, optional
        Force the domain; default ``"ct"`` when the values look like HU (min ≤ −500), else ``"mri"``.
    series : object, optional
        Ignored (a NIfTI file holds one image).

    Returns
    -------
    SciImage
        ``array``: float32 ``[i, j, k]`` (or ``[i, j]``; ``[i, j, k, t]`` for 4D with
        ``meta["channel_axis"] = 3`` and ``meta["channel_name"] = "time"``), ``scl_slope``/``scl_inter``
        applied. ``affine``: nibabel's best affine (voxel → RAS+ in ``meta["units"][0]``, normally mm).
        ``spacing``: norms of the affine's spatial columns (= pixdim unless the affine shears).
        ``meta``: ``format``, ``source``, ``units`` (xyz, t unit names), ``spacing_unit`` (``"mm"``,
        ``"µm"``, ``"m"`` or None), ``nifti_header`` (a copy),
        ``stored_dtype``, ``intent`` ((code name, params, name)), ``descrip``, ``qform_code``,
        ``sform_code``, ``notes``, ``provenance``; for a volume with a BIDS sidecar ``<stem>.json`` beside it
        that gives ``SliceThickness`` (mm), ``slice_thickness`` (in the spacing's units; it may differ from
        the slice spacing: a gap or overlap), ``slice_thickness_source`` (``"bids"``) and ``slice_axis`` (from
        ``SliceEncodingDirection``, default 2).

    Raises
    ------
    SciSRError
        Unreadable file, more than 4 dimensions, a zero/negative pixdim on a spatial axis without an
        sform (with an sform, the sform gives the voxel size and a note says so), a singular affine,
        voxel sizes outside 1e-6..1e6 (mm), sizes in ``dim`` below 1 or larger than half the available
        memory, an image without a finite value. RGB24/RGBA32 data are read as a last channel axis
        (``meta["channel_name"]`` ``"rgb"``/``"rgba"``).
    """
    del series  # one image per file
    path = Path(path)
    with reader_boundary("NIfTI", path):
        return _read(path, domain)


def _read(path: Path, domain: str | None) -> SciImage:
    """:func:`read` without the exception boundary."""
    try:
        nii, raw_header = _load(path)
        header = nii.header
        ndim = len(nii.shape)
        if not 2 <= ndim <= 4:
            raise SciSRError(f"{ndim}D NIfTI images are not supported (2D, 3D or 4D with time last)", path)
        n_spatial = min(ndim, 3)
        pixdim = np.asarray(raw_header["pixdim"][1 : 1 + n_spatial], dtype=np.float64)
        bad = [a for a in range(n_spatial) if not pixdim[a] > 0]
        if bad and int(raw_header["sform_code"]) == 0:
            raise SciSRError(
                f"zero pixdim (or negative/NaN) on spatial axis {bad}: pixdim[1:{1 + n_spatial}] = "
                f"{pixdim.tolist()} and no sform, so the voxel size is unknown",
                path,
            )
        affine = np.asarray(nii.affine, dtype=np.float64)
        norms = np.linalg.norm(affine[:3, :n_spatial], axis=0)
        source = "sform (srow_x/y/z)" if int(raw_header["sform_code"]) > 0 else "pixdim"
        if not (np.all(np.isfinite(affine)) and np.all(norms > 0)):
            raise SciSRError(f"the qform/sform affine (from {source}) is singular or not finite", path)
        # The limits are in mm; "unknown" units are taken as mm, the NIfTI default.
        to_mm = {"meter": 1e3, "micron": 1e-3}.get(header.get_xyzt_units()[0], 1.0)
        check_spacing(norms * to_mm, path, field=source)
        check_affine(affine, path, field=f"the {source} affine", n_spatial=n_spatial)
        array, colour = _pixels(nii, path)
        check_values(array, path)
    except SciSRError:
        raise
    except _READ_ERRORS as err:
        raise SciSRError(f"not a readable NIfTI file ({_one_line(err)})", path) from err

    qform_code, sform_code = int(header["qform_code"]), int(header["sform_code"])
    notes: list[str] = []
    if bad:
        notes.append(f"pixdim {pixdim.tolist()} has zero/negative entries; the sform gives the voxel size")
    if qform_code == 0 and sform_code == 0:
        notes.append("qform_code and sform_code are 0: affine from pixdim only, orientation unknown")
    meta: dict[str, Any] = {
        "format": "nifti",
        "source": os.fspath(path),
        "units": header.get_xyzt_units(),
        "spacing_unit": _SPACING_UNITS.get(header.get_xyzt_units()[0]),
        "nifti_header": header.copy(),
        "stored_dtype": np.dtype(header.get_data_dtype()).name,
        "intent": header.get_intent(),
        "descrip": _descrip(header),
        "qform_code": qform_code,
        "sform_code": sform_code,
        "notes": notes,
        "provenance": [],
    }
    if n_spatial == 3:
        meta.update(_sidecar_profile(path, norms * to_mm, to_mm, notes))
    if ndim == 4:
        meta["channel_axis"] = 3
        meta["channel_name"] = "time"
    if colour is not None:
        meta["channel_axis"] = array.ndim - 1
        meta["channel_name"] = colour
    return SciImage(
        array=array,
        affine=affine,
        domain=domain or infer_domain(array, "mri"),
        meta=meta,
    )


def _data_for_nifti(img: SciImage, path: Path) -> np.ndarray:
    """float32 data with the spatial axes first (padded to 3 when there is a channel axis)."""
    data = np.asarray(img.array, dtype=np.float32)
    if img.spatial_ndim > 3 or img.spatial_ndim < 1:
        raise SciSRError(f"NIfTI holds 1 to 3 spatial axes, the image has {img.spatial_ndim}", path)
    if img.channel_axis is not None and img.spatial_ndim < 3:
        # NIfTI's 4th dimension is the only non-spatial one: pad the spatial axes to three.
        spatial = img.spatial_shape + (1,) * (3 - img.spatial_ndim)
        data = data.reshape(*spatial, data.shape[-1])
    return data


def _affine_for_nifti(img: SciImage, path: Path) -> np.ndarray:
    if img.affine is None:
        spacing = list(img.spacing)[:3] + [1.0] * (3 - min(len(img.spacing), 3))
        return np.diag([*spacing, 1.0])
    affine = np.asarray(img.affine, dtype=np.float64)
    if not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) == 0:
        raise SciSRError("the affine is singular or not finite; cannot write a NIfTI qform/sform", path)
    return affine


def _xyzt_units(img: SciImage) -> tuple[str, str]:
    units = img.meta.get("units")
    # meta["units"] means value units (BUNIT, HU) for other formats: use it only as a NIfTI pair.
    if (
        isinstance(units, tuple | list)
        and len(units) == 2
        and units[0] in nib.nifti1.unit_codes.value_set("label")
        and units[1] in nib.nifti1.unit_codes.value_set("label")
    ):
        return str(units[0]), str(units[1])
    space = _SPACE_UNITS.get(str(img.meta.get("spacing_unit")), "mm" if img.affine is not None else "unknown")
    time = "sec" if img.meta.get("channel_name") == "time" else "unknown"
    return space, time


def _sr_note(img: SciImage) -> str:
    """"SR x2 cubic" for the last provenance step that names a model, or ""."""
    for step in reversed(img.meta.get("provenance") or []):
        if isinstance(step, dict) and step.get("model"):
            scale = [int(s) for s in step.get("scale") or []]
            model = os.path.basename(str(step["model"]))
            if not scale:
                return f"SR {model}"
            factor = str(scale[0]) if len(set(scale)) == 1 else "x".join(map(str, scale))
            return f"SR x{factor} {model}"
    return ""


def _descrip_bytes(base: str, note: str) -> bytes:
    """``base; note`` in at most 80 bytes; the SR note wins over the original text."""
    note_b = note.encode("utf-8")[:_DESCRIP_BYTES]
    if not note_b:
        return base.encode("utf-8")[:_DESCRIP_BYTES]
    sep = b"; " if base else b""
    room = _DESCRIP_BYTES - len(note_b) - len(sep)
    base_b = base.encode("utf-8")[: max(room, 0)].decode("utf-8", errors="ignore").encode("utf-8")
    return (base_b + sep + note_b if base_b else note_b)[:_DESCRIP_BYTES]


def _renormalise_quaternion(header: Any) -> None:
    """Keep ``|(b, c, d)| <= 1`` so nibabel can read the qform back.

    For 180° rotations (an x-flipped image tilted about x, common in FSL output) ``a = 0`` and the
    stored ``(b, c, d)`` can come out a few ulp longer than 1; NIfTI-2's float64 tolerance in
    nibabel's ``get_qform`` then rejects it ("w2 should be positive").
    """
    bcd = np.array([header["quatern_b"], header["quatern_c"], header["quatern_d"]], dtype=np.float64)
    norm = float(np.linalg.norm(bcd))
    if norm > 1.0:
        header["quatern_b"], header["quatern_c"], header["quatern_d"] = bcd / norm


def _qform_deviation(qform: np.ndarray, affine: np.ndarray, shape: tuple[int, ...]) -> float:
    """Largest distance (world units) between qform and affine positions of the image's outer corners."""
    extent = [(-0.5, n - 0.5) for n in shape] + [(0.0,)] * (3 - len(shape))
    corners = np.array(list(itertools.product(*extent)), dtype=np.float64)
    corners = np.column_stack([corners, np.ones(len(corners))])
    return float(np.abs((qform - affine)[:3] @ corners.T).max())


def write(img: SciImage, path: str | os.PathLike) -> None:
    """Write ``img`` as NIfTI (``.nii`` or ``.nii.gz``, from the suffix of ``path``).

    Parameters
    ----------
    img : SciImage
        Image with up to 3 spatial axes (+ a channel/time axis written as the 4th dimension).
        ``img.affine`` (voxel → RAS+ mm) is written; without one, ``diag(spacing)``.
    path : str or os.PathLike
        Destination (a temporary path owned by :func:`sciSR.io.atomic.atomic_output`).

    Notes
    -----
    - The header starts from ``meta["nifti_header"]`` when present (NIfTI-2 stays NIfTI-2; a
      dimension above 32767 forces NIfTI-2); data are float32 without scaling (nibabel resets
      ``scl_slope``/``scl_inter``).
    - qform and sform are both set to the affine with the input's codes; a missing code takes the
      other form's code, else 1 (scanner). A quaternion cannot hold shears: when the qform would
      differ from the affine by more than 1/1000 voxel anywhere in the image, the affine goes to
      the sform only (``qform_code = 0``) with a warning. pixdim follows the affine's column norms;
      the 4th pixdim (TR) and xyzt units, intent and extensions are kept.
    - Slice-timing fields are cleared when the spatial shape changed (they described the old slices).
    - ``descrip`` gets ``"SR x<scale> <model>"`` from the last provenance step that names a model,
      truncated to 80 bytes.
    """
    path = Path(path)
    data = _data_for_nifti(img, path)
    affine = _affine_for_nifti(img, path)
    source_header = img.meta.get("nifti_header")
    big = max(data.shape) > np.iinfo(np.int16).max
    klass = nib.Nifti2Image if big or isinstance(source_header, nib.Nifti2Header) else nib.Nifti1Image
    header = (
        klass.header_class.from_header(source_header) if source_header is not None else klass.header_class()
    )
    if source_header is not None and tuple(source_header.get_data_shape()[:3]) != data.shape[:3]:
        for key in ("slice_start", "slice_end", "slice_code", "slice_duration"):
            header[key] = 0
    header.set_data_dtype(np.float32)
    nii = klass(data, affine, header=header)

    q = int(img.meta.get("qform_code") or 0)
    s = int(img.meta.get("sform_code") or 0)
    nii.set_sform(affine, code=s or q or 1)
    nii.set_qform(affine, code=q or s or 1)
    hdr = nii.header
    _renormalise_quaternion(hdr)
    deviation = _qform_deviation(hdr.get_qform(), affine, data.shape[:3])
    voxel = float(np.linalg.norm(affine[:3, :3], axis=0).min())
    if deviation > 1e-3 * voxel:
        # A quaternion cannot hold shears: rather no qform than one that disagrees with the sform.
        hdr["qform_code"] = 0
        warnings.warn(
            f"{path.name}: the affine has shears (a qform would be off by {deviation:.3g} within the image); "
            "written to the sform only (qform_code 0)",
            stacklevel=2,
        )
    hdr.set_xyzt_units(*_xyzt_units(img))
    intent = img.meta.get("intent")
    if intent:
        code, params, name = intent
        hdr.set_intent(code, tuple(params), name)
    hdr["descrip"] = _descrip_bytes(str(img.meta.get("descrip") or ""), _sr_note(img))
    try:
        nib.save(nii, os.fspath(path))
    except (OSError, ImageFileError, HeaderDataError) as err:
        raise SciSRError(f"cannot write NIfTI ({_one_line(err)})", path) from err
