"""Small valid files of every format, and byte-level editors that damage one header field.

Used by the bad-input catalogue (cases_readers.py) and the fuzz tests (tests/fuzz/). Every builder
writes into a given folder and returns the path; the files are tiny (a few hundred bytes of pixels).
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np
import tifffile
from astropy.io import fits
from astropy.wcs import WCS
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

ROWS, COLS = 4, 5


def dicom_file(folder: Path, name: str = "ct.dcm", **attributes) -> Path:
    """A one-slice CT (4 rows x 5 columns, int16 stored, slope 1 / intercept -1024); ``attributes`` override."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.Modality = "CT"
    ds.SeriesInstanceUID = generate_uid()
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.ImagePositionPatient = [-10, 20, 30]
    ds.PixelSpacing = [0.5, 0.5]
    ds.SliceThickness = 2.0
    ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
    pixels = (1000 + np.arange(ROWS * COLS, dtype=np.uint16)).reshape(ROWS, COLS)
    ds.set_pixel_data(pixels, "MONOCHROME2", 16, generate_instance_uid=False)
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    path = folder / name
    ds.save_as(path, enforce_file_format=True)
    return path


def replace_bytes(path: Path, old: bytes, new: bytes) -> Path:
    """Replace the one occurrence of ``old`` (same length as ``new``, so offsets stay valid)."""
    data = path.read_bytes()
    assert len(old) == len(new) and data.count(old) == 1, (old, new)
    path.write_bytes(data.replace(old, new))
    return path


def nifti_file(folder: Path, name: str = "vol.nii", data: np.ndarray | None = None) -> Path:
    """A 4x5x6 float32 NIfTI-1 with 1 mm voxels and sform/qform code 1."""
    values = np.arange(120, dtype=np.float32).reshape(4, 5, 6) if data is None else data
    path = folder / name
    nib.save(nib.Nifti1Image(values, np.diag([1.0, 1.5, 2.0, 1.0])), str(path))
    return path


# Byte offsets of NIfTI-1 header fields (little endian, as nibabel writes on x86).
NIFTI_DIM, NIFTI_PIXDIM, NIFTI_QFORM_CODE, NIFTI_SFORM_CODE, NIFTI_SROW_X = 40, 76, 252, 254, 280


def poke(path: Path, offset: int, fmt: str, *values) -> Path:
    """Overwrite ``struct.pack(fmt, *values)`` at ``offset``."""
    data = bytearray(path.read_bytes())
    struct.pack_into(fmt, data, offset, *values)
    path.write_bytes(bytes(data))
    return path


def pixdim_only(path: Path) -> Path:
    """Set qform_code and sform_code to 0, so the affine comes from pixdim alone."""
    return poke(path, NIFTI_QFORM_CODE, "<hh", 0, 0)


def fits_file(folder: Path, name: str = "sky.fits", data: np.ndarray | None = None, **cards) -> Path:
    """An 8x8 float32 image with a TAN WCS of 1e-3 deg pixels; ``cards`` are added or override."""
    values = np.arange(64, dtype=np.float32).reshape(8, 8) if data is None else data
    hdu = fits.PrimaryHDU(values)
    hdu.header.update({"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRPIX1": 4.5, "CRPIX2": 4.5,
                       "CRVAL1": 10.0, "CRVAL2": 20.0, "CDELT1": -1e-3, "CDELT2": 1e-3, "BUNIT": "Jy/beam"})
    hdu.header.update(cards)
    path = folder / name
    hdu.writeto(path)
    return path


def set_card(path: Path, keyword: str, image: str) -> Path:
    """Replace the 80-byte header card of ``keyword`` by the raw text ``image`` (padded to 80)."""
    data = bytearray(path.read_bytes())
    start = next(i for i in range(0, 2880 * 4, 80) if data[i:i + 8].decode().rstrip() == keyword)
    data[start:start + 80] = image.ljust(80).encode("ascii")
    path.write_bytes(bytes(data))
    return path


def fits_cube(folder: Path, name: str = "cube.fits", ctypes=("RA---TAN", "DEC--TAN", "FREQ", "STOKES"),
              shape=(2, 3, 16, 16)) -> Path:
    """A 4D cube (numpy ``shape``), spatial pixels 1e-3 deg, 1 MHz channels, Stokes I..Q."""
    wcs = WCS(naxis=len(ctypes))
    wcs.wcs.ctype = list(ctypes)
    wcs.wcs.crpix = [8.5, 8.5, 1, 1][: len(ctypes)]
    cdelt = {"RA---TAN": -1e-3, "DEC--TAN": 1e-3, "FREQ": 1e6, "STOKES": 1.0}
    wcs.wcs.cdelt = [cdelt[c] for c in ctypes]
    crval = {"RA---TAN": 10.0, "DEC--TAN": 20.0, "FREQ": 1.4e9, "STOKES": 1.0}
    wcs.wcs.crval = [crval[c] for c in ctypes]
    values = np.random.default_rng(0).random(shape).astype(np.float32)
    path = folder / name
    fits.PrimaryHDU(values, wcs.to_header()).writeto(path)
    return path


def png_file(folder: Path, name: str = "img.png", mode: str = "L") -> Path:
    """An 8x8 gradient (grey "L", or "RGB")."""
    values = np.arange(64, dtype=np.uint8).reshape(8, 8) * 3
    if mode == "RGB":
        values = np.stack([values, values[::-1], values.T], axis=-1)
    path = folder / name
    Image.fromarray(values).save(path, format="PNG")
    return path


def png_ihdr(path: Path, width: int, height: int) -> Path:
    """Rewrite IHDR width/height with a valid CRC (so only the size disagrees with the data)."""
    data = bytearray(path.read_bytes())
    struct.pack_into(">II", data, 16, width, height)
    struct.pack_into(">I", data, 29, zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))
    return path


def png_bytes(width: int, height: int, rows: bytes) -> bytes:
    """A grey 8-bit PNG whose single IDAT holds ``rows`` (filtered scanlines), whatever the IHDR says."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    buffer = io.BytesIO()
    buffer.write(b"\x89PNG\r\n\x1a\n")
    buffer.write(chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)))
    buffer.write(chunk(b"IDAT", zlib.compress(rows)))
    buffer.write(chunk(b"IEND", b""))
    return buffer.getvalue()


def tiff_file(folder: Path, name: str = "img.tif", ome: bool = False, size_x: float = 0.5) -> Path:
    """A 2x8x8 uint16 stack with physical pixel size (OME µm or ImageJ)."""
    values = np.arange(128, dtype=np.uint16).reshape(2, 8, 8)
    path = folder / name
    if ome:
        tifffile.imwrite(path, values, ome=True, metadata={"axes": "ZYX", "PhysicalSizeX": size_x,
                                                           "PhysicalSizeY": 0.5, "PhysicalSizeZ": 2.0})
    else:
        tifffile.imwrite(path, values, imagej=True, resolution=(1 / size_x, 2.0),
                         metadata={"axes": "ZYX", "unit": "um", "spacing": 2.0})
    return path


def truncate(path: Path, keep: float) -> Path:
    """Keep the first ``keep`` fraction of the file."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path
