"""DICOM series reader and derived-series writer.

Reading turns one series (a file, or a folder of files) into a :class:`~sciSR.image.SciImage` laid out
the nibabel/MONAI way: ``array[column, row, slice]`` (each slice is pydicom's ``pixel_array`` of shape
``(rows, columns)`` transposed), slices ordered along the slice normal, and an affine mapping
``(i, j, k, 1)`` to RAS+ millimetres. Several images at one position (cine phases, echoes, diffusion
weightings) become a last channel axis. Enhanced multi-frame objects take their geometry and rescale
from the per-frame / shared functional groups. A folder holding several series is read one series at a
time (``series=``) or whole (``series="all"``, one image per series; :func:`list_series` lists them from
the headers alone).

Writing creates a NEW derived series (new Series/SOP Instance UIDs, ImageType ``DERIVED\\SECONDARY``)
whose geometry comes only from the image's affine and shape; patient, study and frame-of-reference
identity come from the template of the series that was read, if any. Each instance is checked against
its IOD and the value rules before it is written (:mod:`sciSR.io.dicom_iod`, ``docs/architecture.md §4.1``).
"""

from __future__ import annotations

import copy
import datetime
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, overload

import numpy as np
import pydicom
from pydicom.datadict import dictionary_VR
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.pixels import apply_modality_lut, pixel_array
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
    MRImageStorage,
    SecondaryCaptureImageStorage,
    generate_uid,
)
from pydicom.valuerep import format_number_as_ds

from sciSR.errors import SciSRError
from sciSR.image import SciImage, infer_domain
from sciSR.io.atomic import MARKER
from sciSR.io.dicom_iod import attribute_types, check_instance, invalid_value, strict_writing
from sciSR.io.validate import (
    check_affine,
    check_memory,
    check_spacing,
    check_values,
    finite_floats,
    printable,
    reader_boundary,
)
from sciSR.version import __version__

SUFFIXES: tuple[str, ...] = (".dcm", ".dicom", ".ima")

# LPS (DICOM patient space) <-> RAS+ (nibabel/MONAI world); the flip is its own inverse.
_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
# What may vary between images at one slice position, in the order used to sort them.
_ORDER_KEYS = ("TriggerTime", "EchoTime", "DiffusionBValue")
# Positions closer than this along the normal are the same slice (cine phases, echoes, ...).
_SAME_POSITION_MM = 1e-2
# Slice gaps may deviate from the mean spacing by this fraction (IPP strings are rounded) ...
_SPACING_RTOL = 1e-3
# ... or by this much, whichever is larger (many scanners write IPP with 3 decimals).
_SPACING_ATOL_MM = 1e-3
# SpacingBetweenSlices and the step between positions agree within this fraction (DS strings are rounded).
_HEADER_RTOL = 1e-2
# Direction cosines that differ by less than this are the same orientation.
_ORIENTATION_TOL = 1e-3
# Off-normal drift of the stack per mm along the normal above which it is a gantry tilt (~0.06°).
_TILT_TAN = 1e-3

# Template attributes copied into a derived series: identity and acquisition context that stays true
# after resampling. Everything tied to the old pixel grid (geometry, overlays, icons, private tags that
# may hold positions) is deliberately left out.
_KEEP = (
    # Patient
    "PatientName", "PatientID", "IssuerOfPatientID", "PatientBirthDate", "PatientSex", "PatientAge",
    "PatientSize", "PatientWeight", "PatientIdentityRemoved", "DeidentificationMethod",
    # General Study
    "StudyInstanceUID", "StudyDate", "StudyTime", "ReferringPhysicianName", "StudyID", "AccessionNumber",
    "StudyDescription",
    # General Series (what does not describe the new series itself)
    "PatientPosition", "BodyPartExamined", "Laterality", "ProtocolName",
    # Frame of Reference
    "FrameOfReferenceUID", "PositionReferenceIndicator",
    # General Equipment
    "Manufacturer", "InstitutionName", "StationName", "ManufacturerModelName", "DeviceSerialNumber",
    # Acquisition context (CT and MR image modules)
    "AcquisitionNumber", "KVP", "ConvolutionKernel", "XRayTubeCurrent", "ExposureTime", "Exposure",
    "ScanningSequence", "SequenceVariant", "ScanOptions", "MRAcquisitionType", "SequenceName",
    "RepetitionTime", "EchoTime", "InversionTime", "EchoTrainLength", "FlipAngle", "NumberOfAverages",
    "ImagingFrequency", "ImagedNucleus", "MagneticFieldStrength", "PixelBandwidth", "TriggerTime",
    "DiffusionBValue", "ContrastBolusAgent",
    # Display window (in calibrated units, which the writer keeps)
    "WindowCenter", "WindowWidth",
)
# Type 1 attributes of the MR Image IOD (DICOM PS3.3 C.8.3.1) that an enhanced or missing template lacks:
# the standard's terms for "research mode" and "no variant" stand in, and DerivationDescription says so.
_MR_PLACEHOLDERS = {"ScanningSequence": "RM", "SequenceVariant": "NONE"}
# Image Type Value 3 that the CT and MR Image modules require (PS3.3 C.8.2.1.1.1, C.8.3.1.1.1) when the
# template gives none: AXIAL is any cross-section for CT (oblique included), OTHER the MR catch-all.
_IMAGE_FLAVOUR = {"CT": "AXIAL", "MR": "OTHER"}


def sniff(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a DICOM Part 10 file (``"DICM"`` after the 128-byte preamble)."""
    try:
        with open(path, "rb") as f:
            head = f.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:] == b"DICM"


def study_uid(path: str | os.PathLike) -> str | None:
    """The StudyInstanceUID of a DICOM Part 10 file, read from its header only.

    Two files of one study come from the same patient and session: a crop, reformat or neighbouring slice
    of one another, which a held-out test or validation split must keep on one side.

    Returns
    -------
    str or None
        None for a folder, a file that is not DICOM (:func:`sniff`), or a header without the UID.
    """
    if not Path(path).is_file() or not sniff(path):
        return None
    return str(_read_header(Path(path)).get("StudyInstanceUID", "")) or None


# --------------------------------------------------------------------------------------------- reading


@dataclass
class _Frame:
    """One 2D image: a single-frame file or one frame of a multi-frame file, with its geometry."""

    path: Path
    header: Dataset
    index: int | None  # frame number in a multi-frame file, else None
    position: np.ndarray | None  # ImagePositionPatient, LPS mm
    orientation: np.ndarray | None  # ImageOrientationPatient (6,)
    pixel_spacing: tuple[float, float] | None  # (row spacing, column spacing) mm
    thickness: float | None
    between: float | None  # SpacingBetweenSlices, mm (used only when positions are missing)
    rescale: Dataset  # holds RescaleSlope/Intercept (or a Modality LUT) for this frame
    order: dict[str, float] = field(default_factory=dict)
    instance: int = 0


def _one_line(err: BaseException) -> str:
    return " ".join(f"{type(err).__name__}: {err}".split())


def _item(ds: Dataset | None, keyword: str) -> Dataset | None:
    seq = None if ds is None else ds.get(keyword)
    return seq[0] if seq else None


def _floats(value: Any, path: Path, field: str, count: int | None = None) -> np.ndarray | None:
    return None if value is None or value == "" else finite_floats(value, path, field=field, count=count)


def _number(value: Any, path: Path, field: str) -> float | None:
    if value is None or value == "":
        return None
    return float(finite_floats(value, path, field=field, count=1)[0])


def _get(ds: Dataset, keyword: str, path: Path) -> Any:
    """``ds.get(keyword)``, with a value pydicom cannot convert refused by name (not a raw ValueError)."""
    try:
        return ds.get(keyword)
    except (ValueError, TypeError, OverflowError, KeyError) as err:
        raise SciSRError(f"{keyword} cannot be parsed ({printable(' '.join(str(err).split()))})", path) from None


def _functional(groups: list[Dataset], sequence: str, keyword: str, path: Path) -> Any:
    """First value of ``keyword`` inside ``sequence`` of the per-frame, then the shared functional groups."""
    for group in groups:
        item = _item(group, sequence)
        if item is not None and _get(item, keyword, path) not in (None, ""):
            return item.get(keyword)
    return None


def _frames_of(path: Path, ds: Dataset) -> list[_Frame]:
    """Split a header into its 2D images with per-image geometry (classic or enhanced multi-frame)."""
    n_frames = int(_number(_get(ds, "NumberOfFrames", path), path, "NumberOfFrames") or 1)
    if n_frames < 1:
        raise SciSRError(f"NumberOfFrames is {n_frames}: no image", path)
    shared = _item(ds, "SharedFunctionalGroupsSequence")
    per_frame = ds.get("PerFrameFunctionalGroupsSequence") or []
    top_orientation = _floats(_get(ds, "ImageOrientationPatient", path), path, "ImageOrientationPatient", 6)
    top_position = _floats(_get(ds, "ImagePositionPatient", path), path, "ImagePositionPatient", 3)
    # RT dose / NM: frame positions along the normal.
    offsets = _floats(_get(ds, "GridFrameOffsetVector", path), path, "GridFrameOffsetVector")
    frames = []
    for i in range(n_frames):
        groups = [g for g in (per_frame[i] if i < len(per_frame) else None, shared) if g is not None]
        orientation = _floats(_functional(groups, "PlaneOrientationSequence", "ImageOrientationPatient", path),
                              path, "ImageOrientationPatient", 6)
        if orientation is None:
            orientation = top_orientation
        position = _floats(_functional(groups, "PlanePositionSequence", "ImagePositionPatient", path),
                           path, "ImagePositionPatient", 3)
        if position is None and top_position is not None:
            if n_frames == 1:
                position = top_position
            elif offsets is not None and orientation is not None and len(offsets) == n_frames:
                position = top_position + offsets[i] * np.cross(orientation[:3], orientation[3:])
        spacing = _functional(groups, "PixelMeasuresSequence", "PixelSpacing", path) or _get(ds, "PixelSpacing", path)
        thickness = _functional(groups, "PixelMeasuresSequence", "SliceThickness", path) or _get(
            ds, "SliceThickness", path)
        between = _functional(groups, "PixelMeasuresSequence", "SpacingBetweenSlices", path) or _get(
            ds, "SpacingBetweenSlices", path)
        rescale = next((item for g in groups if (item := _item(g, "PixelValueTransformationSequence"))), ds)
        if per_frame or shared is not None:
            order = {
                "TriggerTime": _functional(groups, "CardiacSynchronizationSequence", "NominalCardiacTriggerDelayTime",
                                           path),
                "EchoTime": _functional(groups, "MREchoSequence", "EffectiveEchoTime", path),
                "DiffusionBValue": _functional(groups, "MRDiffusionSequence", "DiffusionBValue", path),
            }
            instance = i + 1
        else:
            order = {key: _get(ds, key, path) for key in _ORDER_KEYS}
            instance = int(_number(_get(ds, "InstanceNumber", path), path, "InstanceNumber") or 0)
        frames.append(_Frame(
            path=path,
            header=ds,
            index=i if n_frames > 1 else None,
            position=position,
            orientation=orientation,
            pixel_spacing=None if spacing in (None, "") else tuple(_floats(spacing, path, "PixelSpacing", 2)),
            thickness=_number(thickness, path, "SliceThickness"),
            between=_number(between, path, "SpacingBetweenSlices"),
            rescale=rescale,
            order={k: _number(v, path, k) for k, v in order.items() if v not in (None, "")},
            instance=instance,
        ))
    return frames


def _read_header(path: Path) -> Dataset:
    try:
        return pydicom.dcmread(path, stop_before_pixels=True)
    except InvalidDicomError as err:
        raise SciSRError(f"not a DICOM file ({_one_line(err)})", path) from None
    except Exception as err:  # truncated or corrupt headers surface as many exception types
        raise SciSRError(f"corrupt or truncated DICOM header ({_one_line(err)})", path) from None


def _walk(folder: Path) -> Iterator[Path]:
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            path = Path(root) / name
            # sciSR's own mark on the folders it writes is not a file of the series; a FIFO or device
            # in the folder would block the header sniffing forever.
            if name != MARKER and path.is_file():
                yield path


def _collect(path: Path, notes: list[str]) -> list[tuple[Path, Dataset]]:
    """Headers of the image objects at ``path`` (a file, or a folder searched recursively)."""
    if path.is_dir():
        files = list(_walk(path))
        candidates = [p for p in files if sniff(p)]
        skipped = len(files) - len(candidates)
        if skipped:
            notes.append(f"skipped {skipped} file(s) that are not DICOM")
        if not candidates:
            raise SciSRError("folder holds no DICOM files", path)
    else:
        candidates = [path]
    headers, seen, non_images, duplicates = [], set(), [], 0
    for p in candidates:
        ds = _read_header(p)
        if "Rows" not in ds or "Columns" not in ds:
            # pydicom returns whatever precedes the end of a cut file: an image whose header stops
            # early must not pass for a non-image object (a missing slice would go unnoticed).
            sop_class = ds.get("SOPClassUID") or ds.file_meta.get("MediaStorageSOPClassUID")
            if len(ds) == 0 or "Image Storage" in getattr(sop_class, "name", ""):
                raise SciSRError("corrupt or truncated DICOM file: the header ends before the image", p)
            # A damaged SOPClassUID holds arbitrary bytes; the message must stay one printable line.
            non_images.append(printable(getattr(sop_class, "name", None) or "unknown object (corrupt?)"))
            continue
        uid = ds.get("SOPInstanceUID")
        if uid and uid in seen:
            duplicates += 1
            continue
        seen.add(uid)
        headers.append((p, ds))
    kinds = ", ".join(sorted(set(non_images)))
    if non_images:
        notes.append(f"skipped {len(non_images)} DICOM object(s) without an image: {kinds}")
    if duplicates:
        notes.append(f"skipped {duplicates} duplicate file(s) (same SOPInstanceUID)")
    if not headers:
        raise SciSRError(f"no DICOM image found, only objects without pixel data: {kinds}", path)
    return headers


def _is_localizer(ds: Dataset) -> bool:
    return "LOCALIZER" in [str(v).upper() for v in (ds.get("ImageType") or [])]


def _series_number(ds: Dataset) -> int | None:
    number = ds.get("SeriesNumber")
    return None if number in (None, "") else int(number)


def _describe(uid: str, headers: list[Dataset]) -> str:
    ds = headers[0]
    number = _series_number(ds)
    return (f"{uid or '<no SeriesInstanceUID>'} ({str(ds.get('SeriesDescription') or '')!r}, "
            f"number {number if number is not None else '-'}, {len(headers)} images)")


def _matches(selector: str | int, uid: str, ds: Dataset) -> bool:
    number = _series_number(ds)
    if isinstance(selector, int) and not isinstance(selector, bool):
        return number == selector
    text = str(selector).strip()
    return text in (uid, str(ds.get("SeriesDescription") or "")) or (text.isdigit() and number == int(text))


_Files = list[tuple[Path, Dataset]]


def _group(headers: _Files) -> dict[str, _Files]:
    """The image objects by SeriesInstanceUID, in the order first seen."""
    groups: dict[str, _Files] = {}
    for p, ds in headers:
        groups.setdefault(str(ds.get("SeriesInstanceUID") or ""), []).append((p, ds))
    return groups


def _imaging_series(groups: dict[str, _Files], notes: list[str]) -> dict[str, _Files]:
    """The series not made only of localizers (all of them when there is nothing else to read)."""
    chosen = {uid: items for uid, items in groups.items() if not all(_is_localizer(ds) for _, ds in items)}
    if not chosen:
        return groups
    if len(chosen) < len(groups):
        left = [_describe(uid, [ds for _, ds in items]) for uid, items in groups.items() if uid not in chosen]
        notes.append(f"left out localizer series: {'; '.join(left)}")
    return chosen


def _series_files(uid: str, items: _Files, n_series: int, notes: list[str]) -> _Files:
    """The files of series ``uid`` of the ``n_series`` in the folder, its localizer images left out."""
    if n_series > 1:
        notes.append(f"read series {_describe(uid, [ds for _, ds in items])} of {n_series} in the folder")
    kept = [(p, ds) for p, ds in items if not _is_localizer(ds)]
    if kept and len(kept) < len(items):
        notes.append(f"left out {len(items) - len(kept)} localizer image(s) of the series")
        return kept
    return items


def _select_series(headers: _Files, series: str | int | None, path: Path, notes: list[str]) -> _Files:
    """The files of one series, localizers left out (unless they are all there is)."""
    groups = _group(headers)
    listing = "; ".join(_describe(uid, [ds for _, ds in items]) for uid, items in groups.items())
    if series is not None:
        chosen = {uid: items for uid, items in groups.items() if _matches(series, uid, items[0][1])}
        if not chosen:
            raise SciSRError(f"no series matches series={series!r}; available: {listing}", path)
        if len(chosen) > 1:
            raise SciSRError(f"series={series!r} matches {len(chosen)} series; use the UID: {listing}", path)
    else:
        chosen = _imaging_series(groups, notes)
        if len(chosen) > 1:
            raise SciSRError(f"folder holds {len(chosen)} series; pass series= (UID, number or description, "
                             f"or 'all' for every series): {listing}", path)
    uid, items = next(iter(chosen.items()))
    return _series_files(uid, items, len(groups), notes)


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: pydicom Datasets are unhashable
class Series:
    """One series found by :func:`list_series`: what its headers say; its pixels are read by :meth:`read`.

    Attributes
    ----------
    path : pathlib.Path
        The file or folder the series was found in.
    uid : str
        SeriesInstanceUID (``""`` when the files carry none).
    number : int or None
        SeriesNumber.
    description : str
        SeriesDescription (``""`` when absent).
    modality : str
        Modality of its first image.
    files : tuple of (pathlib.Path, pydicom.Dataset)
        Its image objects (localizer images left out) with their headers (no pixel data).
    notes : tuple of str
        What reading the folder left out or assumed, copied into ``meta["notes"]`` of the image.
    """

    path: Path
    uid: str
    number: int | None
    description: str
    modality: str
    files: tuple[tuple[Path, Dataset], ...] = field(repr=False)
    notes: tuple[str, ...] = field(repr=False)

    @property
    def label(self) -> str:
        """``series <number or UID>`` and the description, as error messages name the series."""
        name = f"series {self.number if self.number is not None else self.uid or '<no SeriesInstanceUID>'}"
        return f"{name} ({self.description!r})" if self.description else name

    def read(self, *, domain: str | None = None) -> SciImage:
        """The series as a :class:`~sciSR.image.SciImage`, as :func:`read` with ``series=`` this one returns it.

        Raises
        ------
        SciSRError
            As :func:`read`; the message starts with :attr:`label`.
        """
        try:
            with reader_boundary("DICOM", self.path):
                return _image(self.path, list(self.files), list(self.notes), domain)
        except SciSRError as err:
            raise SciSRError(f"{self.label}: {err.message}", err.path) from None


def list_series(path: str | os.PathLike) -> list[Series]:
    """The series of a DICOM file or folder, from their headers (no pixel data is decoded).

    Parameters
    ----------
    path : str or os.PathLike
        A DICOM file or a folder searched recursively, as for :func:`read`.

    Returns
    -------
    list of Series
        Ordered by SeriesNumber (series without one last), then SeriesInstanceUID. Series made only of
        localizers are left out (unless they are all there is), as :func:`read` does; each series' notes
        say so.

    Raises
    ------
    SciSRError
        Not DICOM, corrupt or truncated headers, no image in the folder.
    """
    path = Path(path)
    with reader_boundary("DICOM", path):
        notes: list[str] = []
        groups = _group(_collect(path, notes))
        chosen = _imaging_series(groups, notes)
        found = []
        for uid, items in chosen.items():
            own = list(notes)
            files = _series_files(uid, items, len(groups), own)
            first = items[0][1]
            found.append(Series(path=path, uid=uid, number=_series_number(first),
                                description=str(first.get("SeriesDescription") or ""),
                                modality=str(first.get("Modality") or ""), files=tuple(files), notes=tuple(own)))
    return sorted(found, key=lambda s: (s.number is None, s.number or 0, s.uid))


@dataclass
class _Stack:
    """Frames arranged as [slice][channel] with the geometry of the volume."""

    grid: list[list[_Frame]]
    affine_lps: np.ndarray
    channel_name: str | None
    channel_values: list[dict[str, float]]


def _unit(v: np.ndarray, what: str, path: Path) -> np.ndarray:
    norm = float(np.linalg.norm(v))
    if not math.isfinite(norm) or norm < 0.5:
        raise SciSRError(f"invalid ImageOrientationPatient {what} direction {v.tolist()}", path)
    return v / norm


def _orientation(
    frames: list[_Frame], required: bool, path: Path, notes: list[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row and column direction cosines and the slice normal (LPS), one for the whole series."""
    found = [f.orientation for f in frames if f.orientation is not None]
    if not found and required:
        raise SciSRError("ImageOrientationPatient is missing, so the slice normal is unknown", frames[0].path)
    if not found:
        notes.append("no ImageOrientationPatient: axis-aligned (LPS identity) orientation assumed")
        return np.array([1.0, 0, 0]), np.array([0, 1.0, 0]), np.array([0, 0, 1.0])
    if len(found) < len(frames):
        missing = next(f for f in frames if f.orientation is None)
        raise SciSRError("ImageOrientationPatient is missing on some images of the series", missing.path)
    first = found[0]
    if any(np.abs(o - first).max() > _ORIENTATION_TOL for o in found):
        distinct = len({tuple(np.round(o, 3)) for o in found})
        raise SciSRError(
            f"the series mixes {distinct} slice orientations (several stacks); split it or pick one stack", path
        )
    row, col = _unit(first[:3], "row", path), _unit(first[3:], "column", path)
    if abs(float(row @ col)) > _ORIENTATION_TOL:
        raise SciSRError("ImageOrientationPatient row and column directions are not perpendicular", path)
    return row, col, _unit(np.cross(row, col), "normal", path)


def _pixel_spacing(frames: list[_Frame], path: Path, notes: list[str]) -> tuple[float, float]:
    found = {f.pixel_spacing for f in frames if f.pixel_spacing is not None}
    if not found:
        imager = _get(frames[0].header, "ImagerPixelSpacing", frames[0].path)
        if imager:
            notes.append("no PixelSpacing: ImagerPixelSpacing used (detector plane, not corrected for magnification)")
            row, column = _floats(imager, frames[0].path, "ImagerPixelSpacing", 2)
            return float(row), float(column)
        notes.append("no PixelSpacing: 1 mm pixels assumed")
        return 1.0, 1.0
    if len(found) > 1:
        raise SciSRError(f"images of the series have different PixelSpacing {sorted(found)}", path)
    row, column = check_spacing(found.pop(), frames[0].path, field="PixelSpacing")
    return row, column


def _channel_order(groups: list[list[_Frame]], path: Path) -> tuple[str | None, list[dict[str, float]]]:
    """Sort the images of every position the same way; name what varies between them."""
    counts = {len(g) for g in groups}
    if len(counts) > 1:
        raise SciSRError(
            f"slice positions hold different numbers of images ({min(counts)} to {max(counts)}): incomplete "
            "cine/multi-echo series or files missing", path,
        )
    for g in groups:
        g.sort(key=lambda f: (*(f.order.get(k, -math.inf) for k in _ORDER_KEYS), f.instance, f.index or 0))
    if counts == {1}:
        return None, []
    varying = [k for k in _ORDER_KEYS if any(len({f.order.get(k) for f in g}) > 1 for g in groups)]
    values = [{k: f.order[k] for k in varying if k in f.order} for f in groups[0]]
    return "+".join(varying) or "InstanceNumber", values


def _stack(frames: list[_Frame], path: Path, notes: list[str]) -> _Stack:
    """Arrange the frames of one series on a regular grid, or refuse with the reason."""
    with_position = [f for f in frames if f.position is not None]
    if len(frames) > 1 and not with_position and len({f.path for f in frames}) > 1:
        raise SciSRError(
            "ImagePositionPatient is missing, so the slices of this multi-file series cannot be ordered",
            frames[0].path,
        )
    row, col, normal = _orientation(frames, len(frames) > 1 and bool(with_position), path, notes)
    row_spacing, col_spacing = _pixel_spacing(frames, path, notes)
    shapes = {(int(f.header.Rows), int(f.header.Columns)) for f in frames}
    if len(shapes) > 1:
        raise SciSRError(f"images of the series have different sizes (rows, columns) {sorted(shapes)}", path)

    if len(frames) == 1 or not with_position:
        header = frames[0].header
        origin = frames[0].position
        if origin is None:
            origin = _floats(_get(header, "ImagePositionPatient", frames[0].path), frames[0].path,
                             "ImagePositionPatient", 3)
        if origin is None:
            origin = np.zeros(3)
            notes.append("no ImagePositionPatient: origin at 0 mm assumed")
        if len(frames) == 1:
            step = frames[0].thickness or frames[0].between or 1.0
        else:
            step = frames[0].between or 1.0
            notes.append(
                "no per-frame positions: frames kept in stored order, slice spacing "
                + (f"{step:g} mm from SpacingBetweenSlices" if frames[0].between else "1 mm assumed")
            )
        grid = [[f] for f in frames]
        name, values = None, []
    else:
        if len(with_position) < len(frames):
            missing = next(f for f in frames if f.position is None)
            raise SciSRError("ImagePositionPatient is missing on some images of the series", missing.path)
        ordered = sorted(frames, key=lambda f: float(f.position @ normal))
        groups: list[list[_Frame]] = [[ordered[0]]]
        for f in ordered[1:]:
            if float((f.position - groups[-1][0].position) @ normal) <= _SAME_POSITION_MM:
                groups[-1].append(f)
            else:
                groups.append([f])
        for g in groups:
            spread = max(float(np.linalg.norm(f.position - g[0].position)) for f in g)
            if spread > _SAME_POSITION_MM:
                raise SciSRError(
                    f"images at the same slice location are {spread:.3g} mm apart in-plane (several stacks?)",
                    g[0].path,
                )
        name, values = _channel_order(groups, path)
        grid = groups
        origin = groups[0][0].position
        if len(groups) == 1:
            step = groups[0][0].thickness or groups[0][0].between or 1.0
        else:
            step = _check_regular(np.array([g[0].position for g in groups]), normal, path)
    affine = np.eye(4)
    affine[:3, 0] = row * col_spacing  # i (column index) moves along the row direction
    affine[:3, 1] = col * row_spacing  # j (row index) moves along the column direction
    affine[:3, 2] = normal * step
    affine[:3, 3] = origin
    return _Stack(grid, affine, name, values)


def _check_regular(positions: np.ndarray, normal: np.ndarray, path: Path) -> float:
    """Slice spacing (mm) from positions sorted along the normal; refuse tilt and uneven gaps."""
    delta = positions[-1] - positions[0]
    along = float(delta @ normal)
    off = float(np.linalg.norm(delta - along * normal))
    if off > max(_TILT_TAN * along, _SPACING_ATOL_MM):
        angle = math.degrees(math.atan2(off, along))
        raise SciSRError(
            f"gantry tilt or sheared stack: slice positions run {angle:.2f}° off the slice normal; "
            "correct the tilt first (e.g. dcm2niix) — a tilted stack is not a regular grid", path,
        )
    gaps = np.diff(positions @ normal)
    spacing = along / (len(positions) - 1)
    if np.abs(gaps - spacing).max() > max(_SPACING_RTOL * spacing, _SPACING_ATOL_MM):
        raise SciSRError(
            f"non-uniform slice spacing: gaps between slice positions range from {gaps.min():.4g} to "
            f"{gaps.max():.4g} mm (missing or overlapping slices?); select or resample the slices first", path,
        )
    return spacing


def _slice_thickness(frames: list[_Frame], step: float, notes: list[str]) -> dict[str, Any]:
    """``meta`` entries for the slice profile of a volume whose slices are ``step`` mm apart (axis 2).

    The spacing is the step between slice positions (the affine); SliceThickness, the FWHM of the slice
    profile, may be smaller (a gap between slices) or larger (overlap), and is recorded as
    ``slice_thickness`` (mm) with ``slice_thickness_source`` ``"dicom"`` and ``slice_axis`` 2
    (docs/architecture.md §4.1). SpacingBetweenSlices serves only when positions are missing; a value that
    disagrees with the positions (some scanners wrote the gap in it) is reported in a note.
    """
    wrong = sorted({f.between for f in frames if f.between and not math.isclose(f.between, step, rel_tol=_HEADER_RTOL)})
    if wrong:
        notes.append(f"SpacingBetweenSlices {wrong[0]:g} mm disagrees with the {step:g} mm between slice "
                     "positions; the positions give the spacing")
    thicknesses = sorted({f.thickness for f in frames if f.thickness})  # 0 or missing: not given
    if len(thicknesses) > 1:
        notes.append(f"SliceThickness differs between images ({thicknesses[0]:g} to {thicknesses[-1]:g} mm); "
                     "no slice thickness recorded")
    if len(thicknesses) != 1 or thicknesses[0] < 0:
        return {}
    return {"slice_thickness": thicknesses[0], "slice_thickness_source": "dicom", "slice_axis": 2}


ACQUIRED_ALL = 0.95
"""A share of measured k-space lines at or above this counts as all (rounding of matrices and FOVs)."""


def _kspace_filtering(header: Dataset) -> str | None:
    """KSpaceFiltering (0018,9064), upper case: top level, or the shared MR Modifier functional group of an
    enhanced MR file (the reconstruction window; classic MR images have no standard attribute for it)."""
    value = header.get("KSpaceFiltering")
    if value is None:
        modifier = _item(_item(header, "SharedFunctionalGroupsSequence"), "MRModifierSequence")
        value = None if modifier is None else modifier.get("KSpaceFiltering")
    text = str(value or "").strip().upper()
    return text or None


def _acquired_lines(header: Dataset) -> tuple[tuple[float, float], str] | None:
    """The share of each in-plane array axis' k-space lines the scanner measured, and a note; None: all.

    Many protocols zero-fill k-space before reconstruction (e.g. 256 × 134 lines shown as 484 × 484): the
    image is then interpolated, its outer k-space lines empty. From AcquisitionMatrix (frequency and phase
    lines), InPlanePhaseEncodingDirection, PercentPhaseFieldOfView (the phase field of view as a share of the
    frequency one, which the image spans) and PixelSpacing; array axis 0 runs along a row (Columns), axis 1
    down a column (Rows).
    """
    matrix, direction = header.get("AcquisitionMatrix"), str(header.get("InPlanePhaseEncodingDirection") or "")
    spacing = header.get("PixelSpacing")
    if matrix is None or len(matrix) != 4 or direction not in ("ROW", "COL") or spacing is None or len(spacing) != 2:
        return None
    frequency, phase = max(int(matrix[0]), int(matrix[1])), max(int(matrix[2]), int(matrix[3]))
    rows, columns = int(header.get("Rows") or 0), int(header.get("Columns") or 0)
    between_rows, between_columns = float(spacing[0]), float(spacing[1])
    percent = float(header.get("PercentPhaseFieldOfView") or 100.0)
    if min(frequency, phase, rows, columns) <= 0 or min(between_rows, between_columns, percent) <= 0:
        return None
    # COL: phase lines run down the columns (across the rows), frequency samples along each row.
    if direction == "COL":
        fov = columns * between_columns
        shares = (frequency / columns, phase * between_rows / (percent / 100 * fov))
    else:
        fov = rows * between_rows
        shares = (phase * between_columns / (percent / 100 * fov), frequency / rows)
    shares = (min(shares[0], 1.0), min(shares[1], 1.0))
    if min(shares) >= ACQUIRED_ALL:
        return None
    return shares, (f"reconstructed as {rows} x {columns} from {frequency} frequency x {phase} phase lines "
                    f"(AcquisitionMatrix, phase {direction.lower()}, phase field of view {percent:g} %): "
                    f"the scanner interpolated it: {shares[0]:.0%} of its k-space lines across the columns and "
                    f"{shares[1]:.0%} across the rows were measured (meta['acquired'])")


def _check_pixel_length(path: Path, header: Dataset) -> None:
    """Refuse native pixel data whose length disagrees with Rows x Columns x frames x BitsAllocated.

    pydicom reshapes whatever bytes there are to the header's Rows/Columns, so a too small Rows re-wraps
    the image silently; compressed data are checked by their decoders.
    """
    syntax = header.file_meta.get("TransferSyntaxUID")
    if syntax is None or syntax.is_compressed:
        return
    element = pydicom.dcmread(path, defer_size=256).get_item(0x7FE00010)  # length only: large values stay on disk
    # A deferred (raw) element knows its length; a small one pydicom already converted holds its bytes.
    length = getattr(element, "length", None) if not isinstance(getattr(element, "value", None), bytes) else len(
        element.value)
    if length in (None, 0xFFFFFFFF):
        return
    rows, columns = int(header.Rows), int(header.Columns)
    frames = int(header.get("NumberOfFrames") or 1)
    bits = int(header.get("BitsAllocated") or 16)
    samples = int(header.get("SamplesPerPixel") or 1)
    expected = (rows * columns * frames * samples * bits + 7) // 8
    # Odd lengths are padded to even: one extra byte is legal.
    if length not in (expected, expected + expected % 2):
        raise SciSRError(
            f"cannot decode pixel data: Rows/Columns ({rows} x {columns}, {frames} frame(s), {bits} bits) need "
            f"{expected} bytes of PixelData but the file holds {length} (truncated, or header and pixels disagree)",
            path,
        )


def _check_rescale(frames: list[_Frame]) -> None:
    """Refuse a RescaleSlope of 0 or a non-finite slope/intercept (every value would become one constant)."""
    for f in frames:
        for keyword in ("RescaleSlope", "RescaleIntercept"):
            value = _number(_get(f.rescale, keyword, f.path), f.path, keyword)
            if keyword == "RescaleSlope" and value == 0:
                raise SciSRError("RescaleSlope is 0: every pixel would have the same value (corrupt header)", f.path)


def _decode(path: Path, header: Dataset) -> np.ndarray:
    """All frames of one file as stored values, ``(frames, rows, columns)``."""
    _check_pixel_length(path, header)
    try:
        arr = pixel_array(path)
    except Exception as err:  # decoders raise many types for truncated or unsupported data
        syntax = getattr(header.file_meta.get("TransferSyntaxUID"), "name", "unknown transfer syntax")
        raise SciSRError(f"cannot decode pixel data ({syntax}): {_one_line(err)}", path) from None
    return arr.reshape(-1, arr.shape[-2], arr.shape[-1])


@overload
def read(path: str | os.PathLike, *, series: Literal["all"], domain: str | None = None) -> list[SciImage]: ...


@overload
def read(path: str | os.PathLike, *, series: str | int | None = None, domain: str | None = None) -> SciImage: ...


def read(
    path: str | os.PathLike, *, series: str | int | None = None, domain: str | None = None
) -> SciImage | list[SciImage]:
    """Read one DICOM series, or every series, from a file or a folder.

    Parameters
    ----------
    path : str or os.PathLike
        A DICOM file (single- or multi-frame) or a folder searched recursively; files that are not
        DICOM are skipped (counted in ``meta["notes"]``).
    series : str or int, optional
        SeriesInstanceUID, SeriesNumber (int or digits) or SeriesDescription; required when the folder
        holds several series (localizer-only series do not count). ``"all"``: every series, as a list
        (see :func:`list_series` for which and in which order); a series described "all" is picked by
        its number or UID.
    domain : str, optional
        Override the domain; default ``"ct"`` for CT, ``"mri"`` for MR, else inferred from the values.

    Returns
    -------
    SciImage or list of SciImage
        One image (a list of them, one per series, with ``series="all"``): ``array`` float32, shape
        ``(columns, rows[, slices][, channels])`` with rescale applied (HU for CT); a single slice is 2D.
        ``affine`` ``(4, 4)`` maps ``(i, j, k, 1)`` to RAS+ mm (for a single slice the third column is the
        normal times the slice thickness). ``spacing`` in mm per spatial axis. ``meta`` holds ``format``,
        ``source``, ``units``, ``stored_dtype``, ``stored_range``, ``rescale`` (slope, intercept) or None
        when frames differ, ``notes``, ``series_uid``, ``series_number``, ``series_description``,
        ``modality``, ``files``, ``dicom_template`` (header of the first image without pixel data),
        ``provenance``; for a volume with SliceThickness, ``slice_thickness`` (mm, may differ from the
        slice spacing: a gap or overlap), ``slice_thickness_source`` (``"dicom"``) and ``slice_axis`` (2);
        for several images per position, ``channel_axis`` (last), ``channel_name``
        (what varies, e.g. ``"TriggerTime"``) and ``channel_values`` (one dict per channel). The list is
        ordered by SeriesNumber, then SeriesInstanceUID; a single-series folder or a file gives a list of one.

    Raises
    ------
    SciSRError
        Not DICOM, corrupt or truncated, several series without ``series=``, missing positions or
        orientation, gantry tilt, uneven slice spacing, colour images; header fields that are not finite
        numbers, voxel sizes outside 1e-6..1e6 mm, a singular affine, RescaleSlope 0, Rows/Columns that
        disagree with the pixel data, an image larger than half the available memory. With
        ``series="all"`` the first series that cannot be read is named in the message.
    """
    path = Path(path)
    if series == "all":
        return [s.read(domain=domain) for s in list_series(path)]
    with reader_boundary("DICOM", path):
        notes: list[str] = []
        return _image(path, _select_series(_collect(path, notes), series, path, notes), notes, domain)


def _image(path: Path, selected: _Files, notes: list[str], domain: str | None) -> SciImage:
    """The image of one series' files (a file or the folder ``path`` holding them); no exception boundary."""
    for p, ds in selected:
        if int(ds.get("SamplesPerPixel") or 1) != 1:
            raise SciSRError(f"colour DICOM ({ds.get('PhotometricInterpretation')}) is not supported", p)
    frames_of = {p: _frames_of(p, ds) for p, ds in selected}
    frames = [f for file_frames in frames_of.values() for f in file_frames]
    stack = _stack(frames, path, notes)

    n_slices, n_channels = len(stack.grid), len(stack.grid[0])
    rows, cols = int(frames[0].header.Rows), int(frames[0].header.Columns)
    where_from = frames[0].path if len(selected) == 1 else path
    if rows < 1 or cols < 1:
        raise SciSRError(f"Rows/Columns are {rows} x {cols}: the image is empty", where_from)
    n_spatial = 2 if n_slices == 1 else 3
    # Sizes first: their message names the one field that is wrong, the affine's names several.
    norms = np.linalg.norm(stack.affine_lps[:3, :3], axis=0)
    check_spacing(norms[:2], where_from, field="PixelSpacing")
    # A single slice's third column is its thickness: not a grid step, but the writer and viewers use it.
    check_spacing(norms[2:], where_from, field="slice spacing (ImagePositionPatient)" if n_spatial == 3
                  else "SliceThickness/SpacingBetweenSlices")
    check_affine(_LPS_TO_RAS @ stack.affine_lps, where_from, n_spatial=n_spatial,
                 field="ImagePositionPatient/ImageOrientationPatient/PixelSpacing")
    check_memory((cols, rows, n_slices, n_channels), 4, where_from, field="Rows/Columns/NumberOfFrames")
    _check_rescale(frames)
    volume = np.empty((cols, rows, n_slices, n_channels), dtype=np.float32)
    where = {id(f): (k, c) for k, group in enumerate(stack.grid) for c, f in enumerate(group)}
    header = frames[0].header
    # RT dose: stored integers x DoseGridScaling = dose in DoseUnits, on top of any rescale.
    dose_scaling = _number(_get(header, "DoseGridScaling", frames[0].path), frames[0].path, "DoseGridScaling")
    lo, hi, stored_dtype, rescales = math.inf, -math.inf, None, set()
    # Decode file by file so only one file's stored pixels are in memory besides the volume.
    for (p, ds), file_frames in zip(selected, frames_of.values(), strict=True):
        stored = _decode(p, ds)
        lo, hi = min(lo, float(stored.min())), max(hi, float(stored.max()))
        stored_dtype = stored_dtype or str(stored.dtype)
        for f in file_frames:
            k, c = where[id(f)]
            values = apply_modality_lut(stored[f.index or 0], f.rescale) * (dose_scaling or 1.0)
            volume[:, :, k, c] = values.T
            # The linear map stored -> value, which the writer reuses; unknown for a lookup table.
            slope, intercept = float(f.rescale.get("RescaleSlope") or 1), float(f.rescale.get("RescaleIntercept") or 0)
            rescales.add(None if f.rescale.get("ModalityLUTSequence") else
                         (slope * (dose_scaling or 1.0), intercept * (dose_scaling or 1.0)))
    if len(rescales) > 1:
        notes.append(f"rescale differs between frames ({len(rescales)} kinds); applied per frame")
    modality = str(header.get("Modality") or "")
    if str(header.get("PhotometricInterpretation")) == "MONOCHROME1":
        notes.append("MONOCHROME1: values kept as stored (high = dark on display)")
    if n_channels == 1:
        volume = volume[..., 0]
    if n_slices == 1:
        volume = volume[:, :, 0]
    meta: dict[str, Any] = {
        "format": "dicom",
        "source": str(path),
        "units": "HU" if modality == "CT" else (str(header.get("DoseUnits")) if dose_scaling is not None else None),
        "stored_dtype": stored_dtype,
        "stored_range": (lo, hi),
        "rescale": rescales.pop() if len(rescales) == 1 else None,
        "notes": notes,
        "series_uid": str(header.get("SeriesInstanceUID") or ""),
        "series_number": header.get("SeriesNumber"),
        "series_description": str(header.get("SeriesDescription") or ""),
        "modality": modality,
        "files": sorted({str(p) for p, _ in selected}),
        "dicom_template": header,  # read with stop_before_pixels: no PixelData
        "provenance": [],
    }
    if stack.channel_name is not None:
        meta.update(channel_axis=volume.ndim - 1, channel_name=stack.channel_name,
                    channel_values=stack.channel_values)
    if n_spatial == 3:
        meta.update(_slice_thickness(frames, float(norms[2]), notes))
    filtering = _kspace_filtering(header)
    if filtering is not None:
        meta["kspace_filtering"] = filtering
    padding = _padding(header, meta["rescale"])
    if padding is not None:
        meta["padding"] = padding
    acquired = _acquired_lines(header) if modality == "MR" else None
    if acquired is not None:
        meta["acquired"] = (*acquired[0], *(1.0,) * (n_spatial - 2))
        notes.append(acquired[1])
    if domain is None:
        domain = {"CT": "ct", "MR": "mri"}.get(modality) or infer_domain(volume, "generic")
    check_values(volume, where_from)
    affine = _LPS_TO_RAS @ stack.affine_lps
    return SciImage(array=volume, affine=affine, spacing=tuple(np.linalg.norm(affine[:3, :n_spatial], axis=0)),
                    domain=domain, meta=meta)


def _padding(header: Dataset, rescale: tuple[float, float] | None) -> tuple[float, float] | None:
    """PixelPaddingValue (through PixelPaddingRangeLimit when given) in calibrated units, low first.

    The values fill pixels outside the reconstructed field (a CT's corners); they are stored values, so the
    series' linear map to calibrated values (``meta["rescale"]``) applies. None without the attribute or
    with a lookup-table rescale.
    """
    first, last = header.get("PixelPaddingValue"), header.get("PixelPaddingRangeLimit", header.get("PixelPaddingValue"))
    if rescale is None or not isinstance(first, int | float) or not isinstance(last, int | float):
        return None
    slope, intercept = rescale
    low, high = sorted(float(v) * slope + intercept for v in (first, last))
    return low, high


# --------------------------------------------------------------------------------------------- writing


def _ds(value: float) -> str:
    return format_number_as_ds(float(value))


def _rounded(value: float) -> float:
    """The value a DS string will carry, so stored pixels are computed with what readers will use."""
    return float(_ds(value))


@dataclass
class _Quantiser:
    """Calibrated values -> 16-bit stored values: ``stored = rint((value - intercept) / slope)``, clipped."""

    dtype: type
    slope: float
    intercept: float
    limits: tuple[float, float]
    fill: float  # what non-finite values (masked voxels) become, in calibrated units

    def __call__(self, values: np.ndarray) -> tuple[np.ndarray, bool, int]:
        """Stored values of one slice, whether any value was rounded, how many were clipped."""
        values = np.where(np.isfinite(values), values, self.fill).astype(np.float64)
        scaled = (values - self.intercept) / self.slope
        stored = np.rint(scaled)
        clipped = int(np.count_nonzero((stored < self.limits[0]) | (stored > self.limits[1])))
        return np.clip(stored, *self.limits).astype(self.dtype), bool(np.any(stored != scaled)), clipped


def _fit_rescale(lo: float, hi: float, dtype: type) -> tuple[float, float]:
    """Slope and intercept mapping [lo, hi] onto the range of a 16-bit integer type."""
    info = np.iinfo(dtype)
    # One step of headroom, so the DS-string rounding of slope/intercept cannot push hi past info.max.
    slope = _rounded((hi - lo) / (int(info.max) - int(info.min) - 1)) if hi > lo else 1.0
    return slope, _rounded(lo - int(info.min) * slope)


def _fits(lo: float, hi: float, slope: float, intercept: float, dtype: type) -> bool:
    info = np.iinfo(dtype)
    return info.min <= round((lo - intercept) / slope) and round((hi - intercept) / slope) <= info.max


def _quantiser(slices: list[np.ndarray], ct: bool, meta: dict[str, Any]) -> tuple[_Quantiser, list[str]]:
    """Choose the stored type and rescale for the whole series; say what rounding and clipping did.

    ``slices`` are views of the calibrated values, one per instance, so no full-volume copy is made.
    """
    lo, hi, n_bad, integral = math.inf, -math.inf, 0, True
    for values in slices:
        finite = values[np.isfinite(values)]
        n_bad += values.size - finite.size
        if finite.size:
            lo, hi = min(lo, float(finite.min())), max(hi, float(finite.max()))
            integral = integral and np.array_equal(finite, np.rint(finite))
    if lo > hi:
        raise SciSRError("the image has no finite value to write")
    notes = []
    if n_bad:
        notes.append(f"{n_bad} non-finite voxel(s) written as the minimum {lo:g}")
    # Stored range and rescale of the series that was read (other formats' meta may reuse the names).
    from_dicom = meta.get("format") == "dicom"
    rescale = tuple(meta["rescale"]) if from_dicom and meta.get("rescale") else None
    stored_range = meta.get("stored_range") if from_dicom else None
    range_dtype = None if stored_range is None else np.uint16 if stored_range[0] >= 0 else np.int16
    if ct:
        dtype: type = np.int16
        slope, intercept = next(
            ((m, b) for m, b in [*([rescale] if rescale else []), (1.0, -1024.0)] if _fits(lo, hi, m, b, dtype)),
            _fit_rescale(lo, hi, dtype),
        )
        limits = (np.iinfo(dtype).min, np.iinfo(dtype).max)
    elif rescale and range_dtype is not None and _fits(*stored_range, 1.0, 0.0, range_dtype):
        # Same stored range and rescale as the input series: no new extremes (the classic MR IOD has
        # no rescale, so a viewer shows stored values).
        dtype = range_dtype
        slope, intercept = rescale
        limits = stored_range
    elif integral and (
        _fits(lo, hi, 1.0, 0.0, np.uint16) or _fits(lo, hi, 1.0, 0.0, np.int16)
    ):
        # Integer values (e.g. from a NIfTI of counts) are stored as they are.
        dtype = np.uint16 if lo >= 0 else np.int16
        slope, intercept = 1.0, 0.0
        limits = (np.iinfo(dtype).min, np.iinfo(dtype).max)
    else:
        dtype = np.uint16
        slope, intercept = _fit_rescale(lo, hi, dtype)
        limits = (np.iinfo(dtype).min, np.iinfo(dtype).max)
    quantiser = _Quantiser(dtype, slope, intercept, limits, lo)
    if (slope, intercept) not in ((1.0, 0.0), (1.0, -1024.0), rescale):
        notes.append(f"values stored with RescaleSlope {slope:g}, RescaleIntercept {intercept:g} to fit 16 bits")
    results = [quantiser(s)[1:] for s in slices]
    if any(rounded for rounded, _ in results):
        notes.append("values rounded to the nearest stored integer")
    clipped = sum(n for _, n in results)
    if clipped:
        notes.append(f"{clipped} voxel(s) clipped to the stored range [{limits[0]:g}, {limits[1]:g}]")
    return quantiser, notes


def _geometry(img: SciImage, path: Path) -> tuple[np.ndarray, np.ndarray, float, float, np.ndarray, float]:
    """Row/column direction cosines, row and column pixel spacing, the LPS affine and the slice step (mm)."""
    if img.affine is not None:
        lps = _LPS_TO_RAS @ img.affine
    else:
        lps = np.diag([*img.spacing, *([1.0] * (4 - len(img.spacing)))])
    u, v, w = lps[:3, 0], lps[:3, 1], lps[:3, 2]
    col_spacing, row_spacing = float(np.linalg.norm(u)), float(np.linalg.norm(v))
    if col_spacing == 0 or row_spacing == 0:
        raise SciSRError("the affine has a zero-length in-plane axis", path)
    row, col = u / col_spacing, v / row_spacing
    if abs(float(row @ col)) > 1e-6:
        angle = math.degrees(math.acos(max(-1.0, min(1.0, float(row @ col)))))
        raise SciSRError(f"in-plane axes are {angle:.3f}° apart, not 90°: DICOM cannot store a sheared grid", path)
    step = float(np.linalg.norm(w))
    if img.spatial_ndim == 3:
        normal = np.cross(row, col)
        along = float(w @ normal)
        if float(np.linalg.norm(w - along * normal)) > 1e-6 * step:
            angle = math.degrees(math.acos(min(1.0, abs(along) / step)))
            raise SciSRError(f"the slice axis is {angle:.3f}° off the slice normal (tilted stack); "
                             "DICOM readers would reject it", path)
    return row, col, row_spacing, col_spacing, lps, step


def _provenance_model(meta: dict[str, Any]) -> tuple[str | None, Any]:
    for step in reversed(meta.get("provenance") or []):
        if isinstance(step, dict) and step.get("model"):
            return str(step["model"]), step.get("scale")
    return None, None


def _copy_template(ds: Dataset, template: Dataset, keywords: list[str], sop_class: str, notes: list[str]) -> None:
    """Copy ``keywords`` present in ``template`` into ``ds``; a value that is not valid DICOM is not copied.

    The source's invalid values would otherwise be refused by the next reader of the derived series. An
    invalid Type 2 value is written empty (unknown), an optional one left out, both said in ``notes``; an
    invalid Type 1 value cannot be made up and is refused. Empty values say nothing and are not copied:
    the IOD check adds back the empty ones the derived series needs (a Type 2C Laterality, for instance,
    must be absent when its condition does not hold).
    """
    types = attribute_types(sop_class)
    emptied, dropped = [], []
    for keyword in keywords:
        if template.get(keyword) in (None, ""):
            continue
        problem = invalid_value(template[keyword])
        if problem is None:
            ds[keyword] = copy.deepcopy(template[keyword])
        elif types.get(keyword) == 1:
            raise SciSRError(f"the source's {keyword} is not valid DICOM ({problem}); a derived series cannot "
                             "keep it and cannot make it up")
        elif types.get(keyword) == 2:
            setattr(ds, keyword, None)
            emptied.append(keyword)
        else:
            dropped.append(keyword)
    if emptied:
        notes.append(f"source values that are not valid DICOM written empty: {', '.join(emptied)}")
    if dropped:
        notes.append(f"source values that are not valid DICOM left out: {', '.join(dropped)}")


def _base_dataset(img: SciImage, quantiser: _Quantiser, notes: list[str], template: Dataset | None) -> Dataset:
    """Everything shared by the instances of the new series."""

    modality = str(template.get("Modality") or "") if template is not None else ""
    if not modality:
        modality = {"ct": "CT", "mri": "MR"}.get(img.domain, "OT")
    sop_class = {"CT": CTImageStorage, "MR": MRImageStorage}.get(modality, SecondaryCaptureImageStorage)
    ds = Dataset()
    notes = list(notes)
    # What varies along the channel axis is written per instance, not copied from the first image.
    per_channel = {k for values in img.meta.get("channel_values") or [] for k in values}
    if template is not None:
        _copy_template(ds, template, [k for k in _KEEP if k not in per_channel], sop_class, notes)
    if modality == "MR":
        missing = [k for k in _MR_PLACEHOLDERS if ds.get(k) in (None, "")]
        for keyword in missing:
            setattr(ds, keyword, _MR_PLACEHOLDERS[keyword])
        if missing:
            notes.append(f"{' and '.join(missing)} are placeholders (not in the source)")
    now = datetime.datetime.now()
    date, time = now.strftime("%Y%m%d"), now.strftime("%H%M%S.%f")
    # UTF-8 so the em dash of ImageComments and any template names encode.
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = sop_class
    ds.Modality = modality
    # Value 3 means something per IOD: only a template of the same SOP class (not e.g. Enhanced MR) has one.
    same_iod = template is not None and template.get("SOPClassUID") == sop_class
    old_type = [str(v) for v in (template.get("ImageType") or [])] if same_iod else []
    flavour = (old_type[2] if len(old_type) > 2 else "") or _IMAGE_FLAVOUR.get(modality)
    ds.ImageType = ["DERIVED", "SECONDARY", *([flavour] if flavour else [])]
    if template is None:
        # A new study of its own. With a template the study is the template's: inventing a UID there would
        # put the series in a study nobody else knows while it carries that study's accession number and
        # dates, so a template without one is refused (Type 1, checked before writing).
        ds.StudyInstanceUID = generate_uid()
        ds.StudyDate, ds.StudyTime = date, time
    if ds.get("FrameOfReferenceUID") in (None, ""):
        # Positions without a frame of reference in the source: they are in a frame of their own.
        ds.FrameOfReferenceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    old_number = template.get("SeriesNumber") if template is not None else None
    ds.SeriesNumber = int(old_number) + 1000 if old_number not in (None, "") else 1000
    ds.SeriesDate = ds.ContentDate = ds.InstanceCreationDate = date
    ds.SeriesTime = ds.ContentTime = ds.InstanceCreationTime = time
    if modality not in ("CT", "MR"):
        ds.ConversionType = "WSD"  # Secondary Capture: workstation-derived

    model, scale = _provenance_model(img.meta)
    old_description = str(template.get("SeriesDescription") or "") if template is not None else ""
    if model:
        ds.SeriesDescription = f"{old_description} SR {model}".strip()[:64]
        what = f"super-resolved by {model}"
        detail = what + (f" (scale {list(scale)})" if scale is not None else "")
    else:
        ds.SeriesDescription = (old_description or "sciSR")[:64]
        what, detail = "derived by sciSR", "converted"
    source = img.meta.get("series_uid") if img.meta.get("format") == "dicom" else None
    ds.DerivationDescription = " ".join(
        [f"{detail} with sciSR {__version__}" + (f" from series {source}" if source else "") + ";", *notes]
    )[:1024]
    ds.ImageComments = f"{what} — not for diagnostic use"
    if modality == "CT" or (quantiser.slope, quantiser.intercept) != (1.0, 0.0):
        ds.RescaleSlope = _ds(quantiser.slope)
        ds.RescaleIntercept = _ds(quantiser.intercept)
        ds.RescaleType = "HU" if modality == "CT" else "US"
    padding = img.meta.get("padding")
    if padding is not None and padding[0] == padding[1]:
        # The reader's fill outside the field of view, which the pipeline hands back unchanged.
        stored, inexact, clipped = quantiser(np.array([padding[0]]))
        if not (inexact or clipped):
            ds.add_new("PixelPaddingValue", "SS" if quantiser.dtype == np.int16 else "US", int(stored[0]))
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.file_meta.ImplementationVersionName = f"SCISR_{__version__}"[:16]
    return ds


def write(img: SciImage, path: str | os.PathLike) -> None:
    """Write ``img`` as a new derived DICOM series, one file per slice (and channel).

    Parameters
    ----------
    img : SciImage
        ``array[column, row[, slice][, channel]]`` with an affine (voxel -> RAS+ mm). Without an affine
        a 2D image is taken as a raster ``array[y, x]`` (rows = y) and a volume as ``[i, j, k]`` on an
        axis-aligned grid of ``img.spacing``. ``meta["dicom_template"]`` (from :func:`read`) supplies
        patient, study, frame of reference and acquisition context; ``meta["provenance"]`` names the model.
    path : str or os.PathLike
        An existing, empty folder (the temporary folder of :func:`sciSR.io.atomic.atomic_output`, which
        then adds its :data:`~sciSR.io.atomic.MARKER` file, skipped by :func:`read`); files
        ``IM0001.dcm`` ... are written in slice-major, channel-minor order.

    Notes
    -----
    Geometry comes only from ``img.affine`` and the array shape: per-slice ImagePositionPatient is the LPS
    position of voxel ``(0, 0, k)``, ImageOrientationPatient the normalised first two affine columns,
    PixelSpacing ``[row spacing, column spacing]`` and SliceThickness = SpacingBetweenSlices = the slice
    step. CT is stored as int16 with RescaleSlope/Intercept (1/-1024 when the values fit); other modalities
    as 16-bit integers in the input's stored range, rounding and clipping said in DerivationDescription.
    Explicit VR Little Endian, uncompressed, new Series/SOP Instance UIDs.

    Every instance is checked before it is written (:func:`sciSR.io.dicom_iod.check_instance`): the IOD's
    Type 2 attributes are completed (empty where unknown), a missing Type 1 one or a value that breaks its
    VR is refused, and pydicom writes with ``writing_validation_mode`` set to raise (restored afterwards).
    Template values that are not valid DICOM are written empty (Type 2) or left out (optional), noted in
    DerivationDescription.

    Raises
    ------
    SciSRError
        Images that DICOM cannot hold: not 2D/3D, sheared or tilted grids, no finite values; a template
        without a StudyInstanceUID, or with an invalid value for a Type 1 attribute; any value the standard
        does not allow (named).
    """
    folder = Path(path)
    with strict_writing():
        _write(img, folder)


def _write(img: SciImage, folder: Path) -> None:
    """:func:`write` inside :func:`~sciSR.io.dicom_iod.strict_writing`."""
    if img.spatial_ndim not in (2, 3):
        raise SciSRError(f"DICOM holds 2D or 3D images, got {img.spatial_ndim} spatial axes", folder)
    values = img.array
    if img.affine is None and img.spatial_ndim == 2:
        # A raster [y, x]: DICOM rows are y, so it is [column, row] transposed.
        values = np.swapaxes(values, 0, 1)
        img = img.replace(array=values, spacing=img.spacing[::-1])
    if img.channel_axis is None:
        values = values[..., np.newaxis]
    if img.spatial_ndim == 2:
        values = values[:, :, np.newaxis, :]
    n_slices, n_channels = values.shape[2], values.shape[3]
    slices = [values[:, :, k, c] for k in range(n_slices) for c in range(n_channels)]
    template = img.meta.get("dicom_template")
    row, col, row_spacing, col_spacing, lps, step = _geometry(img, folder)
    ct = (str(template.get("Modality") or "") == "CT") if template is not None else img.domain == "ct"
    quantiser, notes = _quantiser(slices, ct, img.meta)
    base = _base_dataset(img, quantiser, notes, template)
    base.ImageOrientationPatient = [_ds(x) for x in (*row, *col)]
    base.PixelSpacing = [_ds(row_spacing), _ds(col_spacing)]
    if step > 0:
        base.SliceThickness = _ds(step)
    if img.spatial_ndim == 3:
        base.SpacingBetweenSlices = _ds(step)
    photometric = str(template.get("PhotometricInterpretation")) if template is not None else ""
    photometric = photometric if photometric in ("MONOCHROME1", "MONOCHROME2") else "MONOCHROME2"
    normal = np.cross(row, col)
    channel_values = img.meta.get("channel_values") or []
    width = max(4, len(str(len(slices))))
    ds = base  # one dataset, its per-instance elements overwritten for every file
    for number, pixels in enumerate(slices, start=1):
        k, c = divmod(number - 1, n_channels)
        position = lps[:3, :3] @ np.array([0.0, 0.0, k]) + lps[:3, 3]
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = number
        ds.ImagePositionPatient = [_ds(x) for x in position]
        ds.SliceLocation = _ds(float(position @ normal))
        for keyword, value in (channel_values[c] if c < len(channel_values) else {}).items():
            if keyword in _ORDER_KEYS:
                setattr(ds, keyword, _ds(value) if dictionary_VR(keyword) == "DS" else float(value))
        ds.set_pixel_data(np.ascontiguousarray(quantiser(pixels)[0].T), photometric, 16, generate_instance_uid=False)
        check_instance(ds, folder)
        ds.save_as(folder / f"IM{number:0{width}d}.dcm", enforce_file_format=True)
