"""Public API: read, write, upscale, evaluate — the thin public face of :mod:`sciSR.pipeline`.

Each function resolves what the caller asked into an :class:`~sciSR.pipeline.UpscaleRequest` once and
hands it to the pipeline's steps; multi-stack and reference-guided calls go to :mod:`sciSR.multi_input`.
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal, overload

import numpy as np

from sciSR import io
from sciSR.blocks import bin_array
from sciSR.consistency import strongest_baseline, through_plane
from sciSR.ensemble import upscale_ensemble
from sciSR.errors import Cancelled, SciSRError
from sciSR.flux import flux_mode_for_units
from sciSR.image import SciImage
from sciSR.infer.batch import JobResult, expand_inputs, run_batch
from sciSR.infer.interpolate import INTERPOLATORS
from sciSR.paging import available_ram, disk_array, scratch_folder
from sciSR.pipeline import ResolvedModel, SpacingLike, UpscaleRequest, resolve_factors, upscale_image
from sciSR.progress import ProgressLike


@overload
def read(path: str | os.PathLike, *, series: Literal["all"], domain: str | None = None,
         **options) -> list[SciImage]: ...


@overload
def read(path: str | os.PathLike, *, series: str | int | None = None, domain: str | None = None,
         **options) -> SciImage: ...


def read(path: str | os.PathLike, *, series: str | int | None = None, domain: str | None = None,
         **options) -> SciImage | list[SciImage]:
    """Read an image file or a DICOM series folder (or every series of a DICOM folder).

    Parameters
    ----------
    path : str or os.PathLike
        DICOM file or folder, NIfTI (``.nii``, ``.nii.gz``), FITS (``.fits``, ``.fz``, ...), PNG or TIFF.
        The format comes from the suffix, else from the file's content.
    series : str or int, optional
        DICOM only: SeriesInstanceUID, SeriesNumber or SeriesDescription when a folder holds several, or
        ``"all"`` for every series (other formats refuse ``"all"``).
    domain : str, optional
        Override the domain (``"mri"``, ``"ct"``, ``"sky"``, ``"generic"``).
    **options
        Format options, e.g. ``hdu=`` (EXTNAME or index) for FITS.

    Returns
    -------
    SciImage or list of SciImage
        Calibrated values with geometry. Voxels are never reordered or flipped. With ``series="all"``: one
        image per series, ordered by SeriesNumber then SeriesInstanceUID, series made only of localizers
        left out (see :func:`sciSR.io.dicom.list_series`).
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


def list_models() -> list[str]:
    """Names :func:`upscale` accepts: the interpolation baselines, ``drizzle`` (a list of dithered sky frames),
    then the models shipped with sciSR."""
    from sciSR.hub import shipped_models

    return [*INTERPOLATORS, "drizzle", *shipped_models()]


def upscale(
    img: SciImage | np.ndarray | Sequence[SciImage],
    model: Any,
    scale: int | Sequence[int] | None = None,
    *,
    spacing: SpacingLike | None = None,
    tile: int | Sequence[int] | None = None,
    device: str = "auto",
    flux: str | None = None,
    progress: ProgressLike = False,
    cancel: threading.Event | None = None,
    out: np.ndarray | None = None,
    reference: SciImage | None = None,
    consistency: str = "auto",
    guard: bool = False,
    precision: str = "fp32",
    ensemble: bool = False,
    uncertainty: bool = False,
    adapt: float | None = None,
) -> SciImage | np.ndarray | tuple[SciImage, SciImage] | tuple[np.ndarray, np.ndarray]:
    """Super-resolve an image on the field-of-view-preserving grid.

    Parameters
    ----------
    img : SciImage or numpy.ndarray or list of SciImage
        Input; a numpy array is treated as all-spatial and a numpy array is returned. A list of stacks
        with affines is fused onto the first stack's grid × ``scale`` by a multi-input model
        (``oktay-multi``), or averaged after resampling when ``model`` is an interpolation name (the
        classical multi-stack baseline); see :func:`sciSR.multi_input.upscale_stacks`. A list of dithered
        sky frames with WCS and ``model="drizzle"`` is drizzled onto the first frame's grid × ``scale``
        (:func:`sciSR.infer.drizzle.drizzle_frames`; the weight map in ``meta["weight"]``); with a
        multi-input model (or an interpolation name) the frames are placed by sky position and fused, each
        frame's flux projection averaged over the frames (``flux=`` as for one frame).
    model : str or os.PathLike or nn.Module
        ``"nearest"``, ``"linear"``, ``"cubic"`` (interpolating cubic B-spline) or ``"zerofill"`` (k-space
        zero padding) baselines, ``"drizzle"`` (a list of dithered frames), a shipped
        model name (:func:`list_models`), a model file (``.safetensors`` + card) or a module built by
        :func:`sciSR.models.create_model`.
    scale : int or sequence of int
        One factor per spatial array axis, e.g. ``(1, 1, 4)`` through-plane; channel axes are never
        scaled. Required for interpolation; None for a learned model means the model card's scale.
        A 2D model on a volume runs plane by plane on the planes that contain the scaled axes; through the
        plane (one scaled axis) on both families of such planes, fused along the thick axis
        (:mod:`sciSR.infer.orientations`; ``fusion`` in the provenance; twice the inference time).
    spacing : float or sequence of float or str, optional
        The output voxel size instead of ``scale`` (not both): one value, one per spatial axis, or
        ``"isotropic"`` (the finest input spacing on every axis), in the image's units (mm; deg on the
        sky). The field of view is kept: ``n' = round(n·spacing_in/spacing)`` voxels, voxel size
        ``FOV/n'``. Interpolation resamples onto that grid directly; a network runs at its own factors and
        its result is resampled onto it (cubic B-spline, or pixel overlap when flux is kept; recorded as
        ``grid`` in the provenance), so the grid may not be finer than the network reaches and never
        coarser than the input. For any ratio learned from the image itself, see
        :func:`sciSR.self_supervised` (``spacing=``).
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
        (``ttsr``); resampled onto the output grid. See :func:`sciSR.multi_input.upscale_with_reference`.
    consistency : str
        Learned models: ``"auto"`` (default), ``"on"`` or ``"off"``. ``"on"`` projects the result onto the
        input under the acquisition's forward model (MRI k-space, thick-slice profile, CT blur; see
        :mod:`sciSR.consistency`), in float64 on values in the input's units, so that degrading the result
        again gives the input back; ``"auto"`` does so unless the self-check shows the projection loses.
        Interpolation ignores it; on the sky the flux projection (``flux=``) is the consistency step.
    guard : bool
        Learned models: when the self-check shows the model losing to the strongest baseline of the domain
        (by more than 0.05 dB), return that baseline's result instead (recorded in the provenance).
    precision : str
        Learned models: ``"fp32"`` (default), ``"bf16"``, ``"fp16"`` (CUDA only) or ``"auto"`` (bf16 where
        the hardware computes it natively); recorded in the provenance.
    ensemble : bool
        Learned models: average the network over the flips and equal-factor axis swaps that keep the scale
        vector (8 members for ×2 in 2D, 4 for ``(2, 1)``, 16 for ``(1, 1, 4)``; see
        :func:`sciSR.ensemble.symmetries`), each member finished and projected first. Costs one network pass
        per member. A 2D network through the plane fuses the means of its two families of planes
        (:mod:`sciSR.infer.orientations`) instead, as the plain upscale fuses its two passes.
    uncertainty : bool
        Learned models: also return the per-voxel standard deviation over those members, on the result's
        grid and in its units; the result is the ensemble mean with ``ensemble=True``, else the plain
        upscale's result.
        With ``spacing=`` both maps are resampled onto the voxel size asked for in the same way.
    adapt : float, optional
        Learned 2D models upscaling two in-plane axes: seconds of test-time adaptation before the upscale
        (:func:`sciSR.adaptation.adapt_request`). The network is fine-tuned on the image and its own
        degraded copy under the acquisition's forward model; the adapted weights run only when they beat
        the shipped ones on a quarter of the rows held out from the fine-tuning. The provenance records
        it (``adaptation``). None (default): the shipped weights as they are.

    Notes
    -----
    Every learned upscale runs a self-check (:func:`sciSR.pipeline.self_check`): the model and the
    strongest baseline upscale the input's own degraded copy and are compared with the input. Both PSNRs go
    to ``meta["provenance"][-1]["self_check"]``; a loss warns. The provenance also records the forward
    model used for consistency and the weights' SHA-256.

    Returns
    -------
    SciImage or numpy.ndarray
        Shape ``spatial·scale`` (channels unchanged); affine, WCS (with SIP), spacing and FITS grid
        keywords updated so every world coordinate stays on the same anatomy or star. Values are in
        the input's units (the network's normalisation is undone). With ``uncertainty=True``:
        ``(result, spread)``, both of the input's kind.
    """
    if (ensemble or uncertainty) and (isinstance(img, list | tuple) or reference is not None or out is not None):
        raise SciSRError("ensemble and uncertainty work on one image, in memory (no stacks, reference or out)")
    if adapt is not None and (isinstance(img, list | tuple) or reference is not None):
        raise SciSRError("adapt= fine-tunes on one image; stacks and references are not adapted")
    if spacing is not None and (isinstance(img, list | tuple) or reference is not None):
        raise SciSRError("spacing= applies to one image; stacks and references take scale=")
    if isinstance(img, list | tuple) or reference is not None:
        from sciSR import multi_input  # torch: loaded only when several inputs are fused

        if out is not None or (flux not in (None, "none") and reference is not None):
            raise SciSRError("out is not supported with stacks or a reference, nor flux with a reference")
        options = {"tile": tile, "device": device, "progress": progress, "cancel": cancel}
        if isinstance(img, list | tuple):
            if reference is not None:
                raise SciSRError("give either a list of stacks or a reference, not both")
            if model == "drizzle":
                from sciSR.infer.drizzle import drizzle_frames

                if scale is None:
                    raise SciSRError("drizzle needs a scale (e.g. scale=2)")
                if flux is not None and img and flux != flux_mode_for_units(img[0].meta.get("units")):
                    raise SciSRError(f"drizzle takes its flux mode from BUNIT; flux={flux!r} would be ignored "
                                     "(fuse with a model or an interpolation name to choose it)")
                return drizzle_frames(img, scale)
            return multi_input.upscale_stacks(img, model, scale, flux=flux, **options)
        return multi_input.upscale_with_reference(img, reference, model, scale, **options)
    as_array = not isinstance(img, SciImage)
    image = SciImage.from_array(np.asarray(img)) if as_array else img
    request = UpscaleRequest.build(image, model, scale, spacing=spacing, flux=flux, device=device, tile=tile,
                                   consistency=consistency, guard=guard, precision=precision, adapt=adapt)
    request = _adapted(image, request, progress, cancel)
    if ensemble or uncertainty:
        result, spread = upscale_ensemble(image, request, ensemble=ensemble, progress=progress, cancel=cancel)
        if uncertainty:
            return (result.array, spread.array) if as_array else (result, spread)
    else:
        result = upscale_image(image, request, progress=progress, cancel=cancel, out=out)
    return result.array if as_array else result


def _adapted(image: SciImage, request: UpscaleRequest, progress: ProgressLike,
             cancel: threading.Event | None) -> UpscaleRequest:
    """``request`` after the test-time adaptation it asks for (unchanged when ``adapt`` is None)."""
    if request.adapt is None:
        return request
    from sciSR.adaptation import adapt_request  # torch: loaded only when adapting

    return adapt_request(image, request, progress=progress, cancel=cancel)


def upscale_file(
    input_path: str | os.PathLike,
    output_path: str | os.PathLike,
    model: Any,
    scale: int | Sequence[int] | None = None,
    *,
    spacing: SpacingLike | None = None,
    overwrite: bool = False,
    series: str | int | None = None,
    domain: str | None = None,
    hdu: Any = None,
    memmap: bool | None = None,
    force: bool = False,
    tile: int | Sequence[int] | None = None,
    device: str = "auto",
    flux: str | None = None,
    consistency: str = "auto",
    guard: bool = False,
    precision: str = "fp32",
    ensemble: bool = False,
    uncertainty: bool = False,
    adapt: float | None = None,
    progress: ProgressLike = False,
    cancel: threading.Event | None = None,
) -> Path:
    """Read, upscale and write one file (or DICOM series folder); the output is checked before any work.

    Parameters
    ----------
    input_path, output_path : str or os.PathLike
        Input file or DICOM series folder; output file (or folder for DICOM), format from the suffix.
    model, scale, spacing, tile, device, flux, consistency, guard, precision, ensemble, adapt, progress, cancel
        As for :func:`upscale` (``adapt`` fine-tunes a copy of the network on each image it upscales).
    uncertainty : bool
        Also write the spread (see :func:`upscale`): in a FITS result as the image extension ``SR_STD``
        (with the result's WCS), otherwise to :func:`uncertainty_path_for` of the output, in the output's
        format, before the result.
    overwrite : bool
        Replace an existing output (never the input).
    series : str or int, optional
        DICOM series when a folder holds several (see :func:`read`), or ``"all"``: every series, each
        upscaled into ``output_path``, then a new folder, as ``<SeriesNumber>_<SeriesDescription>``
        (:func:`series_output_name`), a DICOM series folder like the input. Names that would collide are
        refused before any work; the folder appears only when every series is written.
    domain : str, optional
        Override the domain read from the file (see :func:`read`).
    hdu : int or str or (str, int), optional
        FITS: the image HDU (index, EXTNAME or ``(EXTNAME, EXTVER)``; default the first image), or
        ``"all"``: every science image of a multi-extension file (e.g. each ``SCI`` extension, each
        with its ERR/DQ companions), all other HDUs copied.
    memmap : bool, optional
        Build the result in a temporary file in the scratch folder (``$SCISR_SCRATCH``, else beside the
        output) instead of in RAM (the FITS writer then streams it to disk in slabs). None: only when the
        result would take more than :data:`LARGE_RESULT_FRACTION` of the available RAM.
    force : bool
        Accept a result of any size and run time (otherwise more than 64 GiB, more than the output folder's
        free space, or an estimated run time above ``SCISR_MAX_HOURS``, 24 h unless set, is refused before any
        work; see :meth:`sciSR.pipeline.UpscaleRequest.build`).

    Returns
    -------
    pathlib.Path
        The written output (with ``series="all"``: the folder holding one output per series).
    """
    job = _FileJob(ResolvedModel.of(model), scale, spacing=spacing, tile=tile, device=device, flux=flux, memmap=memmap,
                   force=force, consistency=consistency, guard=guard, precision=precision, ensemble=ensemble,
                   uncertainty=uncertainty, adapt=adapt, progress=progress, cancel=cancel)
    if series == "all":
        if hdu is not None:
            raise SciSRError('hdu= is for FITS files; series="all" reads a DICOM folder', input_path)
        return _upscale_every_series(job, input_path, output_path, overwrite=overwrite, domain=domain)
    if hdu != "all":
        img = read(input_path, series=series, domain=domain, **({} if hdu is None else {"hdu": hdu}))
        return job(img, output_path, overwrite=overwrite, inputs=(input_path,))
    if io.format_for(Path(input_path)) != "fits":
        raise SciSRError('hdu="all" is for multi-extension FITS files', input_path)
    io.check_output(output_path, overwrite=overwrite, inputs=(os.fspath(input_path),))
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
            current = os.fspath(job(img, target, overwrite=overwrite or not last, inputs=(input_path,)))
    return Path(current)


LARGE_RESULT_FRACTION = 0.25
"""Share of the available RAM above which :func:`upscale_file` builds the result in a memory-mapped file."""


@dataclass(frozen=True)
class _FileJob:
    """Upscale one read image into one output file; the model is resolved once for many files."""

    model: ResolvedModel
    scale: int | Sequence[int] | None
    spacing: SpacingLike | None = None
    tile: int | Sequence[int] | None = None
    device: str = "auto"
    flux: str | None = None
    memmap: bool | None = None
    force: bool = False
    consistency: str = "auto"
    guard: bool = False
    precision: str = "fp32"
    ensemble: bool = False
    uncertainty: bool = False
    adapt: float | None = None
    progress: ProgressLike = False
    cancel: threading.Event | None = None

    def __call__(self, img: SciImage, output_path: str | os.PathLike, *, overwrite: bool,
                 inputs: Sequence[str | os.PathLike]) -> Path:
        request = UpscaleRequest.build(img, self.model, self.scale, spacing=self.spacing, flux=self.flux,
                                       device=self.device,
                                       tile=self.tile, output=output_path, overwrite=overwrite, inputs=inputs,
                                       force=self.force, consistency=self.consistency, guard=self.guard,
                                       precision=self.precision, adapt=self.adapt)
        request = _adapted(img, request, self.progress, self.cancel)
        if self.ensemble or self.uncertainty:
            return self._ensemble(img, request, overwrite=overwrite, inputs=inputs)
        shape = request.result_shape(img)
        memmap = self.memmap
        if memmap is None:
            memmap = 4 * int(np.prod(shape)) > LARGE_RESULT_FRACTION * available_ram()
        run = partial(upscale_image, img, request, progress=self.progress, cancel=self.cancel)
        if not memmap:
            return write(run(), request.output, overwrite=overwrite)
        with disk_array(shape, np.float32, folder=scratch_folder(request.output.parent)) as buffer:
            return write(run(out=buffer), request.output, overwrite=overwrite)

    def _ensemble(self, img: SciImage, request: UpscaleRequest, *, overwrite: bool,
                  inputs: Sequence[str | os.PathLike]) -> Path:
        """The symmetry ensemble in memory; the spread file is written first, so a failure leaves no result."""
        assert request.output is not None
        spread_path = None
        in_fits = io.format_for(request.output) == "fits"
        if self.uncertainty and not in_fits:
            sources = (*map(os.fspath, inputs), *([os.fspath(img.meta["source"])] if img.meta.get("source") else []))
            spread_path = io.check_output(uncertainty_path_for(request.output), overwrite=overwrite, inputs=sources)
        result, spread = upscale_ensemble(img, request, ensemble=self.ensemble, progress=self.progress,
                                          cancel=self.cancel)
        if self.uncertainty and in_fits:
            result.meta["fits_extensions"] = {SPREAD_EXTNAME: spread}
        if spread_path is not None:
            write(spread, spread_path, overwrite=overwrite)
        return write(result, request.output, overwrite=overwrite)


_DOUBLE_SUFFIXES = (".nii.gz", ".fits.gz", ".fit.gz", ".fts.gz")


SPREAD_EXTNAME = "SR_STD"
"""EXTNAME of the spread in a FITS result (not ``ERR``: it is the model's spread, not the data's error)."""


def uncertainty_path_for(output_path: str | os.PathLike) -> Path:
    """Where the spread of a non-FITS ``output_path`` goes: ``<stem>_uncertainty<suffix>`` beside it.

    ``out.nii.gz`` → ``out_uncertainty.nii.gz``; a DICOM output folder ``out`` → ``out_uncertainty``. A
    FITS result carries its spread as the extension :data:`SPREAD_EXTNAME` instead.
    """
    path = Path(output_path)
    name = path.name
    suffix = next((s for s in _DOUBLE_SUFFIXES if name.lower().endswith(s)), path.suffix)
    stem = name[: len(name) - len(suffix)] if suffix else name
    return path.with_name(f"{stem}_uncertainty{name[len(stem):]}")


def output_path_for(input_path: str | os.PathLike, out_dir: str | os.PathLike) -> Path:
    """Where a batch writes the result of ``input_path``: same name (and format) inside ``out_dir``."""
    return Path(out_dir) / Path(input_path).name


# Runs of characters that are not safe in a file name everywhere (separators, spaces, quotes, ...).
_UNSAFE_NAME = re.compile(r"[^\w.-]+")


def series_output_name(series: io.dicom.Series) -> str:
    """Name of one series' output in the folder that ``upscale_file(..., series="all")`` writes.

    ``<SeriesNumber>_<SeriesDescription>``, e.g. ``3_T1_AX_post`` for series 3 "T1 AX (post)": runs of
    characters other than letters, digits, ``.``, ``-`` and ``_`` become one ``_`` and leading or trailing
    ``.``, ``-``, ``_`` are dropped, so the name is a plain file name on any system and never hidden. A
    series without a number or description is named by the part it has, one without either by its
    SeriesInstanceUID. Like a batch result, the output is in the input's format (a DICOM series folder).
    """
    parts = [str(series.number) if series.number is not None else "", series.description]
    for text in ("_".join(p for p in parts if p), series.uid):
        name = _UNSAFE_NAME.sub("_", text).strip("._-")
        if name:
            return name
    return "series"


def _shared_output(pairs: Sequence[tuple[str, Path]]) -> tuple[str, str, Path] | None:
    """The first two sources (and their output) that would be written to one output, else None.

    Names are compared without case: on macOS and Windows ``T1_AX`` and ``t1_ax`` are one file.
    """
    seen: dict[str, str] = {}
    for source, target in pairs:
        key = os.fspath(target).casefold()
        if key in seen:
            return seen[key], source, target
        seen[key] = source
    return None


def _upscale_every_series(job: _FileJob, input_path: str | os.PathLike, output_path: str | os.PathLike, *,
                          overwrite: bool, domain: str | None) -> Path:
    """``upscale_file(..., series="all")``: every series of a DICOM folder into the new folder ``output_path``."""
    inputs = (os.fspath(input_path),)
    out = io.check_output(output_path, overwrite=overwrite, inputs=inputs, folder=True)
    names = [(s, series_output_name(s)) for s in io.list_series(input_path)]
    clash = _shared_output([(f"{s.label} (UID {s.uid})", Path(name)) for s, name in names])
    if clash is not None:
        # Refused before any work: one result would silently replace the other.
        raise SciSRError(f"{clash[0]} and {clash[1]} would both be written to {clash[2]}; upscale them one at a "
                         "time (series= or --series: UID or number)", input_path)
    # One atomic folder: a series that fails leaves no partial study behind.
    with io.atomic_output(out, overwrite=overwrite, folder=True, inputs=inputs) as folder:
        for s, name in names:
            img = s.read(domain=domain)
            try:
                job(img, folder / name, overwrite=False, inputs=inputs)
            except Cancelled:
                raise
            except SciSRError as err:
                # Writers know only the temporary folder; the user knows the output they asked for.
                inside = err.path is not None and Path(err.path).is_relative_to(folder)
                where = out / name if inside else err.path
                raise SciSRError(f"{s.label}: {err.message}", where) from None
    return out


def upscale_batch(
    inputs: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    model: Any,
    scale: int | Sequence[int] | None = None,
    *,
    spacing: SpacingLike | None = None,
    scheduler: Any = None,
    overwrite: bool = False,
    on_done: Callable[[JobResult, int, int], None] | None = None,
    tile: int | Sequence[int] | None = None,
    device: str = "auto",
    flux: str | None = None,
    hdu: Any = None,
    force: bool = False,
    consistency: str = "auto",
    guard: bool = False,
    precision: str = "fp32",
    ensemble: bool = False,
    uncertainty: bool = False,
    adapt: float | None = None,
) -> list[JobResult]:
    """Upscale many files; on a Dask cluster when ``scheduler`` is given, else in a loop.

    Parameters
    ----------
    inputs : sequence of str or os.PathLike
        Files, folders and globs. A folder contributes its image files; a folder of DICOM files (or of
        series in sub-folders) is one input: one series, or a study whose series all go into one output
        folder of that name (as ``upscale_file(..., series="all")``).
    out_dir : str or os.PathLike
        Existing folder; each result keeps its input's name and format.
    model, scale, spacing, tile, device, flux, consistency, guard, precision, ensemble, uncertainty, adapt
        As for :func:`upscale_file` (the spread beside each result; each file adapts its own copy).
    scheduler : str or distributed.Client, optional
        Dask distributed scheduler address or client.
    overwrite : bool
        Replace existing outputs.
    on_done : callable, optional
        ``on_done(result, n_done, n_total)`` after each file.
    hdu : optional
        FITS HDU for every file (see :func:`upscale_file`).
    force : bool
        Accept results of any size and run time (see :func:`upscale_file`).

    Returns
    -------
    list of sciSR.infer.batch.JobResult
        One per input, failures included (``result.error`` is the one-line message).
    """
    if not Path(out_dir).is_dir():
        raise SciSRError("output folder does not exist", out_dir)
    suffixes = sorted({s for fmt in io.FORMATS.values() for s in fmt.SUFFIXES if s})
    files = expand_inputs(inputs, suffixes)
    clash = _shared_output([(os.fspath(path), output_path_for(path, out_dir)) for path in files])
    if clash is not None:
        # Refused before any work: one result would silently replace the other.
        raise SciSRError(f"{clash[0]} and {clash[1]} would both be written to {clash[2].name}; upscale "
                         "them into separate folders", clash[1])
    # One load (and one receptive-field measurement) for the whole loop, not one per file. Cluster workers
    # get the name or path and load it themselves rather than receiving pickled weights.
    resolved = model if scheduler is not None else ResolvedModel.of(model)
    job = _BatchJob(out_dir=os.fspath(out_dir), model=resolved, scale=scale, spacing=spacing, overwrite=overwrite,
                    tile=tile,
                    device=device, flux=flux, hdu=hdu, force=force, consistency=consistency, guard=guard,
                    precision=precision, ensemble=ensemble, uncertainty=uncertainty, adapt=adapt)
    return run_batch(files, job, scheduler=scheduler, on_done=on_done)


@dataclass(frozen=True)
class _BatchJob:
    """One file of :func:`upscale_batch` (picklable for Dask workers)."""

    out_dir: str
    model: Any
    scale: int | Sequence[int] | None
    spacing: SpacingLike | None
    overwrite: bool
    tile: int | Sequence[int] | None
    device: str
    flux: str | None
    hdu: Any
    force: bool
    consistency: str
    guard: bool
    precision: str
    ensemble: bool
    uncertainty: bool
    adapt: float | None = None

    def __call__(self, path: Path) -> Path:
        # A DICOM study folder: every series, into one folder named like the study (upscale_file's series="all").
        series = "all" if path.is_dir() and len(io.list_series(path)) > 1 else None
        return upscale_file(path, output_path_for(path, self.out_dir), self.model, self.scale, spacing=self.spacing,
                            overwrite=self.overwrite, series=series, tile=self.tile, device=self.device,
                            flux=self.flux, hdu=self.hdu, force=self.force, consistency=self.consistency,
                            guard=self.guard, precision=self.precision, ensemble=self.ensemble,
                            uncertainty=self.uncertainty, adapt=self.adapt)


def evaluate(
    model: Any,
    files: Sequence[str | os.PathLike],
    *,
    scale: int | Sequence[int] | None = None,
    degrade: str | Callable[[np.ndarray, tuple[int, ...]], np.ndarray] = "mean",
    baseline: str = "strongest",
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
        Interpolation to compare with, or ``"strongest"``: the strongest baseline of the image's domain
        (:func:`sciSR.consistency.strongest_baseline`: ``zerofill`` for MRI in-plane, else ``cubic``).

    Returns
    -------
    list of dict
        Per file: ``file``, ``scale``, ``baseline`` (its name), ``psnr``, ``ssim``, ``psnr_baseline``,
        ``ssim_baseline``, ``delta_psnr`` (dB, model − baseline). SSIM is 3D when every axis has ≥ 11
        voxels, else the mean over 2D planes.
    """
    from sciSR.metrics import psnr

    resolved = ResolvedModel.of(model)
    rows = []
    for path in files:
        hr = read(path)
        if scale is None and resolved.is_interpolator:
            raise SciSRError("evaluate needs a scale for an interpolation model", path)
        factors = resolve_factors(hr, scale, resolved)
        crop = tuple(slice(0, n - n % s) for n, s in zip(hr.spatial_shape, factors, strict=True))
        reference = hr.array[crop].astype(np.float32)
        if callable(degrade):
            low = degrade(reference, factors)
        else:
            low = bin_array(reference, factors, degrade).astype(np.float32)
        flux = None if hr.domain != "sky" else ("conserve" if degrade == "sum" else "mean")
        lr = SciImage.from_array(low, spacing=tuple(d * s for d, s in zip(hr.spacing, factors, strict=True)),
                                 domain=hr.domain,
                                 meta={k: hr.meta[k] for k in ("units", "channel_axis") if k in hr.meta})
        sr = upscale(lr, resolved, factors, tile=tile, device=device, flux=flux)
        name = baseline
        if baseline == "strongest":
            name = strongest_baseline(hr.domain, factors, through_plane=through_plane(lr, factors))
        base = upscale(lr, name, factors, flux=flux)
        row = {"file": os.fspath(path), "scale": list(factors), "baseline": name,
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
