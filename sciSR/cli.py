"""``scisr`` console script: parses arguments, calls :mod:`sciSR.api`, reports.

Exit codes: 0 success, 1 data/model error (one line ``error: <file>: <problem>`` on stderr),
2 usage error. Tracebacks only with ``--debug``.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence

import numpy as np

from sciSR import api
from sciSR.errors import SciSRError
from sciSR.image import SciImage
from sciSR.io.atomic import check_output

EPILOG_UPSCALE = """examples:
  scisr upscale knee.nii.gz knee_sr.nii.gz --model cubic --scale 1,1,4
  scisr upscale ct_series/ ct_sr/ --model cubic --scale 2,2,1
  scisr upscale frame.fits frame_sr.fits --model cubic --scale 2 --flux conserve
"""


def _parse_scale(text: str) -> int | tuple[int, ...]:
    try:
        parts = tuple(int(p) for p in text.replace("x", ",").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"scale must be integers like 2 or 1,1,4, got {text!r}") from None
    return parts[0] if len(parts) == 1 else parts


def _orientation(img: SciImage) -> str:
    if img.affine is None:
        return "-"
    import nibabel as nib

    return "".join(nib.orientations.aff2axcodes(img.affine)[: max(img.spatial_ndim, 3)])


def describe(img: SciImage) -> list[str]:
    """Lines of ``scisr info``: format, shape, spacing, orientation, units, WCS summary."""
    meta = img.meta
    finite = img.array[np.isfinite(img.array)] if img.array.dtype.kind == "f" else img.array
    unit = meta.get("spacing_unit") or ("mm" if img.affine is not None else "deg" if img.wcs is not None else "px")
    lines = [
        f"file:        {meta.get('source', '-')}",
        f"format:      {meta.get('format', '-')}",
        f"domain:      {img.domain}",
        f"shape:       {img.array.shape} ({img.array.dtype}; stored {meta.get('stored_dtype', '-')})",
        f"spacing:     ({', '.join(f'{s:.6g}' for s in img.spacing)}) {unit}",
        f"orientation: {_orientation(img)}",
        f"units:       {meta.get('units') or '-'}",
        f"range:       [{finite.min():.6g}, {finite.max():.6g}]" if finite.size else "range:       empty",
    ]
    if img.channel_axis is not None:
        lines.append(f"channels:    axis {img.channel_axis} ({meta.get('channel_name', 'channel')})")
    if img.affine is not None:
        lines.append("affine:      " + np.array2string(img.affine, precision=4, suppress_small=True).replace(
            "\n", "\n             "))
    if img.wcs is not None:
        w = img.wcs.wcs
        lines.append(f"wcs:         {' '.join(w.ctype)}  CRVAL=({', '.join(f'{v:.6f}' for v in w.crval)})  "
                     f"CRPIX=({', '.join(f'{v:.3f}' for v in w.crpix)})")
        lines.append(f"pixel scale: {', '.join(f'{s * 3600:.4g}' for s in img.spacing)} arcsec"
                     + ("  (SIP distortion)" if img.wcs.sip is not None else ""))
    lines += [f"note:        {n}" for n in meta.get("notes", [])]
    return lines


def _cmd_info(args: argparse.Namespace) -> int:
    img = api.read(args.input, series=args.series)
    print("\n".join(describe(img)))
    return 0


def _cmd_upscale(args: argparse.Namespace) -> int:
    # Refuse a bad output before spending minutes on the upscale.
    check_output(args.output, overwrite=args.overwrite, inputs=(args.input,))
    img = api.read(args.input, series=args.series, domain=args.domain)
    out = api.upscale(img, args.model, args.scale, tile=args.tile, device=args.device,
                      flux=args.flux, progress=True)
    path = api.write(out, args.output, overwrite=args.overwrite)
    print(f"{args.input} -> {path}  {img.array.shape} -> {out.array.shape}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``scisr`` (exposed for documentation and tests)."""
    parser = argparse.ArgumentParser(prog="scisr", description="Super-resolution for scientific images.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)

    info = sub.add_parser("info", help="describe an image", description="Format, shape, spacing, "
                          "orientation, units and WCS of a file or DICOM series folder.",
                          epilog="example:\n  scisr info CT_small.dcm", formatter_class=argparse.RawDescriptionHelpFormatter)
    info.add_argument("input")
    info.add_argument("--series", help="DICOM series (UID, number or description) when a folder holds several")
    info.set_defaults(func=_cmd_info)

    up = sub.add_parser("upscale", help="super-resolve an image", epilog=EPILOG_UPSCALE,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    up.add_argument("input", help="file or DICOM series folder")
    up.add_argument("output", help="output file (format from the suffix) or folder for DICOM")
    up.add_argument("--model", default="cubic", help="nearest | linear | cubic (default: cubic)")
    up.add_argument("--scale", type=_parse_scale, help="one factor, or one per spatial axis: 2 or 1,1,4")
    up.add_argument("--tile", type=int, help="tile size in input voxels (default: automatic)")
    up.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N | mps")
    up.add_argument("--flux", choices=("conserve", "mean", "none"), help="sky images: flux handling")
    up.add_argument("--series", help="DICOM series when a folder holds several")
    up.add_argument("--domain", choices=("mri", "ct", "sky", "generic"), help="override the domain")
    up.add_argument("--overwrite", action="store_true", help="replace an existing output")
    up.set_defaults(func=_cmd_upscale)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``scisr``; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except SciSRError as err:
        if args.debug:
            traceback.print_exc()
        where = "" if err.path else f"{getattr(args, 'input', '')}: " if getattr(args, "input", None) else ""
        print(f"error: {where}{err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 1
    except Exception as err:  # noqa: BLE001 - the CLI promises one line, the traceback is behind --debug
        if args.debug:
            traceback.print_exc()
        print(f"error: {getattr(args, 'input', '')}: {type(err).__name__}: {err}".replace("\n", " "),
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
