"""Public API: read, write, upscale. Composes io → model → infer → geometry; nothing reaches up."""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from sciSR import geometry, io
from sciSR.degrade import bin_array, replicate
from sciSR.errors import SciSRError
from sciSR.flux import FLUX_MODES, enforce_flux, flux_mode_for_units, rescale_flux_keywords
from sciSR.image import SciImage
from sciSR.infer.batch import JobResult, expand_inputs, run_batch
from sciSR.infer.interpolate import INTERPOLATORS, interpolate
from sciSR.intensity import denormalize, fit_normalization, normalize
from sciSR.paging import available_ram, disk_array, release_pages, row_chunks
from sciSR.progress import ProgressLike, cancel_checker, progress_callback


def read(path: str | os.PathLike, *, series: str | int | None = None, domain: str | None = None, **options) -> SciImage:
    """Read an image file or a DICOM series folder.

    Parameters
    ----------
    path : str or os.PathLike
        DICOM file or folder, NIfTI (``.nii``, ``.nii.gz``), FITS (``.fits``, ``.fz``, ...), PNG or TIFF.
        The format comes from the suffix, else from the file's content.
    series : str or int, optional
        DICOM only: SeriesInstanceUID, SeriesNumber or SeriesDescription when a folder holds several.
    domain : str, optional
        Override the domain (``"mri"``, ``"ct"``, ``"sky"``, ``"generic"``).
    **options
        Format options, e.g. ``hdu=`` (EXTNAME or index) for FITS.

    Returns
    -------
    SciImage
        Calibrated values with geometry. Voxels are never reordered or flipped.
    """
    return io.read(path, series=series, domain=domain, **options)


def write(img: SciImage, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write ``img``; the format comes from the suffix (no suffix: a DICOM series folder).

    The output is written to a temporary name and renamed, so a failure leaves nothing behind. An
    existing output is refused unless ``overwrite=True``; the input file is never replaced.

    Returns
    -------
    pathlib.Path
        The written file or folder.
    """
    return io.write(img, path, overwrite=overwrite)


def _scale_for(img: SciImage, scale: int | Sequence[int] | None) -> tuple[int, ...]:
    if scale is None:
        raise SciSRError("interpolation needs a scale (e.g. scale=2 or scale=(1, 1, 4))")
    if (
        not np.isscalar(scale)
        and img.channel_axis is not None
        and len(tuple(scale)) == img.array.ndim
    ):
        raise SciSRError(
            f"scale {tuple(scale)} includes the channel axis ({img.meta.get('channel_name', 'channels')}); "
            f"give one factor per spatial axis ({img.spatial_ndim})"
        )
    return geometry.normalize_scale(scale, img.spatial_ndim)


def _regrid(img: SciImage, array: np.ndarray, scale: tuple[int, ...], model_name: str, **extra: Any) -> SciImage:
    """The SciImage of the upscaled grid: same FOV, new affine / WCS / spacing / grid keywords."""
    # The mask lives on the input grid; upscale() puts the upscaled one back.
    meta = {k: v for k, v in img.meta.items() if k != "mask"}
    if img.meta.get("fits_header") is not None and img.spatial_ndim == 2:
        header = img.meta["fits_header"].copy()
        geometry.upscale_fits_grid_keywords(header, scale)
        meta["fits_header"] = header
    meta["provenance"] = [*img.meta.get("provenance", []), {"step": "upscale", "model": model_name,
                                                             "scale": list(scale), **extra}]
    return SciImage(
        array=array,
        affine=None if img.affine is None else geometry.upscale_affine(img.affine, scale),
        wcs=None if img.wcs is None else geometry.upscale_wcs(img.wcs, scale),
        spacing=geometry.upscale_spacing(img.spacing, scale),
        domain=img.domain,
        meta=meta,
    )


def list_models() -> list[str]:
    """Names :func:`upscale` accepts: the interpolation baselines, then the models shipped with sciSR."""
    from sciSR.hub import shipped_models

    return [*INTERPOLATORS, *shipped_models()]


def load_model(name_or_path: Any, *, trust_pickle: bool = False) -> Any:
    """Load a model by shipped name, model file or module; see :func:`sciSR.hub.load_model`.

    torch is imported here, not at ``import sciSR``, so reading and writing files stays fast.
    """
    from sciSR.hub import load_model as hub_load_model

    return hub_load_model(name_or_path, trust_pickle=trust_pickle)


def _valid_values(image: SciImage) -> tuple[np.ndarray, np.ndarray | None]:
    """float32 values with masked (NaN) pixels filled from valid neighbours, and the mask (None: none)."""
    values = image.array.astype(np.float32, copy=False)
    mask = image.meta.get("mask")
    if mask is None:
        mask = ~np.isfinite(values)
    mask = mask if mask.any() else None
    if mask is not None and mask.all():
        raise SciSRError("every pixel is masked (NaN); nothing to upscale", image.meta.get("source"))
    return _fill_masked(values, mask), mask


def _fill_masked(values: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    if mask is None:
        return values
    # Masked pixels must not leak into neighbours: fill them from the nearest valid pixel first.
    index = ndimage.distance_transform_edt(mask, return_distances=False, return_indices=True)
    return values[tuple(index)]


def _check_out(out: np.ndarray | None, image: SciImage, factors: tuple[int, ...], source: Any) -> None:
    expected = (*geometry.upscaled_shape(image.spatial_shape, factors), *image.array.shape[image.spatial_ndim:])
    if out is not None and tuple(out.shape) != expected:
        raise SciSRError(f"out has shape {tuple(out.shape)}; the result has shape {expected}", source)


def _finish(out: np.ndarray, values: np.ndarray, params: dict[str, Any], factors: tuple[int, ...], mode: str,
            mask: np.ndarray | None) -> None:
    """Undo the normalisation, project onto the input's flux and blank masked blocks, in place.

    Every step is local to a block of ``factors`` output voxels, so the result is processed in slabs of
    input rows (about :data:`sciSR.paging.RELEASE_EVERY_BYTES` each): temporaries stay small and a
    memory-mapped ``out`` hands each finished slab back to the OS.
    """
    s0 = factors[0]
    for lo, hi in row_chunks(values.shape[0], out[:s0].nbytes * 2):
        rows = slice(lo * s0, hi * s0)
        chunk = denormalize(out[rows], params) if params["method"] != "none" else np.array(out[rows])
        if mode != "none":
            if mode == "conserve":
                chunk /= float(np.prod(factors))
            chunk = enforce_flux(chunk, values[lo:hi], factors, mode, None if mask is None else mask[lo:hi])
        if mask is not None:
            chunk[replicate(mask[lo:hi], factors)] = np.nan
        out[rows] = chunk
        release_pages(out)


def upscale(
    img: SciImage | np.ndarray | Sequence[SciImage],
    model: Any,
    scale: int | Sequence[int] | None = None,
    *,
    tile: int | Sequence[int] | None = None,
    device: str = "auto",
    flux: str | None = None,
    progress: ProgressLike = False,
    cancel: threading.Event | None = None,
    out: np.ndarray | None = None,
    reference: SciImage | None = None,
) -> SciImage | np.ndarray:
    """Super-resolve an image on the field-of-view-preserving grid.

    Parameters
    ----------
    img : SciImage or numpy.ndarray or list of SciImage
        Input; a numpy array is treated as all-spatial and a numpy array is returned. A list of stacks
        with affines is fused onto the first stack's grid × ``scale`` by a multi-input model
        (``oktay-multi``), or averaged after resampling when ``model`` is an interpolation name (the
        classical multi-stack baseline); see :func:`sciSR.fusion.upscale_stacks`.
    model : str or os.PathLike or nn.Module
        ``"nearest"``, ``"linear"`` or ``"cubic"`` (interpolating cubic B-spline) baselines, a shipped
        model name (:func:`list_models`), a model file (``.safetensors`` + card) or a module built by
        :func:`sciSR.models.create_model`.
    scale : int or sequence of int
        One factor per spatial array axis, e.g. ``(1, 1, 4)`` through-plane; channel axes are never
        scaled. Required for interpolation; None for a learned model means the model card's scale.
        A 2D model on a volume runs plane by plane on the planes that contain the scaled axes.
    tile : int or sequence of int, optional
        Tile size in input voxels for learned models, overlap not included (None: automatic).
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"`` for learned models.
    flux : str, optional
        Sky images: ``"conserve"`` (block sums equal the input), ``"mean"`` (block means) or ``"none"``;
        None chooses from BUNIT (see :func:`sciSR.flux.flux_mode_for_units`); other domains: ``"none"``.
    progress : bool or callable
        ``True`` for a progress bar on a terminal, or ``f(fraction_done)``.
    cancel : threading.Event, optional
        When set, :class:`sciSR.Cancelled` is raised and nothing is returned.
    out : numpy.ndarray, optional
        float32 array of the result's shape that receives it, e.g. a ``numpy.memmap`` (see
        :func:`sciSR.paging.disk_array`) for results larger than RAM: tiles, un-normalisation, flux
        projection and masking then run in slabs and hand written pages back to the OS, so memory stays
        bounded by the input and the tiles in flight. The result's ``array`` is ``out``.
    reference : SciImage, optional
        A high-resolution image of the same object (with an affine) guiding a reference-based model
        (``ttsr``); resampled onto the output grid. See :func:`sciSR.fusion.upscale_with_reference`.

    Returns
    -------
    SciImage or numpy.ndarray
        Shape ``spatial·scale`` (channels unchanged); affine, WCS (with SIP), spacing and FITS grid
        keywords updated so every world coordinate stays on the same anatomy or star. Values are in
        the input's units (the network's normalisation is undone).
    """
    if isinstance(img, list | tuple) or reference is not None:
        from sciSR import multi_input as fusion

        if flux not in (None, "none") or out is not None:
            raise SciSRError("flux and out are not supported with stacks or a reference")
        options = {"tile": tile, "device": device, "progress": progress, "cancel": cancel}
        if isinstance(img, list | tuple):
            if reference is not None:
                raise SciSRError("give either a list of stacks or a reference, not both")
            return fusion.upscale_stacks(img, model, scale, **options)
        return fusion.upscale_with_reference(img, reference, model, scale, **options)
    as_array = not isinstance(img, SciImage)
    image = SciImage.from_array(np.asarray(img)) if as_array else img
    source = image.meta.get("source")
    check = cancel_checker(cancel)
    check()
    interpolation = isinstance(model, str) and model in INTERPOLATORS
    net = None if interpolation else load_model(model)
    if interpolation or scale is not None:
        factors: tuple[int, ...] | None = _scale_for(image, scale)
    else:
        factors = None

    mode = flux if flux is not None else (
        flux_mode_for_units(image.meta.get("units")) if image.domain == "sky" else "none"
    )
    if mode not in FLUX_MODES:
        raise SciSRError(f"flux must be one of {FLUX_MODES}, got {mode!r}")
    values, mask = _valid_values(image)

    with progress_callback(progress) as report:
        if net is None:
            name = model
            params = {"method": "none"}
            _check_out(out, image, factors, source)
            out = interpolate(values, factors, model, progress=report, cancel_check=check, out=out)
        else:
            card = getattr(net, "card", {}) or {}
            name = card.get("name", card.get("arch", type(net).__name__))
            norm = card.get("normalisation", {"method": "none"})
            params = fit_normalization(values, norm["method"], **{k: v for k, v in norm.items() if k != "method"})
            from sciSR.infer.predict import predict_array

            try:
                # Normalised window by window: a normalised copy of a frame larger than RAM is never made.
                out, factors = predict_array(net, values, image.spatial_ndim, factors, tile=tile, device=device,
                                             progress=report, cancel=cancel, out=out,
                                             transform=partial(normalize, params=params))
            except SciSRError as err:
                raise SciSRError(err.message, err.path or source) from None
    check()
    if mode != "none" and image.channel_axis is not None:
        raise SciSRError("flux conservation needs a single-channel image", source)
    out_mask = None if mask is None else replicate(mask, factors)
    _finish(out, values, params, factors, mode, mask)
    result = _regrid(image, out, factors, str(name), **({"flux": mode} if mode != "none" else {}))
    if result.meta.get("fits_header") is not None:
        rescale_flux_keywords(result.meta["fits_header"], mode, factors)
    if out_mask is not None:
        result.meta["mask"] = out_mask
    return result.array if as_array else result


def upscale_file(
    input_path: str | os.PathLike,
    output_path: str | os.PathLike,
    model: Any,
    scale: int | Sequence[int] | None = None,
    *,
    overwrite: bool = False,
    series: str | int | None = None,
    domain: str | None = None,
    hdu: Any = None,
    memmap: bool | None = None,
    **upscale_options: Any,
) -> Path:
    """Read, upscale and write one file (or DICOM series folder); the output is checked first.

    Parameters
    ----------
    input_path, output_path : str or os.PathLike
        Input file or DICOM series folder; output file (or folder for DICOM), format from the suffix.
    model, scale, **upscale_options
        As for :func:`upscale`.
    overwrite : bool
        Replace an existing output (never the input).
    series : str or int, optional
        DICOM series when a folder holds several.
    domain : str, optional
        Override the domain read from the file (see :func:`read`).
    hdu : int or str or (str, int), optional
        FITS: the image HDU (index, EXTNAME or ``(EXTNAME, EXTVER)``; default the first image), or
        ``"all"``: every science image of a multi-extension file (e.g. each ``SCI`` extension, each
        with its ERR/DQ companions), all other HDUs copied.
    memmap : bool, optional
        Build the result in a temporary file beside the output instead of in RAM (the FITS writer then
        streams it to disk in slabs). None: only when the result would take more than
        :data:`LARGE_RESULT_FRACTION` of the available RAM.

    Returns
    -------
    pathlib.Path
        The written output.
    """
    io.check_output(output_path, overwrite=overwrite, inputs=(os.fspath(input_path),))
    if not (isinstance(model, str) and model in INTERPOLATORS):
        model = load_model(model)  # once: its scale sizes the result below, upscale reuses it
    job = partial(_upscale_and_write, model=model, scale=scale, memmap=memmap, options=upscale_options)
    if hdu != "all":
        img = read(input_path, series=series, domain=domain, **({} if hdu is None else {"hdu": hdu}))
        return job(img, output_path, overwrite=overwrite)
    if io.format_for(Path(input_path)) != "fits":
        raise SciSRError('hdu="all" is for multi-extension FITS files', input_path)
    from sciSR.io.fits import science_hdus

    indices = science_hdus(input_path)
    # Each science HDU replaces its own place (and its ERR/DQ companions) in the file the previous step
    # wrote, so HDU indices never move; intermediate files live beside the output and are removed.
    with tempfile.TemporaryDirectory(prefix=".scisr-", dir=Path(output_path).parent) as folder:
        current = os.path.abspath(input_path)
        for k, index in enumerate(indices):
            img = read(input_path, domain=domain, hdu=index)
            img.meta["other_hdus"] = {**img.meta["other_hdus"], "path": current}
            last = k == len(indices) - 1
            target = output_path if last else Path(folder) / f"step{k}.fits"
            current = os.fspath(job(img, target, overwrite=overwrite or not last))
    return Path(current)


def _upscale_and_write(img: SciImage, output_path: str | os.PathLike, *, model: Any, scale: Any,
                       memmap: bool | None, options: dict[str, Any], overwrite: bool) -> Path:
    shape = _result_shape(img, model, scale)
    if memmap is None:
        memmap = 4 * int(np.prod(shape)) > LARGE_RESULT_FRACTION * available_ram()
    if not memmap:
        return write(upscale(img, model, scale, **options), output_path, overwrite=overwrite)
    with disk_array(shape, np.float32, folder=Path(output_path).parent) as buffer:
        return write(upscale(img, model, scale, out=buffer, **options), output_path, overwrite=overwrite)


LARGE_RESULT_FRACTION = 0.25
"""Share of the available RAM above which :func:`upscale_file` builds the result in a memory-mapped file."""


def _result_shape(img: SciImage, model: Any, scale: int | Sequence[int] | None) -> tuple[int, ...]:
    """Shape of ``upscale(img, model, scale)`` without running it."""
    if isinstance(model, str):
        factors = _scale_for(img, scale)
    else:
        from sciSR.infer.predict import plan_axes

        requested = None if scale is None else _scale_for(img, scale)
        factors = plan_axes(int(model.spatial_dims), model.scale, requested, img.spatial_ndim)[1]
    return (*geometry.upscaled_shape(img.spatial_shape, factors), *img.array.shape[img.spatial_ndim:])


def output_path_for(input_path: str | os.PathLike, out_dir: str | os.PathLike) -> Path:
    """Where a batch writes the result of ``input_path``: same name (and format) inside ``out_dir``."""
    return Path(out_dir) / Path(input_path).name


def upscale_batch(
    inputs: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    model: Any,
    scale: int | Sequence[int] | None = None,
    *,
    scheduler: Any = None,
    overwrite: bool = False,
    on_done: Any = None,
    **upscale_options: Any,
) -> list[JobResult]:
    """Upscale many files; on a Dask cluster when ``scheduler`` is given, else in a loop.

    Parameters
    ----------
    inputs : sequence of str or os.PathLike
        Files, folders (their image files, or one DICOM series) and globs.
    out_dir : str or os.PathLike
        Existing folder; each result keeps its input's name and format.
    model, scale, **upscale_options
        As for :func:`upscale` (``progress``/``cancel`` are per batch, not per file).
    scheduler : str or distributed.Client, optional
        Dask distributed scheduler address or client.
    overwrite : bool
        Replace existing outputs.
    on_done : callable, optional
        ``on_done(result, n_done, n_total)`` after each file.

    Returns
    -------
    list of sciSR.infer.batch.JobResult
        One per input, failures included (``result.error`` is the one-line message).
    """
    if not Path(out_dir).is_dir():
        raise SciSRError("output folder does not exist", out_dir)
    suffixes = sorted({s for fmt in io.FORMATS.values() for s in fmt.SUFFIXES if s})
    files = expand_inputs(inputs, suffixes)
    if scheduler is None and not (isinstance(model, str) and model in INTERPOLATORS):
        # One load (and one receptive-field measurement) for the whole loop, not one per file. Cluster
        # workers get the name or path and load it themselves rather than receiving pickled weights.
        model = load_model(model)
    job = partial(_batch_job, out_dir=os.fspath(out_dir), model=model, scale=scale, overwrite=overwrite,
                  options=upscale_options)
    return run_batch(files, job, scheduler=scheduler, on_done=on_done)


def _batch_job(path: Path, *, out_dir: str, model: Any, scale: Any, overwrite: bool, options: dict) -> Path:
    return upscale_file(path, output_path_for(path, out_dir), model, scale, overwrite=overwrite, **options)


def train(config: Any, *, overrides: Sequence[str] = (), resume: str | os.PathLike | None = None) -> Any:
    """Train a network from a YAML recipe (``configs/``) or a dict; see :func:`sciSR.train.run`.

    Parameters
    ----------
    config : str or os.PathLike or dict
        Recipe.
    overrides : sequence of str
        ``"section.key=value"`` (values parsed as YAML), e.g. ``"train.max_steps=200"``.
    resume : str or os.PathLike, optional
        A checkpoint this tool wrote (``runs/<name>/checkpoints/last.ckpt``).

    Returns
    -------
    sciSR.train.TrainResult
        ``model_path`` (a ``.safetensors`` model file usable by :func:`upscale`), ``metrics``, ``log_dir``.
    """
    from sciSR.training import run

    return run(config, overrides=overrides, resume=resume)


def evaluate(
    model: Any,
    files: Sequence[str | os.PathLike],
    *,
    scale: int | Sequence[int] | None = None,
    degrade: str | Callable[[np.ndarray, tuple[int, ...]], np.ndarray] = "mean",
    baseline: str = "cubic",
    tile: int | Sequence[int] | None = None,
    device: str = "auto",
) -> list[dict[str, Any]]:
    """PSNR/SSIM of ``model`` against ``baseline`` on simulated low-resolution versions of ``files``.

    Parameters
    ----------
    model : str or os.PathLike or nn.Module
        Anything :func:`upscale` accepts.
    files : sequence of str or os.PathLike
        High-resolution references.
    scale : int or sequence of int, optional
        Factor per spatial axis; default the model card's (a 2D model on a volume: its first two axes).
    degrade : str or callable
        ``"mean"`` (block average, FOV-true), ``"sum"`` (block sum, count-like data), or
        ``f(hr_array, scale) -> lr_array``.
    baseline : str
        Interpolation to compare with.

    Returns
    -------
    list of dict
        Per file: ``file``, ``scale``, ``psnr``, ``ssim``, ``psnr_baseline``, ``ssim_baseline``,
        ``delta_psnr`` (dB, model − baseline). SSIM is 3D when every axis has ≥ 11 voxels, else the mean
        over 2D planes.
    """
    from sciSR.metrics import psnr

    net = None if isinstance(model, str) and model in INTERPOLATORS else load_model(model)
    rows = []
    for path in files:
        hr = read(path)
        if scale is not None:
            factors = _scale_for(hr, scale)
        elif net is not None:
            from sciSR.infer.predict import plan_axes

            factors = plan_axes(int(net.spatial_dims), net.scale, None, hr.spatial_ndim)[1]
        else:
            raise SciSRError("evaluate needs a scale for an interpolation model", path)
        crop = tuple(slice(0, n - n % s) for n, s in zip(hr.spatial_shape, factors, strict=True))
        reference = hr.array[crop].astype(np.float32)
        if callable(degrade):
            low = degrade(reference, factors)
        else:
            low = bin_array(reference, factors, degrade).astype(np.float32)
        flux = None if hr.domain != "sky" else ("conserve" if degrade == "sum" else "mean")
        lr = SciImage.from_array(low, spacing=hr.spacing, domain=hr.domain,
                                 meta={k: hr.meta[k] for k in ("units", "channel_axis") if k in hr.meta})
        sr = upscale(lr, net if net is not None else model, factors, tile=tile, device=device, flux=flux)
        base = upscale(lr, baseline, factors, flux=flux)
        row = {"file": os.fspath(path), "scale": list(factors),
               "psnr": psnr(sr.array, reference), "ssim": _ssim_any(sr.array, reference),
               "psnr_baseline": psnr(base.array, reference), "ssim_baseline": _ssim_any(base.array, reference)}
        row["delta_psnr"] = row["psnr"] - row["psnr_baseline"]
        rows.append(row)
    return rows


def _ssim_any(sr: np.ndarray, hr: np.ndarray) -> float:
    from sciSR.metrics import data_range, ssim

    value_range = data_range(hr)
    if min(hr.shape) >= 11 and hr.ndim in (2, 3):
        return ssim(sr, hr, value_range)
    # Thin volumes (few slices): average 2D SSIM over the planes across the thinnest axis.
    axis = int(np.argmin(hr.shape))
    planes = [ssim(np.take(sr, i, axis), np.take(hr, i, axis), value_range) for i in range(hr.shape[axis])]
    return float(np.mean(planes))
