"""Upscale a real CT DICOM slice, a NIfTI MRI volume (through-plane) and a FITS telescope frame.

Writes each result (cubic B-spline) in its own format and, per image, a PNG figure of titled panels drawn
with matplotlib:

- top row, the file itself: the input, the cubic B-spline result that was written (read back), and the
  shipped model for that kind of image where one fits the scale;
- bottom row, a check against a known truth: the input reduced by the same factor (block means; block
  sums for counts), upscaled back by cubic and by the model, with the PSNR against the input.

Every panel covers the input's field of view, so a pixel twice as small is drawn twice as small. The
telescope frame's flux is conserved (each 2 × 2 block of the result sums to its input pixel, so its
values are 4 times smaller): its panels are shown in surface brightness, counts per input-pixel area, so
the ×2 frames look as bright as the input. The inputs are files that pydicom, nibabel and astropy ship;
nothing is downloaded.

Run: ``python examples/demo.py --out demo_output``
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

# The object-oriented Figure draws straight to files: no pyplot state, no window, no GUI backend.
from matplotlib.figure import Figure

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


@dataclass
class Job:
    """One demo image: how it is upscaled and where the result goes.

    Attributes
    ----------
    scale : tuple of int
        Factor per spatial array axis.
    target : pathlib.Path
        Output path (a folder for DICOM).
    model : str or None
        The shipped model shown beside cubic, when one produces ``scale``.
    options : dict
        Extra :func:`sciSR.upscale` keywords (``flux``).
    note : str
        Why there is no model panel, when ``model`` is None.
    """

    scale: tuple[int, ...]
    target: Path
    model: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    note: str = ""


def jobs_for(out: Path) -> dict[str, Job]:
    """The three demo jobs, writing under ``out``."""
    return {
        # CT slice in-plane ×2; written back as a derived DICOM series (a folder).
        "ct_dicom": Job((2, 2), out / "ct_small_x2", model="ct-x2"),
        # MRI volume through-plane ×2 along k, as a thick-slice knee scan would be.
        "mri_nifti": Job((1, 1, 2), out / "anatomical_k2.nii.gz",
                         note="no shipped model makes ×(1, 1, 2)\n(mri-thick-x4 is ×4 through-plane)"),
        # Telescope frame ×2. m13.fits has no BUNIT; its pixels are detector counts, so block sums must
        # equal the input pixels ("conserve").
        "m13_fits": Job((2, 2), out / "m13_x2.fits", model="sky-x2", options={"flux": "conserve"}),
    }


def display_plane(array: np.ndarray, like: sciSR.SciImage) -> np.ndarray:
    """The 2D view a reader expects of ``array`` (on ``like``'s kind of grid): superior / North up.

    Medical arrays are ``[i, j(, k)]`` (column, row, slice): a DICOM slice is shown as ``array.T``; a
    volume shows its middle i-plane (j, k) with k (superior for this NIfTI) up. FITS ``[y, x]`` has
    y = 0 at the bottom, so it is flipped vertically.
    """
    if array.ndim == 3:
        return np.flipud(array[array.shape[0] // 2].T)
    return array.T if like.affine is not None else np.flipud(array)


def crop_to_multiple(array: np.ndarray, scale: tuple[int, ...]) -> np.ndarray:
    """Crop each axis to a multiple of its factor (from the far end), so blocks tile it exactly."""
    return array[tuple(slice(0, n - n % s) for n, s in zip(array.shape, scale, strict=True))]


def reduce(array: np.ndarray, scale: tuple[int, ...], how: str) -> np.ndarray:
    """Block means (``"mean"``) or sums (``"sum"``) over ``scale`` blocks: the same field of view, coarser.

    Low-resolution pixel ``n`` is centred on high-resolution position ``s·n + (s − 1)/2``, where
    :func:`sciSR.upscale` puts it back.
    """
    shape = [v for n, s in zip(array.shape, scale, strict=True) for v in (n // s, s)]
    blocks = array.reshape(shape)
    axes = tuple(range(1, 2 * len(scale), 2))
    return blocks.sum(axis=axes) if how == "sum" else blocks.mean(axis=axes)


def psnr(result: np.ndarray, truth: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB, the peak being the truth's range of values."""
    mse = float(np.mean((result.astype(np.float64) - truth) ** 2))
    peak = float(truth.max() - truth.min())
    return float("inf") if mse == 0 else 10 * np.log10(peak**2 / mse)


def truth_check(img: sciSR.SciImage, job: Job) -> dict[str, np.ndarray | float]:
    """Reduce ``img`` by the job's scale, upscale it back with cubic (and the model), score against ``img``.

    Returns
    -------
    dict
        ``truth``, ``low``, ``cubic`` (and ``model``) arrays on the spatial grid, ``psnr_cubic``
        (and ``psnr_model``) in dB.
    """
    truth = crop_to_multiple(img.array.astype(np.float32), job.scale)
    conserve = job.options.get("flux") == "conserve"
    low = sciSR.SciImage.from_array(reduce(truth, job.scale, "sum" if conserve else "mean"),
                                    spacing=tuple(d * s for d, s in zip(img.spacing, job.scale, strict=True)),
                                    domain=img.domain, meta={"units": img.meta.get("units")})
    check: dict[str, np.ndarray | float] = {"truth": truth, "low": low.array}
    for name in ("cubic", job.model):
        if name is None:
            continue
        key = "cubic" if name == "cubic" else "model"
        result = sciSR.upscale(low, name, job.scale, **job.options).array
        check[key], check[f"psnr_{key}"] = result, psnr(result, truth)
    return check


def figure(name: str, source: Path, img: sciSR.SciImage, written: sciSR.SciImage, model_result: np.ndarray | None,
           check: dict[str, Any], job: Job, path: Path) -> Path:
    """Draw the demo figure of one image (see the module docstring) and save it as a PNG."""
    scale_text = "×" + ("(" + ", ".join(map(str, job.scale)) + ")" if len(set(job.scale)) > 1 else str(job.scale[0]))
    sky = job.options.get("flux") == "conserve"
    pixels = int(np.prod(job.scale))
    # Surface brightness: counts per input-pixel area. A ×2 pixel covers a quarter of an input pixel
    # (value × 4); a reduced pixel covers 4 input pixels (value ÷ 4).
    finer, coarser = (pixels, 1 / pixels) if sky else (1, 1)
    shown = display_plane(img.array, img)
    lo, hi = np.nanpercentile(shown, [1, 99.5])
    height, width = shown.shape
    style = {"cmap": "magma" if sky else "gray", "vmin": lo, "vmax": hi, "interpolation": "nearest",
             "extent": (0, width, height, 0)}  # every panel over the input's field of view
    # Sky spacing is in degrees per pixel; arcseconds read better.
    unit, per_unit = ("arcsec", 3600.0) if img.wcs is not None else ("mm", 1.0)
    spacing = ", ".join(f"{s * per_unit:.3g}" for s in img.spacing)
    sb = f"\n(surface brightness: ×{pixels} for display)" if sky else ""

    fig = Figure(figsize=(15, 8.2), layout="constrained")
    axes = fig.subplots(2, 4)
    top = [(img.array, f"Input: {source.name}\n{img.array.shape}, spacing ({spacing}) {unit}"),
           (written.array * finer, f"cubic B-spline {scale_text} (written, read back)\n{written.array.shape}{sb}")]
    top.append((model_result * finer, f"model {job.model} {scale_text}\n{model_result.shape}{sb}")
               if model_result is not None else (None, f"no model panel:\n{job.note}"))
    bottom = [(check["low"] * coarser, f"Input reduced {scale_text} (block {'sums' if sky else 'means'})\n"
               f"{check['low'].shape}" + (f"\n(surface brightness: ÷{pixels} for display)" if sky else "")),
              (check["cubic"], f"cubic B-spline {scale_text} of the reduced input\nPSNR {check['psnr_cubic']:.2f} dB"),
              (check.get("model"), f"model {job.model} {scale_text} of the reduced input\n"
               f"PSNR {check['psnr_model']:.2f} dB" if "model" in check else f"no model panel:\n{job.note}"),
              (check["truth"], f"Truth: the input itself\n{check['truth'].shape}")]
    for ax, (values, title) in [*zip(axes[0], top, strict=False), *zip(axes[1], bottom, strict=True)]:
        if values is None:
            ax.text(0.5, 0.5, title, ha="center", va="center", fontsize=10, transform=ax.transAxes)
        else:
            ax.imshow(display_plane(values, img), **style)
            ax.set_title(title, fontsize=10)
        ax.set_axis_off()
    axes[0, 3].set_axis_off()
    axes[0, 3].text(0.0, 0.5, f"Written: {job.target.name}\nformat of the input, geometry updated:\n"
                    f"spacing ({', '.join(f'{s * per_unit:.3g}' for s in written.spacing)}) {unit}\n\n"
                    "Bottom row: PSNR against the input,\nfrom a copy reduced by the same factor\n"
                    "(a plain reduction: a model trained for\nblur and noise may lose to cubic here).",
                    fontsize=10, va="center")
    what = {"ct_dicom": "CT slice (HU), in-plane", "mri_nifti": "MRI volume, through-plane along k (middle i-plane)",
            "m13_fits": "telescope frame (counts), flux conserved"}[name]
    fig.suptitle(f"{what} {scale_text}: every panel shows the input's field of view", fontsize=12)
    fig.savefig(path, dpi=90)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="demo_output", help="output folder (created)")
    out = Path(parser.parse_args().out)
    out.mkdir(parents=True, exist_ok=True)
    files = shipped_inputs()
    for name, job in jobs_for(out).items():
        img = sciSR.read(files[name])
        sr = sciSR.upscale(img, "cubic", job.scale, **job.options)
        sciSR.write(sr, job.target, overwrite=True)
        back = sciSR.read(job.target)
        model_result = sciSR.upscale(img, job.model, job.scale, **job.options).array if job.model else None
        png = figure(name, files[name], img, back, model_result, truth_check(img, job), job,
                     out / f"{name}_panels.png")
        print(f"{name:10s} {files[name].name:>20s} {img.array.shape} -> {back.array.shape}  "
              f"spacing {tuple(round(s, 6) for s in img.spacing)} -> {tuple(round(s, 6) for s in back.spacing)}"
              f"  -> {job.target}, {png.name}")


if __name__ == "__main__":
    main()
