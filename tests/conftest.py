"""Fixtures shared by every test folder: a small generated DICOM study holding several series."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, MRImageStorage, generate_uid

_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
_STUDY_UID = "1.2.826.0.1.3680043.8.498.4000"
_FRAME_OF_REFERENCE_UID = "1.2.826.0.1.3680043.8.498.4001"


@dataclass(frozen=True)
class StudySeries:
    """One series of the generated study and the geometry sciSR must read from it."""

    uid: str
    number: int | None
    description: str
    modality: str
    slices: int
    rows: int
    columns: int
    slice_spacing: float  # mm along the slice normal (and SliceThickness)
    pixel_spacing: tuple[float, float]  # (row spacing, column spacing) mm, as DICOM PixelSpacing
    row: tuple[float, float, float]  # LPS direction of increasing column index
    column: tuple[float, float, float]  # LPS direction of increasing row index
    origin: tuple[float, float, float]  # LPS mm of the first pixel of the first slice
    folder: str = ""  # sub-folder of the study holding the files
    localizer: bool = False

    @property
    def shape(self) -> tuple[int, ...]:
        """The array shape sciSR reads: ``(columns, rows[, slices])``."""
        return (self.columns, self.rows, self.slices) if self.slices > 1 else (self.columns, self.rows)

    @property
    def affine(self) -> np.ndarray:
        """Voxel ``(i, j, k, 1)`` → RAS+ mm (for one slice the third column is normal × thickness)."""
        row, column = np.array(self.row), np.array(self.column)
        lps = np.eye(4)
        lps[:3, 0] = row * self.pixel_spacing[1]
        lps[:3, 1] = column * self.pixel_spacing[0]
        lps[:3, 2] = np.cross(row, column) * self.slice_spacing
        lps[:3, 3] = self.origin
        return _LPS_TO_RAS @ lps

    def values(self, k: int) -> np.ndarray:
        """Stored pixels of slice ``k``, ``(rows, columns)``: they say which series and slice they are."""
        base = 100 * (int(self.uid.rsplit(".", 1)[1]) % 100) + 10 * k
        return (base + np.arange(self.rows * self.columns).reshape(self.rows, self.columns)).astype(np.uint16)


# In the order sciSR.read(..., series="all") returns them (SeriesNumber, then UID; no number last); the
# localizer-only series comes last here and is left out by the reader.
STUDY = (
    StudySeries("1.2.826.0.1.3680043.8.498.10", 2, "T1 SAG/post", "MR", slices=4, rows=6, columns=5,
                slice_spacing=2.5, pixel_spacing=(0.8, 0.6), row=(0.0, 1.0, 0.0), column=(0.0, 0.0, -1.0),
                origin=(10.0, -20.0, 30.0)),
    StudySeries("1.2.826.0.1.3680043.8.498.20", 2, "T2 AX", "MR", slices=3, rows=4, columns=7,
                slice_spacing=4.0, pixel_spacing=(0.5, 0.5), row=(1.0, 0.0, 0.0), column=(0.0, 1.0, 0.0),
                origin=(-5.0, 5.0, -40.0), folder="sub/ax"),
    StudySeries("1.2.826.0.1.3680043.8.498.5", 7, "", "CT", slices=1, rows=4, columns=4,
                slice_spacing=3.0, pixel_spacing=(0.7, 0.7), row=(1.0, 0.0, 0.0), column=(0.0, 1.0, 0.0),
                origin=(0.0, 0.0, 12.0)),
    StudySeries("1.2.826.0.1.3680043.8.498.3", None, "DWI b1000", "MR", slices=2, rows=5, columns=5,
                slice_spacing=5.0, pixel_spacing=(1.0, 1.0), row=(1.0, 0.0, 0.0), column=(0.0, 0.0, -1.0),
                origin=(-2.0, 8.0, 4.0), folder="dwi"),
    StudySeries("1.2.826.0.1.3680043.8.498.1", 1, "Localizer", "MR", slices=1, rows=4, columns=4,
                slice_spacing=5.0, pixel_spacing=(2.0, 2.0), row=(1.0, 0.0, 0.0), column=(0.0, 1.0, 0.0),
                origin=(0.0, 0.0, 0.0), localizer=True),
)


def write_study_series(study: Path, spec: StudySeries) -> None:
    """Write ``spec`` as classic single-frame files (one per slice) under ``study``."""
    folder = study / spec.folder
    folder.mkdir(parents=True, exist_ok=True)
    normal = np.cross(spec.row, spec.column)
    for k in range(spec.slices):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = CTImageStorage if spec.modality == "CT" else (
            MRImageStorage)
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.Modality = spec.modality
        ds.PatientName, ds.PatientID = "Synthetic^Study", "S1"
        ds.StudyInstanceUID, ds.FrameOfReferenceUID = _STUDY_UID, _FRAME_OF_REFERENCE_UID
        ds.SeriesInstanceUID = spec.uid
        if spec.number is not None:
            ds.SeriesNumber = spec.number
        if spec.description:
            ds.SeriesDescription = spec.description
        ds.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER" if spec.localizer else "AXIAL"]
        ds.InstanceNumber = k + 1
        ds.ImageOrientationPatient = [*spec.row, *spec.column]
        ds.ImagePositionPatient = [float(v) for v in np.array(spec.origin) + k * spec.slice_spacing * normal]
        ds.PixelSpacing = list(spec.pixel_spacing)
        ds.SliceThickness = spec.slice_spacing
        if spec.modality == "CT":
            ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
        ds.set_pixel_data(spec.values(k), "MONOCHROME2", 16, generate_instance_uid=False)
        ds.save_as(folder / f"{spec.uid.rsplit('.', 1)[1]}_{k}.dcm", enforce_file_format=True)


@pytest.fixture
def dicom_study(tmp_path: Path) -> tuple[Path, list[StudySeries]]:
    """A study folder with four series (flat and in sub-folders) and a localizer-only series.

    Returns the folder and the series that ``sciSR.read(folder, series="all")`` must return, in order.
    """
    study = tmp_path / "study"
    for spec in STUDY:
        write_study_series(study, spec)
    return study, [s for s in STUDY if not s.localizer]
