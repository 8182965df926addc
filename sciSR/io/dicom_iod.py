"""What the DICOM standard requires of the derived objects the writer produces (``docs/architecture.md §4.1``).

The writer (:func:`sciSR.io.dicom.write`) creates classic single-frame images of three SOP classes only:
CT Image Storage (IOD in DICOM PS3.3 A.3), MR Image Storage (A.4) and Secondary Capture Image Storage
(A.8.1). For each, the table below lists the Type 1 attributes (present and not empty) and the Type 2
attributes (present, empty meaning unknown) of the modules whose attributes the writer fills, section
by section of PS3.3. Type 1C/3 attributes are the writer's business, except the Type 2C ones whose
condition can be read from the dataset itself; those are listed with their condition.

pydicom validates values only as they are set, in its *reading* mode (warn by default), and does not
know IODs at all. :func:`check_instance` therefore checks both before a file is written: the Type 1/2
table and every element's value against its VR (PS3.5 6.2), raising instead of warning;
:func:`strict_writing` makes pydicom raise, not warn, for what it checks while encoding (character sets,
person-name components).
"""

from __future__ import annotations

import contextlib
import os
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from pydicom import config
from pydicom.charset import convert_encodings
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element
from pydicom.multival import MultiValue
from pydicom.tag import Tag
from pydicom.uid import CTImageStorage, MRImageStorage, SecondaryCaptureImageStorage

from sciSR.errors import SciSRError
from sciSR.io.validate import printable

PIXEL_DATA = Tag("PixelData")


def _values(ds: Dataset, keyword: str) -> list[str]:
    """The upper-case text values of a (possibly multi-valued) attribute; empty when absent."""
    value = ds.get(keyword)
    if value is None or value == "":
        return []
    return [str(v).upper() for v in (value if isinstance(value, MultiValue | list | tuple) else [value])]


@dataclass(frozen=True)
class Module:
    """The Type 1 and Type 2 attributes of one PS3.3 module (as used by the IODs below).

    Attributes
    ----------
    name, section : str
        Module name and its PS3.3 section, quoted in refusals.
    type1, type2 : tuple of str
        Keywords of the Type 1 (present, not empty) and Type 2 (present, may be empty) attributes.
    type2c : tuple of (str, callable)
        Type 2C keywords with their condition, a predicate on the dataset being written.
    """

    name: str
    section: str
    type1: tuple[str, ...] = ()
    type2: tuple[str, ...] = ()
    type2c: tuple[tuple[str, Callable[[Dataset], bool]], ...] = ()


PATIENT = Module("Patient", "C.7.1.1", type2=("PatientName", "PatientID", "PatientBirthDate", "PatientSex"))
GENERAL_STUDY = Module("General Study", "C.7.2.1", type1=("StudyInstanceUID",),
                       type2=("StudyDate", "StudyTime", "ReferringPhysicianName", "StudyID", "AccessionNumber"))
GENERAL_SERIES = Module(
    "General Series", "C.7.3.1", type1=("Modality", "SeriesInstanceUID"), type2=("SeriesNumber",),
    # Required for a paired body part unless Image Laterality is sent. Which parts are paired is not for
    # the writer to guess: when the source names no body part, pairing is unknown and Laterality is sent
    # empty (= unknown); when it names one and sent no Laterality, the source decided it is not needed.
    type2c=(("Laterality", lambda ds: "ImageLaterality" not in ds and not _values(ds, "BodyPartExamined")),),
)
# Patient Position (2C) is required by the CT and MR Image IODs (C.7.3.1: for those SOP classes, when no
# Patient Orientation Code Sequence is sent, which the writer never does).
CT_MR_SERIES = Module("General Series (CT/MR)", "C.7.3.1", type2=("PatientPosition",))
FRAME_OF_REFERENCE = Module("Frame of Reference", "C.7.4.1", type1=("FrameOfReferenceUID",),
                            type2=("PositionReferenceIndicator",))
GENERAL_EQUIPMENT = Module("General Equipment", "C.7.5.1", type2=("Manufacturer",))
GENERAL_IMAGE = Module("General Image", "C.7.6.1", type2=("InstanceNumber",))
# Patient Orientation (2C) is required when the IOD does not require Image Orientation/Position (Patient),
# i.e. for Secondary Capture.
SC_GENERAL_IMAGE = Module("General Image (SC)", "C.7.6.1", type2=("PatientOrientation",))
IMAGE_PLANE = Module("Image Plane", "C.7.6.2",
                     type1=("PixelSpacing", "ImageOrientationPatient", "ImagePositionPatient"),
                     type2=("SliceThickness",))
IMAGE_PIXEL = Module("Image Pixel", "C.7.6.3",
                     type1=("SamplesPerPixel", "PhotometricInterpretation", "Rows", "Columns", "BitsAllocated",
                            "BitsStored", "HighBit", "PixelRepresentation", "PixelData"))
CT_IMAGE = Module("CT Image", "C.8.2.1",
                  type1=("ImageType", "SamplesPerPixel", "PhotometricInterpretation", "BitsAllocated", "BitsStored",
                         "HighBit", "RescaleIntercept", "RescaleSlope"),
                  type2=("KVP", "AcquisitionNumber"))
MR_IMAGE = Module(
    "MR Image", "C.8.3.1",
    type1=("ImageType", "SamplesPerPixel", "PhotometricInterpretation", "BitsAllocated", "BitsStored", "HighBit",
           "ScanningSequence", "SequenceVariant"),
    type2=("ScanOptions", "MRAcquisitionType", "EchoTime", "EchoTrainLength"),
    type2c=(
        ("RepetitionTime",
         lambda ds: "SK" in _values(ds, "SequenceVariant") or "EP" not in _values(ds, "ScanningSequence")),
        ("InversionTime", lambda ds: "IR" in _values(ds, "ScanningSequence")),
    ),
)
SC_EQUIPMENT = Module("SC Equipment", "C.8.6.1", type1=("ConversionType",))
SOP_COMMON = Module("SOP Common", "C.12.1", type1=("SOPClassUID", "SOPInstanceUID"))

# The modules of each IOD (PS3.3 A.3.3, A.4.3, A.8.1.3) that hold Type 1/2 attributes the writer fills.
# Secondary Capture has no Frame of Reference or Image Plane module; the writer adds both anyway (a
# Standard Extended SOP Class) so that readers keep the geometry, and then fills them fully.
IODS: dict[str, tuple[str, tuple[Module, ...]]] = {
    CTImageStorage: ("CT Image", (PATIENT, GENERAL_STUDY, GENERAL_SERIES, CT_MR_SERIES, FRAME_OF_REFERENCE,
                                  GENERAL_EQUIPMENT, GENERAL_IMAGE, IMAGE_PLANE, IMAGE_PIXEL, CT_IMAGE, SOP_COMMON)),
    MRImageStorage: ("MR Image", (PATIENT, GENERAL_STUDY, GENERAL_SERIES, CT_MR_SERIES, FRAME_OF_REFERENCE,
                                  GENERAL_EQUIPMENT, GENERAL_IMAGE, IMAGE_PLANE, IMAGE_PIXEL, MR_IMAGE, SOP_COMMON)),
    SecondaryCaptureImageStorage: (
        "Secondary Capture Image",
        (PATIENT, GENERAL_STUDY, GENERAL_SERIES, GENERAL_EQUIPMENT, SC_EQUIPMENT, GENERAL_IMAGE, SC_GENERAL_IMAGE,
         FRAME_OF_REFERENCE, IMAGE_PLANE, IMAGE_PIXEL, SOP_COMMON),
    ),
}


def attribute_types(sop_class: str) -> dict[str, int]:
    """``keyword -> 1 or 2`` for the Type 1 and Type 2 (2C counted as 2) attributes of an IOD we write."""
    types: dict[str, int] = {}
    for module in IODS[sop_class][1]:
        for keyword in (*module.type2, *(k for k, _ in module.type2c)):
            types.setdefault(keyword, 2)
        types.update(dict.fromkeys(module.type1, 1))
    return types


def invalid_value(element: DataElement) -> str | None:
    """Why ``element``'s value breaks its VR's rules (PS3.5 6.2: length, characters, range), or None."""
    value = element.value
    if element.VR == "PN" and value is not None:
        # pydicom skips the checks for PersonName objects; their text gets them.
        value = [str(v) for v in value] if isinstance(value, MultiValue) else str(value)
    try:
        DataElement(element.tag, element.VR, value, validation_mode=config.RAISE)
    except (ValueError, TypeError, OverflowError) as err:
        return printable(" ".join(str(err).split()), 200)
    return None


def check_instance(ds: Dataset, path: str | os.PathLike) -> None:
    """Complete one instance's Type 2 attributes and refuse what the standard forbids, before it is written.

    Missing Type 2 attributes (and Type 2C ones whose condition holds) are added empty; a missing or empty
    Type 1 attribute, or any value that breaks its VR (PS3.5), is refused.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        The complete instance, pixels included, with ``SOPClassUID`` one of :data:`IODS` and ``file_meta``.
    path : str or os.PathLike
        The output the instance belongs to, named in the error.

    Raises
    ------
    SciSRError
        One line naming the attribute: a missing/empty Type 1 attribute (with its module and PS3.3
        section) or an invalid value.
    """
    iod, modules = IODS[str(ds.SOPClassUID)]
    for module in modules:
        for keyword in module.type1:
            if ds.get(keyword) in (None, "", b"", []):
                raise SciSRError(f"cannot write a valid {iod} object: Type 1 attribute {keyword} ({module.name} "
                                 f"module, DICOM PS3.3 {module.section}) is missing or empty", path)
        for keyword in (*module.type2, *(k for k, required in module.type2c if required(ds))):
            if keyword not in ds:
                setattr(ds, keyword, None)
    encodings = convert_encodings(ds.get("SpecificCharacterSet"))
    with strict_writing():
        for element in (*ds.file_meta, *ds.iterall()):
            problem = invalid_value(element) or _unencodable(element, encodings)
            if problem:
                raise SciSRError(f"cannot write {element.keyword or element.tag}: {problem}", path)


def _unencodable(element: DataElement, encodings: list[str]) -> str | None:
    """Why pydicom cannot encode ``element`` (inside :func:`strict_writing`); None when it can.

    Encoding each element on its own names the one that fails, which an error from ``save_as`` would not.
    """
    if element.VR == "SQ" or element.tag == PIXEL_DATA:  # items are encoded on their own; pixels are bytes
        return None
    buffer = DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = True, False
    try:
        write_data_element(buffer, element, encodings)
    except (ValueError, TypeError, OverflowError, struct.error) as err:  # UnicodeEncodeError is a ValueError
        return printable(" ".join(str(err).split()), 200)
    return None


@contextlib.contextmanager
def strict_writing() -> Iterator[None]:
    """pydicom's ``writing_validation_mode`` set to raise inside the block, the previous mode restored after.

    What pydicom checks while encoding (values a character set cannot hold, over-long person-name
    components) then raises instead of writing replacement characters with a warning.
    """
    previous = config.settings.writing_validation_mode
    config.settings.writing_validation_mode = config.RAISE
    try:
        yield
    finally:
        config.settings.writing_validation_mode = previous
