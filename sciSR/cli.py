"""``scisr`` console script: parses and validates arguments, resolves the model once, calls :mod:`sciSR.api`.

Exit codes: 0 success, 1 data/model error (one line ``error: <file>: <problem>`` on stderr),
2 usage error, 130 interrupted (SIGINT), 143 terminated (SIGTERM). Tracebacks only with ``--debug``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import re
import signal
import sys
import traceback
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sciSR import api, io
from sciSR.errors import SciSRError
from sciSR.image import SciImage
from sciSR.io.atomic import MARKER, check_output
from sciSR.padding import outside_field, padding_value
from sciSR.pipeline import ResolvedModel, is_interpolator, parse_scale, parse_spacing
from sciSR.tempfiles import Terminated, cleanup_on_signals

EPILOG_UPSCALE = """examples:
  scisr upscale knee.nii.gz knee_sr.nii.gz --model cubic --scale 1,1,4
  scisr upscale --batch 'frames/*.fits' --out-dir frames_sr --model cubic --scale 2
  scisr upscale --batch scans/ --out-dir sr/ --model model.safetensors --dask tcp://scheduler:8786
  scisr upscale ct_series/ ct_sr/ --model cubic --scale 2,2,1
  scisr upscale study/ study_sr --series all --model cubic --scale 2   (one DICOM series folder per series)
  scisr upscale frame.fits frame_sr.fits --model cubic --scale 2 --flux conserve
  scisr upscale --stack sax.nii.gz --stack lax.nii.gz --stack cor.nii.gz fused.nii.gz --model fusion.safetensors
  scisr upscale --stack sax.nii.gz --stack lax.nii.gz avg.nii.gz --model cubic --scale 1,1,4   (plain average)
  scisr upscale t2.nii.gz t2_sr.nii.gz --model ttsr.safetensors --reference t1.nii.gz
  scisr upscale knee_thick.nii.gz knee_iso.nii.gz --self-supervised --time-budget 300   (learns from the scan)
  scisr upscale frame.fits frame_sr.fits --self-supervised --scale 2
"""


def _scale(text: str) -> int | tuple[int, ...]:
    try:
        return parse_scale(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _spacing(text: str) -> Any:
    try:
        return parse_spacing(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


_DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d+)?")


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text!r}")
    return value


def _device(text: str) -> str:
    if not _DEVICE.fullmatch(text):
        raise argparse.ArgumentTypeError(f"device must be auto, cpu, cuda, cuda:N or mps, got {text!r}")
    return text


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
    outside = outside_field(img)
    if outside is not None:
        lines.append(f"padding:     {int(outside.sum())} voxels outside the reconstructed field, value "
                     f"{padding_value(img, outside):g} (given back unchanged by an upscale)")
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


def describe_series(source: str, images: list[SciImage]) -> list[str]:
    """Lines of ``scisr info`` for the DICOM series of ``source``: one row per series, then the folder's notes."""
    header = ("series", "description", "modality", "size", "spacing (mm)", "uid")
    rows = [header]
    for img in images:
        meta = img.meta
        number = meta.get("series_number")
        rows.append(("-" if number in (None, "") else str(int(number)), meta.get("series_description") or "-",
                     meta.get("modality") or "-", "×".join(map(str, img.array.shape)),
                     ", ".join(f"{s:.4g}" for s in img.spacing), meta.get("series_uid") or "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = [f"file:        {source} ({len(images)} series; --series NUMBER|UID|DESCRIPTION describes one)"]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    # What every series was told (files skipped, localizers left out) is about the folder.
    common = [n for n in images[0].meta.get("notes", []) if all(n in img.meta.get("notes", []) for img in images)]
    return lines + [f"note:        {n}" for n in common]


def _cmd_info(args: argparse.Namespace) -> int:
    if args.series == "all" or (args.series is None and Path(args.input).is_dir()):
        images = api.read(args.input, series="all")
        one = len(images) == 1 and args.series is None
        print("\n".join(describe(images[0]) if one else describe_series(args.input, images)))
        return 0
    print("\n".join(describe(api.read(args.input, series=args.series))))
    return 0


def _model_arg(args: argparse.Namespace) -> ResolvedModel:
    """The model, resolved once (loaded, spec read) before any file is read."""
    return ResolvedModel.of(args.model, trust_pickle=args.trust_pickle)


def _cmd_upscale_fusion(args: argparse.Namespace) -> int:
    """``--stack A --stack B OUT`` (fused onto A's grid) or ``IN OUT --reference R``."""
    if args.batch or (args.flux and not args.stack):
        args.parser.error("--stack and --reference do not combine with --batch; --flux goes with --stack (sky frames)")
    if args.stack and args.reference:
        args.parser.error("give either --stack inputs or --reference, not both")
    expected = 1 if args.stack else 2
    if len(args.paths) != expected:
        args.parser.error("upscale --stack A --stack B ... takes one OUT" if args.stack
                          else "upscale IN OUT --reference R takes IN and OUT")
    inputs = tuple(args.stack) if args.stack else (args.paths[0], args.reference)
    target = args.paths[-1]
    check_output(target, overwrite=args.overwrite, inputs=inputs)
    read = [api.read(path, series=args.series, domain=args.domain) for path in inputs]
    options = {"tile": args.tile, "device": args.device, "progress": True}
    if args.stack and args.model == "drizzle":  # the classical baseline of dithered frames: no network to load
        result = api.upscale(read, "drizzle", args.scale)
    elif args.stack:
        result = api.upscale(read, _model_arg(args), args.scale, flux=args.flux, **options)
    else:
        result = api.upscale(read[0], _model_arg(args), args.scale, reference=read[1], **options)
    path = api.write(result, target, overwrite=args.overwrite)
    print(f"{' + '.join(inputs)} -> {path}")
    return 0


def _cmd_upscale_self_supervised(args: argparse.Namespace) -> int:
    """``IN OUT --self-supervised``: train on the image itself (see :func:`sciSR.self_supervised`)."""
    if args.batch or args.stack or args.reference or args.flux or args.model != "cubic":
        args.parser.error("--self-supervised takes IN OUT and no --batch, --stack, --reference, --flux or --model")
    if len(args.paths) != 2:
        args.parser.error("upscale IN OUT --self-supervised takes IN and OUT")
    from sciSR.self_supervision import self_supervised

    source, target = args.paths
    check_output(target, overwrite=args.overwrite, inputs=(source,))
    img = api.read(source, series=args.series, domain=args.domain)
    result = self_supervised(img, args.scale, spacing=args.grid, axis=args.axis, time_budget_s=args.time_budget,
                             device=args.device, precision=args.precision, consistency=args.consistency or "auto",
                             progress=True)
    path = api.write(result, target, overwrite=args.overwrite)
    step = result.meta["provenance"][-1]
    print(f"{source} -> {path} (self-supervised: {step['steps']} steps, scale {step['scale']}, "
          f"{step['train_seconds'] + step['infer_seconds']:.0f} s)")
    return 0


def _hdu(text: str | None) -> int | str | None:
    """``--hdu``: an index when it is a number, else an EXTNAME or ``all``."""
    return int(text) if text is not None and text.lstrip("-").isdigit() else text


def _cmd_upscale(args: argparse.Namespace) -> int:
    grid = [o for given, o in ((args.scale is not None, "--scale"), (args.spacing is not None, "--spacing"),
                               (args.isotropic, "--isotropic")) if given]
    if len(grid) > 1:
        args.parser.error(f"give one of --scale, --spacing, --isotropic, not {' and '.join(grid)}")
    args.grid = "isotropic" if args.isotropic else args.spacing
    if args.grid is not None and (args.stack or args.reference):
        args.parser.error("--spacing/--isotropic apply to one image; --stack and --reference take --scale")
    if args.adapt is not None:
        for given, other in ((args.self_supervised, "--self-supervised (it trains from scratch)"),
                             (args.stack, "--stack"), (args.reference, "--reference"),
                             (is_interpolator(args.model), f"--model {args.model} (interpolation)")):
            if given:
                args.parser.error(f"--adapt cannot be combined with {other}")
    symmetric = [o for given, o in ((args.ensemble, "--ensemble"), (args.uncertainty, "--uncertainty")) if given]
    if symmetric:
        for given, other in ((args.self_supervised, "--self-supervised"), (args.stack, "--stack"),
                             (args.reference, "--reference"), (args.guard, "--guard"),
                             (is_interpolator(args.model), f"--model {args.model} (interpolation)")):
            if given:
                args.parser.error(f"{symmetric[0]} cannot be combined with {other}")
    if args.series == "all":
        for given, option in ((args.batch, "--batch"), (args.stack, "--stack"), (args.reference, "--reference"),
                              (args.self_supervised, "--self-supervised"), (args.hdu, "--hdu")):
            if given:
                args.parser.error(f"--series all upscales every series of one DICOM folder IN into the folder OUT; "
                                  f"it cannot be combined with {option}")
    if args.self_supervised:
        return _cmd_upscale_self_supervised(args)
    if args.stack or args.reference:
        return _cmd_upscale_fusion(args)
    if is_interpolator(args.model):
        if args.scale is None and args.grid is None:
            args.parser.error(f"--model {args.model} (interpolation) needs --scale (or --spacing/--isotropic)")
        for given, option in ((args.tile is not None, "--tile"), (args.consistency is not None, "--consistency"),
                              (args.guard, "--guard")):
            if given:
                args.parser.error(f"{option} applies to networks, not to interpolation ({args.model})")
    if args.batch:
        return _cmd_upscale_batch(args)
    if len(args.paths) != 2:
        args.parser.error("upscale takes IN OUT (or --batch IN... --out-dir DIR)")
    source, target = args.paths
    # upscale_file checks the output before any work and builds a result larger than a quarter of the free
    # RAM in a memory-mapped file.
    path = api.upscale_file(source, target, _model_arg(args), args.scale, spacing=args.grid, overwrite=args.overwrite,
                            series=args.series, domain=args.domain, hdu=_hdu(args.hdu), progress=True,
                            tile=args.tile, device=args.device, flux=args.flux, force=args.force,
                            consistency=args.consistency or "auto", guard=args.guard, precision=args.precision,
                            ensemble=args.ensemble, uncertainty=args.uncertainty, adapt=args.adapt)
    print(f"{source} -> {path}")
    if args.series == "all":
        print("\n".join(f"  {entry}" for entry in sorted(path.iterdir()) if entry.name != MARKER))
    elif args.uncertainty:
        fits_result = io.format_for(path) == "fits"
        print(f"spread -> {f'{path}[{api.SPREAD_EXTNAME}]' if fits_result else api.uncertainty_path_for(path)}")
    return 0


def _cmd_upscale_batch(args: argparse.Namespace) -> int:
    if not args.paths or not args.out_dir:
        args.parser.error("--batch needs inputs and --out-dir DIR")
    tty = sys.stderr.isatty()

    def report(result, done: int, total: int) -> None:
        if result.ok:
            print(f"[{done}/{total}] {result.input} -> {result.output}", file=sys.stderr if tty else sys.stdout)
        else:
            print(f"error: {result.error}", file=sys.stderr)

    # On a cluster the workers load the model themselves (no pickled weights travel).
    model = args.model if args.dask else _model_arg(args)
    results = api.upscale_batch(args.paths, args.out_dir, model, args.scale, spacing=args.grid, scheduler=args.dask,
                                overwrite=args.overwrite, on_done=report, tile=args.tile, device=args.device,
                                flux=args.flux, hdu=_hdu(args.hdu), force=args.force,
                                consistency=args.consistency or "auto", guard=args.guard, precision=args.precision,
                                ensemble=args.ensemble, uncertainty=args.uncertainty, adapt=args.adapt)
    failed = sum(not r.ok for r in results)
    print(f"{len(results) - failed} of {len(results)} upscaled, {failed} failed",
          file=sys.stderr if failed else sys.stdout)
    return 1 if failed else 0


def _cmd_train(args: argparse.Namespace) -> int:
    """``scisr train RECIPE``: run :func:`sciSR.training.run`; ``--list`` names the installed recipes."""
    from sciSR import training  # Lightning loads only when a run starts

    if args.list:
        print("\n".join(training.list_recipes()))
        return 0
    if args.config is None:
        args.parser.error("a recipe name or YAML file is required (scisr train --list names the recipes)")
    result = training.run(args.config, overrides=args.set or (), resume=args.resume)
    metrics = ", ".join(f"{k}={v:.4g}" for k, v in sorted(result.metrics.items()) if isinstance(v, float))
    print(f"model: {result.model_path}\nlogs: {result.log_dir}\n{metrics}")
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    from sciSR import hub, models

    if args.name:
        print("\n".join(hub.describe_card(args.name)))
        return 0
    header = ("model", "domain", "scale", "degradation", "held-out gain", "size")
    rows = []
    for name in hub.shipped_models():
        s = hub.model_summary(name)
        gain = "-" if s["gain_db"] is None else f"{s['gain_db']:+.2f} dB vs {s['baseline']}"
        rows.append((name, s["domain"], "×" + "×".join(map(str, s["scale"])), s["degradation"] or "-", gain,
                     hub.format_size(s["size_bytes"])))
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    print("(held-out gain: mean PSNR gain on images never trained on; scisr models NAME prints the whole card)")
    print()
    print("interpolation baselines: " + ", ".join(n for n in api.list_models() if is_interpolator(n)))
    print()
    rows = [(m["name"], m["kind"], str(m["year"]), m["paper"]) for m in models.list_architectures()]
    widths = [max(len(r[i]) for r in [("architecture", "kind", "year", "paper"), *rows]) for i in range(3)]
    for row in [("architecture", "kind", "year", "paper"), *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(row[:3], widths, strict=True)) + "  " + row[3])
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from sciSR import hub

    model = hub.load_model(args.model, trust_pickle=args.trust_pickle)
    path = hub.export_model(model, args.output, args.format, overwrite=args.overwrite)
    print(f"{args.model} -> {path} ({args.format})")
    return 0


def _cmd_science(args: argparse.Namespace) -> int:
    """Each file is an LR frame: upscale it with the model, then run the science report on the pair."""
    from sciSR import science

    model = _model_arg(args)
    if args.report_dir:
        Path(args.report_dir).mkdir(parents=True, exist_ok=True)
    reports = []
    for path in args.files:
        lr = api.read(path)
        sr = api.upscale(lr, model, args.scale, tile=args.tile, device=args.device, flux=args.flux)
        result = science.report(lr, sr, model=model, device=args.device)
        print(f"== {path}\n{result.table()}")
        if args.report_dir:
            stem = Path(path).name.split(".")[0]
            result.to_json(Path(args.report_dir) / f"{stem}.science.json", overwrite=True)
            result.save_png(Path(args.report_dir) / f"{stem}.science.png", overwrite=True)
        reports.append({"file": str(path), **result.as_dict()})
    if args.json:
        Path(args.json).write_text(json.dumps(reports, indent=2))
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    if args.science:
        return _cmd_science(args)
    rows = api.evaluate(_model_arg(args), args.files, scale=args.scale, degrade=args.degrade,
                        baseline=args.baseline, tile=args.tile, device=args.device)
    print(f"{'file':40s} {'scale':>9s} {'PSNR':>7s} {'SSIM':>7s} {'baseline':>9s} {'PSNR':>7s} {'SSIM':>7s} "
          f"{'ΔPSNR':>7s}")
    for r in rows:
        scale = "x".join(str(s) for s in r["scale"])
        print(f"{Path(r['file']).name[:40]:40s} {scale:>9s} {r['psnr']:7.2f} {r['ssim']:7.4f} {r['baseline']:>9s} "
              f"{r['psnr_baseline']:7.2f} {r['ssim_baseline']:7.4f} {r['delta_psnr']:+7.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``scisr`` (exposed for documentation and tests)."""
    parser = argparse.ArgumentParser(prog="scisr", description="Super-resolution for scientific images.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)

    info = sub.add_parser("info", help="describe an image", description="Format, shape, spacing, "
                          "orientation, units and WCS of a file or DICOM series folder.",
                          epilog="example:\n  scisr info CT_small.dcm",
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    info.add_argument("input")
    info.add_argument("--series", help="DICOM series (UID, number or description) when a folder holds several; "
                      "a folder of several is listed, one row per series ('all' lists even one)")
    info.set_defaults(func=_cmd_info)

    up = sub.add_parser("upscale", help="super-resolve an image", epilog=EPILOG_UPSCALE,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    up.add_argument("paths", nargs="*", metavar="IN OUT",
                    help="input file or DICOM series folder, then the output file (format from the suffix) or "
                    "folder for DICOM; with --batch: inputs only (files, folders, globs)")
    up.add_argument("--model", default="cubic",
                    help="nearest | linear | cubic | shipped model | model file (default: cubic)")
    up.add_argument("--batch", action="store_true", help="many inputs, results in --out-dir")
    up.add_argument("--out-dir", help="output folder for --batch")
    up.add_argument("--dask", metavar="SCHEDULER", help="Dask distributed scheduler address for --batch")
    up.add_argument("--trust-pickle", action="store_true",
                    help="allow a .pt/.pth model file (a pickle: only files you made yourself)")
    up.add_argument("--scale", type=_scale, help="one factor, or one per spatial axis: 2 or 1,1,4")
    up.add_argument("--spacing", type=_spacing,
                    help="output voxel size instead of --scale: one value or one per spatial axis, in the "
                         "image's units (mm; deg on the sky) or with a unit (0.5mm, 0.2arcsec); FOV kept")
    up.add_argument("--isotropic", action="store_true",
                    help="output voxel size = the finest input spacing on every axis (instead of --scale)")
    up.add_argument("--tile", type=_positive_int, help="tile size in input voxels (default: automatic)")
    up.add_argument("--device", type=_device, default="auto", help="auto | cpu | cuda | cuda:N | mps")
    up.add_argument("--flux", choices=("conserve", "mean", "none"), help="sky images: flux handling")
    up.add_argument("--series", help="DICOM series (UID, number or description) when a folder holds several, or "
                    "'all': every series, OUT then a new folder of DICOM series <SeriesNumber>_<SeriesDescription>")
    up.add_argument("--hdu", help="FITS: image HDU (index or EXTNAME), or 'all' for every science extension")
    up.add_argument("--domain", choices=("mri", "ct", "sky", "generic"), help="override the domain")
    up.add_argument("--overwrite", action="store_true", help="replace an existing output")
    up.add_argument("--consistency", choices=("auto", "on", "off"),
                    help="networks: project the result onto the input under the acquisition's forward model "
                         "(default auto: unless the self-check shows a loss)")
    up.add_argument("--guard", action="store_true",
                    help="networks: write the strongest baseline instead when the self-check shows the model losing")
    up.add_argument("--ensemble", action="store_true",
                    help="networks: average over the flips/axis swaps that keep the scale (8 passes for ×2 in 2D)")
    up.add_argument("--uncertainty", action="store_true",
                    help="networks: also write the per-voxel spread over those passes: FITS extension SR_STD, "
                         "else OUT's <stem>_uncertainty<suffix>")
    up.add_argument("--adapt", type=_positive_seconds, metavar="SECONDS",
                    help="2D networks: fine-tune on IN itself for SECONDS first (test-time adaptation; the "
                         "adapted weights run only when they beat the shipped ones on rows held out from it)")
    up.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"), default="fp32",
                    help="networks: arithmetic precision (default fp32; auto: bf16 where the hardware has it)")
    up.add_argument("--force", action="store_true",
                    help="accept a result of any size and run time (otherwise > 64 GiB, more than the free disk, "
                         "or an estimated run time above $SCISR_MAX_HOURS, default 24 h, is refused)")
    up.add_argument("--stack", action="append", metavar="IN",
                    help="a low-res stack to fuse (repeat; the output is on the first stack's grid × scale; "
                         "a multi-input model, or an interpolation name for the plain average). Sky frames "
                         "with WCS are placed by sky position (the frames' flux kept on average) or drizzled "
                         "with --model drizzle")
    up.add_argument("--reference", metavar="REF", help="high-res reference guiding a reference-based model (ttsr)")
    up.add_argument("--self-supervised", action="store_true",
                    help="train a network on IN itself (volumes: through-plane from in-plane slices; frames: ZSSR)")
    up.add_argument("--axis", type=int, help="--self-supervised: low-resolution axis (default: largest spacing)")
    up.add_argument("--time-budget", type=float, default=300.0, metavar="SECONDS",
                    help="--self-supervised: wall-clock limit for training + inference (default 300)")
    up.set_defaults(func=_cmd_upscale, parser=up)

    tr = sub.add_parser("train", help="train a network from a recipe (name or YAML file)",
                        epilog="examples:\n  scisr train --list\n  scisr train ct_x2 --set train.max_steps=200\n"
                        "  scisr train my_recipe.yaml --resume runs/my-model/checkpoints/last.ckpt\n"
                        "multi-GPU / multi-node: see `python -c 'import sciSR.training; help(sciSR.training)'`",
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    tr.add_argument("config", nargs="?", metavar="RECIPE",
                    help="name of an installed recipe (see --list) or a YAML recipe file")
    tr.add_argument("--list", action="store_true", help="list the installed recipes and exit")
    tr.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a recipe value (repeatable)")
    tr.add_argument("--resume", help="checkpoint written by an earlier run of this recipe")
    tr.set_defaults(func=_cmd_train, parser=tr)

    models = sub.add_parser("models", help="list models (with their held-out gain) and architectures",
                            epilog="example:\n  scisr models mri-thick-x4   (the whole model card)",
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    models.add_argument("name", nargs="?", help="a shipped model or model file: print its whole card")
    models.set_defaults(func=_cmd_models)

    ev = sub.add_parser("evaluate", help="PSNR/SSIM of a model vs cubic on simulated low-res inputs",
                        epilog="example:\n  scisr evaluate --model model.safetensors knee1.nii.gz knee2.nii.gz",
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    ev.add_argument("files", nargs="+", help="high-resolution reference images")
    ev.add_argument("--model", required=True, help="shipped model, model file or interpolation name")
    ev.add_argument("--scale", type=_scale, help="factor per spatial axis (default: the model's)")
    ev.add_argument("--degrade", choices=("mean", "sum"), default="mean", help="how low-res inputs are made")
    ev.add_argument("--baseline", default="strongest", choices=("strongest", "nearest", "linear", "cubic", "zerofill"),
                    help="interpolation to compare with (default: the strongest of the image's domain)")
    ev.add_argument("--tile", type=_positive_int)
    ev.add_argument("--device", type=_device, default="auto")
    ev.add_argument("--json", help="also write the rows as JSON here")
    ev.add_argument("--science", action="store_true",
                    help="sky frames: treat each file as the LOW-res input, upscale it with the model and report "
                         "photometry, WCS centroid shifts, noise and hallucinated sources (sciSR.science.report)")
    ev.add_argument("--flux", choices=("conserve", "mean", "none"), help="with --science: flux mode (default: BUNIT)")
    ev.add_argument("--report-dir", help="with --science: write <name>.science.json and .png here")
    ev.add_argument("--trust-pickle", action="store_true", help="allow a .pt/.pth model file")
    ev.set_defaults(func=_cmd_evaluate)

    ex = sub.add_parser("export", help="export a model to TorchScript, ONNX, a MONAI bundle or a BioImage Model "
                        "Zoo package", epilog="examples:\n  scisr export model.safetensors model.onnx --format onnx\n"
                        "  scisr export generic-x2 generic-x2.zip --format bioimageio",
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    ex.add_argument("model", help="shipped model name or model file")
    ex.add_argument("output", help="output file (.pt/.onnx; bioimageio: .zip) or folder (bundle; bioimageio)")
    ex.add_argument("--format", choices=("torchscript", "onnx", "bundle", "bioimageio"), default="torchscript")
    ex.add_argument("--overwrite", action="store_true")
    ex.add_argument("--trust-pickle", action="store_true", help="allow a .pt/.pth model file")
    ex.set_defaults(func=_cmd_export)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings (clipping, assumed units) as one line each, like errors."""
    print(f"warning: {message}".replace("\n", " "), file=sys.stderr)


def _subject(args: argparse.Namespace) -> str:
    """The file an error is about when the error itself names none."""
    paths = getattr(args, "stack", None) or getattr(args, "paths", None) or getattr(args, "files", None)
    if getattr(args, "config", None):
        return str(args.config)
    if getattr(args, "input", None):
        return str(args.input)
    if paths:
        return str(paths[0])
    return str(getattr(args, "model", "") or "")


@contextlib.contextmanager
def _notes() -> Iterator[None]:
    """The library's INFO messages (e.g. the self-check) as one ``note:`` line each on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("note: %(message)s"))
    logger = logging.getLogger("sciSR")
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``scisr``; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        # SIGINT/SIGTERM remove the temporaries of the output being written, then exit 130/143 (128 + signal).
        with warnings.catch_warnings(), cleanup_on_signals(), _notes():
            warnings.showwarning = _show_warning
            return args.func(args)
    except SciSRError as err:
        if args.debug:
            traceback.print_exc()
        subject = _subject(args)
        where = "" if err.path or not subject else f"{subject}: "
        print(f"error: {where}{err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted (SIGINT); temporary files removed", file=sys.stderr)
        return 128 + signal.SIGINT
    except Terminated as stop:
        print(f"error: terminated ({stop.signal_name}); temporary files removed", file=sys.stderr)
        return 128 + stop.signum
    except BrokenPipeError:
        # The reader of our output went away (`scisr info x | head`): stop quietly, as other tools do; stdout
        # goes to /dev/null so that flushing it at exit cannot raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    except Exception as err:
        if args.debug:
            traceback.print_exc()
        subject = _subject(args)
        print(f"error: {subject + ': ' if subject else ''}{type(err).__name__}: {err}".replace("\n", " "),
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
