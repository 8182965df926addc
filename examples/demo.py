"""Upscale a real CT DICOM slice, a NIfTI MRI volume (through-plane) and a FITS telescope frame.

Writes each result in its own format next to a side-by-side PNG (input | cubic B-spline ×2). The
inputs are files that pydicom, nibabel and astropy ship; nothing is downloaded.

Run: ``python examples/demo.py --out demo_output``
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
from PIL import Image

import sciSR


def shipped_inputs() -> dict[str, Path]:
    """Paths of the real test files the demo uses (shipped inside installed packages)."""
    import astropy
    from nibabel.testing import data_path
    from pydicom.data import get_testdata_file

    return {
        "ct_dicom": Path(get_testdata_file("CT_small.dcm")),
        "mri_nifti": Path(data_path) / "anatomical.nii",
        "m13_fits": Path(os.path.dirname(astropy.__file__)) / "io/fits/hdu/compressed/tests/data/m13.fits",
    }


def to_display(plane: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Window a 2D plane to uint8 for a PNG."""
    scaled = (np.nan_to_num(plane, nan=lo) - lo) / max(hi - lo, 1e-12)
    return (np.clip(scaled, 0, 1) * 255).astype(np.uint8)


def side_by_side(before: np.ndarray, after: np.ndarray, path: Path, min_size: int = 300) -> None:
    """Save ``before`` (nearest-enlarged to the size of ``after``) and ``after`` side by side.

    Both panels are enlarged (nearest) until the smaller side has ``min_size`` pixels, so small test
    images stay visible; the enlargement is the same for both and adds no detail.
    """
    lo, hi = np.nanpercentile(before, [1, 99.5])
    zoom = max(1, int(np.ceil(min_size / min(after.shape))))
    size = (after.shape[1] * zoom, after.shape[0] * zoom)
    left = Image.fromarray(to_display(before, lo, hi)).resize(size, Image.NEAREST)
    right = Image.fromarray(to_display(after, lo, hi)).resize(size, Image.NEAREST)
    canvas = Image.new("L", (left.width + right.width + 8, max(left.height, right.height)), 255)
    canvas.paste(left, (0, 0))
    canvas.paste(right, (left.width + 8, 0))
    canvas.save(path)


def display_plane(img: sciSR.SciImage) -> np.ndarray:
    """The 2D view a reader expects: rows down the screen, superior / North up.

    Medical arrays are ``[i, j(, k)]`` (column, row, slice): a DICOM slice is shown as ``array.T``; a
    volume shows its middle i-plane (j, k) with k (superior for this NIfTI) up. FITS ``[y, x]`` has
    y = 0 at the bottom, so it is flipped vertically.
    """
    if img.spatial_ndim == 3:
        return np.flipud(img.array[img.array.shape[0] // 2].T)
    return img.array.T if img.affine is not None else np.flipud(img.array)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="demo_output", help="output folder (created)")
    out = Path(parser.parse_args().out)
    out.mkdir(parents=True, exist_ok=True)
    files = shipped_inputs()
    jobs = {
        # CT slice in-plane ×2; written back as a derived DICOM series (a folder).
        "ct_dicom": ((2, 2), out / "ct_small_x2", {}),
        # MRI volume through-plane ×2 along k, as a thick-slice knee scan would be.
        "mri_nifti": ((1, 1, 2), out / "anatomical_k2.nii.gz", {}),
        # Telescope frame ×2. m13.fits has no BUNIT; its pixels are detector counts, so block sums
        # must equal the input pixels ("conserve").
        "m13_fits": ((2, 2), out / "m13_x2.fits", {"flux": "conserve"}),
    }
    for name, (scale, target, options) in jobs.items():
        img = sciSR.read(files[name])
        sr = sciSR.upscale(img, "cubic", scale, **options)
        sciSR.write(sr, target, overwrite=True)
        back = sciSR.read(target)
        side_by_side(display_plane(img), display_plane(back), out / f"{name}_side_by_side.png")
        print(f"{name:10s} {files[name].name:>20s} {img.array.shape} -> {back.array.shape}  "
              f"spacing {tuple(round(s, 6) for s in img.spacing)} -> {tuple(round(s, 6) for s in back.spacing)}"
              f"  -> {target}")


if __name__ == "__main__":
    main()
