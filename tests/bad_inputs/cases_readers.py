"""Catalogue of damaged inputs the readers must refuse with one line naming the file and the field.

Add a case by appending ``Case(id, build, expect)``: ``build(tmp_path) -> path`` writes the bad file,
``expect`` is a fragment the one-line message must contain (the header field, or what is wrong).
test_bad_readers.py runs every case through ``sciSR.read``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import tifffile
from astropy.io import fits
from builders import (
    NIFTI_DIM,
    NIFTI_PIXDIM,
    NIFTI_SFORM_CODE,
    NIFTI_SROW_X,
    dicom_file,
    fits_cube,
    fits_file,
    nifti_file,
    pixdim_only,
    png_bytes,
    png_file,
    png_ihdr,
    poke,
    replace_bytes,
    set_card,
    tiff_file,
    truncate,
)


@dataclass(frozen=True)
class Case:
    """One bad input: ``build(tmp_path)`` returns its path; the error line must contain ``expect``."""

    id: str
    build: Callable[[Path], Path]
    expect: str


def _dicom_edit(**attributes) -> Callable[[Path], Path]:
    """A valid file whose header is then edited (``set_pixel_data`` would fix Rows/Columns otherwise)."""
    def build(tmp: Path) -> Path:
        path = dicom_file(tmp)
        ds = pydicom.dcmread(path)
        for keyword, value in attributes.items():
            setattr(ds, keyword, value)
        ds.save_as(path)
        return path
    return build


def _nifti_pixdim(value: float) -> Callable[[Path], Path]:
    return lambda tmp: poke(pixdim_only(nifti_file(tmp)), NIFTI_PIXDIM + 4, "<f", value)


def _nifti_srow(value: float) -> Callable[[Path], Path]:
    return lambda tmp: poke(poke(nifti_file(tmp), NIFTI_SFORM_CODE, "<h", 1), NIFTI_SROW_X, "<f", value)


def _nifti_dims(*dims: int) -> Callable[[Path], Path]:
    return lambda tmp: poke(nifti_file(tmp), NIFTI_DIM, f"<{len(dims)}h", *dims)


def _fits_card(keyword: str, image: str) -> Callable[[Path], Path]:
    return lambda tmp: set_card(fits_file(tmp), keyword, image)


CASES: list[Case] = [
    # --- DICOM -------------------------------------------------------------------------------------
    Case("dicom-rows-smaller-than-data", _dicom_edit(Rows=2), "Rows/Columns"),
    Case("dicom-rows-larger-than-data", _dicom_edit(Rows=8), "Rows/Columns"),
    Case("dicom-columns-smaller-than-data", _dicom_edit(Columns=2), "Rows/Columns"),
    Case("dicom-rows-zero", _dicom_edit(Rows=0), "Rows/Columns"),
    Case("dicom-rescale-slope-zero", _dicom_edit(RescaleSlope=0), "RescaleSlope"),
    Case("dicom-rescale-slope-nan", _dicom_edit(RescaleSlope="nan"), "RescaleSlope"),
    Case("dicom-rescale-intercept-inf", _dicom_edit(RescaleIntercept="inf"), "RescaleIntercept"),
    Case("dicom-ipp-nan", _dicom_edit(ImagePositionPatient=["nan", 0, 0]), "ImagePositionPatient"),
    Case("dicom-ipp-inf", _dicom_edit(ImagePositionPatient=[0, "-inf", 0]), "ImagePositionPatient"),
    Case("dicom-ipp-two-values", _dicom_edit(ImagePositionPatient=[0, 0]), "ImagePositionPatient"),
    Case("dicom-iop-nan", _dicom_edit(ImageOrientationPatient=[1, 0, 0, 0, "nan", 0]), "ImageOrientationPatient"),
    Case("dicom-iop-inf", _dicom_edit(ImageOrientationPatient=["inf", 0, 0, 0, 1, 0]), "ImageOrientationPatient"),
    Case("dicom-iop-zero-row", _dicom_edit(ImageOrientationPatient=[0, 0, 0, 0, 1, 0]), "ImageOrientationPatient"),
    Case("dicom-iop-parallel", _dicom_edit(ImageOrientationPatient=[1, 0, 0, 1, 0, 0]), "ImageOrientationPatient"),
    Case("dicom-pixelspacing-decimal-comma",
         lambda tmp: replace_bytes(dicom_file(tmp), b"0.5\\0.5", b"0,5\\0,5"), "PixelSpacing"),
    Case("dicom-pixelspacing-single-value", _dicom_edit(PixelSpacing=0.5), "PixelSpacing"),
    Case("dicom-pixelspacing-zero", _dicom_edit(PixelSpacing=[0, 0.5]), "PixelSpacing"),
    Case("dicom-pixelspacing-negative", _dicom_edit(PixelSpacing=[-0.5, 0.5]), "PixelSpacing"),
    Case("dicom-pixelspacing-1e9", _dicom_edit(PixelSpacing=[1e9, 0.5]), "PixelSpacing"),
    Case("dicom-pixelspacing-1e-9", _dicom_edit(PixelSpacing=[1e-9, 0.5]), "PixelSpacing"),
    Case("dicom-slice-thickness-nan", _dicom_edit(SliceThickness="nan"), "SliceThickness"),
    Case("dicom-slice-thickness-1e9", _dicom_edit(SliceThickness=1e9), "SliceThickness"),
    Case("dicom-truncated-pixels", lambda tmp: truncate(dicom_file(tmp), 0.97), "PixelData"),
    # --- NIfTI -------------------------------------------------------------------------------------
    Case("nifti-pixdim-1e37", _nifti_pixdim(1e37), "pixdim"),
    Case("nifti-pixdim-1e-39", _nifti_pixdim(1e-39), "pixdim"),
    Case("nifti-pixdim-nan", _nifti_pixdim(float("nan")), "pixdim"),
    Case("nifti-pixdim-inf", _nifti_pixdim(float("inf")), "pixdim"),
    Case("nifti-sform-nan", _nifti_srow(float("nan")), "sform"),
    Case("nifti-sform-1e9-mm", _nifti_srow(1e9), "sform"),
    Case("nifti-sform-parallel-axes",
         lambda tmp: poke(poke(nifti_file(tmp), NIFTI_SFORM_CODE, "<h", 1), NIFTI_SROW_X, "<12f",
                          1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0), "singular"),
    Case("nifti-dim-negative", _nifti_dims(3, -5, 5, 6), "dim"),
    Case("nifti-dim-zero", _nifti_dims(3, 4, 0, 6), "dim"),
    Case("nifti-dim0-out-of-range", _nifti_dims(9), "dim[0]"),
    Case("nifti-30000-cubed", _nifti_dims(3, 30000, 30000, 30000), "GiB"),
    Case("nifti-truncated-data", lambda tmp: truncate(nifti_file(tmp), 0.8), "NIfTI"),
    Case("nifti-all-nan", lambda tmp: nifti_file(tmp, data=np.full((4, 5, 6), np.nan, np.float32)), "NaN"),
    # --- FITS --------------------------------------------------------------------------------------
    Case("fits-bunit-unquoted", _fits_card("BUNIT", "BUNIT   = Jy/beam"), "BUNIT"),
    Case("fits-bunit-unparsable", _fits_card("BUNIT", "BUNIT   = 1.2.3"), "BUNIT"),
    Case("fits-cdelt-nan", _fits_card("CDELT1", "CDELT1  = NaN"), "CDELT1"),
    Case("fits-crpix-unparsable", _fits_card("CRPIX2", "CRPIX2  = 4,5"), "CRPIX2"),
    Case("fits-cdelt-zero", lambda tmp: fits_file(tmp, CDELT1=0.0), "CDELT"),
    Case("fits-cdelt-absurd-1e5-deg", lambda tmp: fits_file(tmp, CDELT1=1e5), "CDELT"),
    Case("fits-cdelt-1e-12-deg", lambda tmp: fits_file(tmp, CDELT2=1e-12), "CDELT"),
    Case("fits-unknown-projection", lambda tmp: fits_file(tmp, CTYPE1="RA---XYZ"), "CTYPE1"),
    Case("fits-singular-cd", lambda tmp: fits_file(tmp, CD1_1=1e-3, CD1_2=1e-3, CD2_1=1e-3, CD2_2=1e-3), "singular"),
    Case("fits-bscale-zero", lambda tmp: _fits_scaled(tmp, "BSCALE  =                    0"), "BSCALE"),
    Case("fits-bzero-nan", lambda tmp: _fits_scaled(tmp, "BZERO   = NaN"), "BZERO"),
    Case("fits-all-nan", lambda tmp: fits_file(tmp, data=np.full((8, 8), np.nan, np.float32)), "NaN"),
    Case("fits-spectral-axis-first", lambda tmp: fits_cube(tmp, ctypes=("FREQ", "RA---TAN", "DEC--TAN"),
                                                           shape=(4, 4, 3)), "non-spatial"),
    Case("fits-truncated", lambda tmp: truncate(fits_file(tmp), 0.52), "truncated"),
    Case("fits-naxis-huge", _fits_card("NAXIS1", "NAXIS1  =              1000000"), "NAXIS"),
    # --- PNG / TIFF --------------------------------------------------------------------------------
    Case("png-ihdr-taller-than-data", lambda tmp: png_ihdr(png_file(tmp), 8, 16), "IHDR"),
    Case("png-ihdr-wider-than-data", lambda tmp: png_ihdr(png_file(tmp, mode="RGB"), 12, 8), "IHDR"),
    Case("png-rows-missing", lambda tmp: _write(tmp / "short.png", png_bytes(8, 8, b"\0" * 9 * 5)), "IDAT"),
    Case("png-idat-cut", lambda tmp: truncate(png_file(tmp), 0.6), "truncated"),
    Case("png-zero-height", lambda tmp: png_ihdr(png_file(tmp), 8, 0), "IHDR"),
    Case("png-ihdr-100000-squared", lambda tmp: png_ihdr(png_file(tmp), 100000, 100000), "IHDR"),
    Case("tiff-ome-physical-size-nan", lambda tmp: tiff_file(tmp, ome=True, size_x=float("nan")), "physical pixel"),
    Case("tiff-ome-physical-size-negative", lambda tmp: tiff_file(tmp, ome=True, size_x=-0.5), "physical pixel"),
    Case("tiff-all-nan", lambda tmp: _tiff_values(tmp, np.full((8, 8), np.nan, np.float32)), "NaN"),
    Case("tiff-empty", lambda tmp: _tiff_values(tmp, np.zeros((0, 8), np.uint8)), "empty"),
    Case("tiff-size-1e6-squared", lambda tmp: _tiff_size(tmp, 1_000_000), "TIFF ImageWidth"),
    Case("tiff-truncated", lambda tmp: truncate(tiff_file(tmp), 0.4), "TIFF"),
]


def _fits_scaled(tmp: Path, card: str) -> Path:
    """16-bit integers with BSCALE/BZERO, one of which ``card`` then replaces."""
    path = tmp / "scaled.fits"
    hdu = fits.PrimaryHDU(np.arange(64, dtype=np.int16).reshape(8, 8))
    hdu.header["BSCALE"], hdu.header["BZERO"] = 2.0, 10.0
    hdu.writeto(path)
    return set_card(path, card[:8].strip(), card)


def _tiff_values(tmp: Path, values: np.ndarray) -> Path:
    tifffile.imwrite(tmp / "values.tif", values)
    return tmp / "values.tif"


def _tiff_size(tmp: Path, size: int) -> Path:
    """An 8x8 classic little-endian TIFF whose ImageWidth/ImageLength tags then claim ``size`` (as LONG)."""
    path = _tiff_values(tmp, np.ones((8, 8), np.uint8))
    data = bytearray(path.read_bytes())
    ifd = struct.unpack_from("<I", data, 4)[0]
    for n in range(struct.unpack_from("<H", data, ifd)[0]):
        entry = ifd + 2 + 12 * n
        if struct.unpack_from("<H", data, entry)[0] in (256, 257):
            struct.pack_into("<HII", data, entry + 2, 4, 1, size)
    path.write_bytes(bytes(data))
    return path


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
