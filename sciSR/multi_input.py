"""Multi-input super-resolution: several low-resolution stacks fused, or one image guided by a reference.

Reached through :func:`sciSR.upscale` (a list of stacks, or ``reference=``); composes
resample → intensity → model → infer → geometry like the single-image path.

- **Stacks** (``oktay-multi``, or an interpolation name for the classical baseline): the output grid is the
  FIRST stack's grid upscaled by ``scale`` (:func:`sciSR.geometry.fusion_output_grid`); every stack is
  resampled onto it by world coordinates (its affine, :mod:`sciSR.resample`, cubic B-spline), then the
  network runs on the ``N·C`` channels through tiled prediction at scale 1. With ``"nearest"``,
  ``"linear"`` or ``"cubic"`` the result is the plain average of the stacks resampled with that
  interpolation: the multi-stack baseline of slice-to-volume tools.
- **Dithered sky frames** (2D, celestial WCS, no affine): the same, with the output grid the first frame's
  WCS upscaled (:func:`sciSR.geometry.upscale_wcs`) and every frame interpolated onto it by sky position
  (:func:`sciSR.resample.resample_to_wcs`) in its own units put on the mean exposure time; each frame's
  flux projection is applied on its own ×scale grid and the corrections are averaged with the frames'
  exposure coverage (:func:`project_on_frames`), so the total is the frames' average total, and the result
  carries drizzle's weight map. :func:`sciSR.infer.drizzle.drizzle_frames` is the classical baseline of the same inputs.
- **Reference** (``ttsr``): the reference is resampled onto the output grid (the input's grid upscaled),
  packed as sub-pixel channels onto the input grid (block ``s·n … s·n + s − 1`` of output voxels becomes
  ``∏s`` channels of input voxel ``n``) and tiled together with the input, so every window carries exactly
  its matching reference window and memory stays bounded by the tiles. The model's ``search_radius``
  bounds how far the attention looks; with a global search (``search_radius=None``) each window only
  searches its own reference window (tiled prediction warns; pass a tile covering the image to search
  the whole reference).

Values outside a stack's or the reference's field of view are filled from the other stacks' average
(stacks) or with the input interpolated onto the output grid (reference), so the network never sees an
artificial edge; the first stack (the input) always covers the whole output grid.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from sciSR import geometry
from sciSR.errors import SciSRError
from sciSR.flux import FLUX_MODES, flux_mode_for_units, project_blocks
from sciSR.image import SciImage
from sciSR.infer.drizzle import check_sky_frames, combined_frames, exposure_scales
from sciSR.infer.interpolate import INTERPOLATORS, interpolate
from sciSR.infer.predict import predict_array
from sciSR.intensity import denormalize, normalize
from sciSR.pipeline import ResolvedModel, regrid, resolve_factors
from sciSR.progress import ProgressLike, cancel_checker, progress_callback
from sciSR.resample import resample_to_grid, resample_to_wcs

# One bundle per network (and stack count) for the network's lifetime, so the receptive field measured on
# the bundle by tiled inference is measured once, not on every call.
_BUNDLES: weakref.WeakKeyDictionary[nn.Module, dict[Any, nn.Module]] = weakref.WeakKeyDictionary()


def _bundle(net: nn.Module, key: Any, make: Any) -> nn.Module:
    bundles = _BUNDLES.setdefault(net, {})
    if key not in bundles:
        bundles[key] = make()
    return bundles[key]


class StackBundle(nn.Module):
    """A multi-stack network seen by tiled inference: ``N·C`` input channels, scale 1.

    Parameters
    ----------
    net : nn.Module
        ``oktay-multi``-like: ``(B, N·C, *S) → (B, C, *S)``, ``input_on_output_grid = True``.
    n_stacks : int
        Stacks per call.
    """

    def __init__(self, net: nn.Module, n_stacks: int) -> None:
        super().__init__()
        self.net = net
        self.spatial_dims = int(net.spatial_dims)
        self.in_channels = int(net.in_channels) * int(n_stacks)
        self.out_channels = int(net.out_channels)
        self.scale = (1,) * self.spatial_dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ReferenceBundle(nn.Module):
    """A reference-guided network seen by tiled inference: input and packed reference as one image.

    Parameters
    ----------
    net : nn.Module
        ``ttsr``-like: ``forward(x: (B, C, *S), ref: (B, C, *S·s)) → (B, C, *S·s)``.
    global_pooling : bool
        The network's spec says its attention sees the whole window (tiled inference then warns).

    Notes
    -----
    Input channels ``0 … C − 1`` are the image, the rest the reference packed by
    :func:`sciSR.models.ttsr.pixel_unshuffle_nd` (``C·∏s`` channels on the input grid).
    """

    def __init__(self, net: nn.Module, global_pooling: bool) -> None:
        super().__init__()
        self.net = net
        self.spatial_dims = int(net.spatial_dims)
        self.scale = tuple(int(s) for s in net.scale)
        self.channels = int(net.in_channels)
        self.in_channels = self.channels * (1 + int(np.prod(self.scale)))
        self.out_channels = int(net.out_channels)
        self.global_pooling = global_pooling

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from sciSR.models.blocks import pixel_shuffle_nd

        ref = pixel_shuffle_nd(x[:, self.channels:], self.scale)
        return self.net(x[:, :self.channels], ref)


def _channels(img: SciImage) -> int:
    return int(img.array.shape[-1]) if img.channel_axis is not None else 1


def _is_sky_frame(img: SciImage) -> bool:
    return img.affine is None and img.wcs is not None and bool(img.wcs.has_celestial)


def _check_stacks(stacks: Sequence[Any]) -> list[SciImage]:
    if not stacks:
        raise SciSRError("upscale got an empty list of stacks")
    images = list(stacks)
    for n, img in enumerate(images):
        if not isinstance(img, SciImage):
            raise SciSRError(f"stack {n} is a {type(img).__name__}; multi-stack fusion needs SciImages with "
                             "affines or celestial WCSs (sciSR.read or SciImage.from_array(arr, affine=...))")
        if img.affine is None and not _is_sky_frame(img):
            raise SciSRError(f"stack {n} has neither an affine (voxel → mm) nor a celestial WCS: stacks are aligned "
                             "by world coordinates", img.meta.get("source"))
        if _is_sky_frame(img) != _is_sky_frame(images[0]):
            raise SciSRError(f"stack {n} is {'a sky frame (WCS)' if _is_sky_frame(img) else 'placed by an affine'} "
                             f"and stack 0 is not: fuse stacks of one kind", img.meta.get("source"))
        if not np.isfinite(img.array).all():
            raise SciSRError(f"stack {n} has NaN/inf voxels; fill or crop them first", img.meta.get("source"))
        if img.spatial_ndim != images[0].spatial_ndim or _channels(img) != _channels(images[0]):
            raise SciSRError(f"stack {n} has {img.spatial_ndim} spatial axes and {_channels(img)} channel(s); "
                             f"stack 0 has {images[0].spatial_ndim} and {_channels(images[0])}",
                             img.meta.get("source"))
    if _is_sky_frame(images[0]):
        check_sky_frames(images, "multi-frame fusion")
    return images


def _fill_outside(values: list[np.ndarray], inside: list[np.ndarray]) -> np.ndarray:
    """Average of the stacks that cover each voxel, as one float32 array ``(*grid, [C])``."""
    weight = np.zeros(inside[0].shape, np.float32)
    total = np.zeros(values[0].shape, np.float32)
    for v, m in zip(values, inside, strict=True):
        mask = m if v.ndim == m.ndim else m[..., np.newaxis]
        total += np.where(mask, v, 0.0)
        weight += m
    denom = weight if total.ndim == weight.ndim else weight[..., np.newaxis]
    return total / np.maximum(denom, 1.0)


def upscale_stacks(
    stacks: Sequence[SciImage],
    model: Any,
    scale: int | Sequence[int] | None = None,
    *,
    flux: str | None = None,
    tile: int | Sequence[int] | None = None,
    device: str = "auto",
    progress: ProgressLike = False,
    cancel: threading.Event | None = None,
) -> SciImage:
    """Fuse several low-resolution stacks (or dithered sky frames) onto the first one's grid × ``scale``.

    Parameters
    ----------
    stacks : sequence of SciImage
        Two or more (one is allowed) images of one kind: with affines (voxel → RAS+ mm), the same number of
        spatial axes and channels, orientations, voxel sizes and fields of view free; or 2D sky frames with
        celestial WCSs and one BUNIT (dithered exposures), placed on the output grid by sky position.
    model : str or os.PathLike or nn.Module
        A multi-input model (``oktay-multi``: its spec's ``inputs`` is ``"stacks"``) as name, file or module; or
        ``"nearest"``/``"linear"``/``"cubic"``: the plain average of the stacks resampled with that
        interpolation (voxels outside a stack's FOV average the others).
    scale : int or sequence of int, optional
        Factor per spatial axis of the FIRST stack; None: the model card's nominal scale.
    flux : str, optional
        Sky frames only: ``"conserve"``, ``"mean"`` or ``"none"``; None chooses from BUNIT
        (:func:`sciSR.flux.flux_mode_for_units`). Each frame's projection (blocks of its own ×scale grid
        summing, ``"conserve"``, or averaging, ``"mean"``, to its pixels on the output's exposure time) is
        averaged over the frames (:func:`project_on_frames`, docs/architecture.md §4.3).
    tile, device, progress, cancel
        As for :func:`sciSR.upscale`; ``tile`` in output voxels (the network runs on the output grid).

    Returns
    -------
    SciImage
        ``(*first.spatial_shape·scale, [C])`` in the first stack's units; affine (or WCS), spacing and
        provenance of the first stack's grid upscaled (FOV preserved). Sky frames: values per output pixel
        for the mean exposure time (count-like BUNIT, EXPTIME respected as by drizzle), ``meta["weight"]``
        and the FITS extension ``WHT`` (exposure seconds per output pixel, drizzle's convention).

    Raises
    ------
    SciSRError
        Stacks without affines or WCSs, of mixed kinds, with NaNs or mismatched axes/channels; a stack
        that does not overlap the first one's FOV; sky frames with mixed BUNIT or EXPTIME presence; a model
        that takes a single image; a channel count the model does not take; ``flux`` with medical stacks.
    """
    images = _check_stacks(stacks)
    first = images[0]
    source = first.meta.get("source")
    sky = _is_sky_frame(first)
    if not sky and flux not in (None, "none"):
        raise SciSRError("flux= applies to sky frames (celestial WCS); these stacks are placed by affines", source)
    if flux not in (None, *FLUX_MODES):
        raise SciSRError(f"flux must be one of {FLUX_MODES}, got {flux!r}", source)
    check = cancel_checker(cancel)
    check()
    resolved = ResolvedModel.of(model)
    net = resolved.net
    if net is not None and resolved.spec.inputs != "stacks":
        raise SciSRError(f"model {resolved.name} takes one image, not a list of stacks; use a multi-input model "
                         "(oktay-multi) or an interpolation name for the average")
    if net is not None and resolved.spec.in_channels != _channels(first):
        raise SciSRError(f"the model takes {resolved.spec.in_channels} channel(s) per stack; the stacks have "
                         f"{_channels(first)}", source)
    factors = resolve_factors(first, scale, resolved)
    order = INTERPOLATORS[resolved.name] if net is None else 3
    if sky:
        mode = flux_mode_for_units(first.meta.get("units")) if flux is None else flux
        exptimes, t_out, rescale = exposure_scales(images, mode, "multi-frame fusion")
        out_wcs = geometry.upscale_wcs(first.wcs, factors)
        shape = geometry.upscaled_shape(first.array.shape, factors)
        # Frames go onto the output grid in their own (LR) units, as the network saw them in training.
        lows = [img.array.astype(np.float32) * np.float32(r) for img, r in zip(images, rescale, strict=True)]

        def sample(n: int) -> tuple[np.ndarray, np.ndarray]:
            return resample_to_wcs(lows[n], images[n].wcs, out_wcs, shape, order=order)
    else:
        affine, shape = geometry.fusion_output_grid(first.affine, first.spatial_shape, factors)
        lows = [first.array.astype(np.float32)]

        def sample(n: int) -> tuple[np.ndarray, np.ndarray]:
            return resample_to_grid(images[n], affine, shape, order=order)
    with progress_callback(progress) as report:
        values, inside = [], []
        for n, img in enumerate(images):
            check()
            v, m = sample(n)
            if not m.any():
                raise SciSRError(f"stack {n} does not overlap the field of view of stack 0",
                                 img.meta.get("source"))
            values.append(v)
            inside.append(m)
            report(0.5 * (n + 1) / len(images) if net is not None else (n + 1) / len(images))
        average = _fill_outside(values, inside)
        if net is None:
            out, name = average, f"average of {len(images)} stacks ({resolved.name})"
        else:
            name = resolved.name
            # Fitted on the first stack, as in training (the normalisation of the first simulated stack).
            params = resolved.fit_normalization(lows[0])
            filled = [np.where(m if v.ndim == m.ndim else m[..., np.newaxis], v, average)
                      for v, m in zip(values, inside, strict=True)]
            del values
            # Channels n·C … n·C + C − 1 are stack n (oktay-multi's layout).
            x = np.concatenate([normalize(f if f.ndim > len(shape) else f[..., np.newaxis], params) for f in filled],
                               axis=-1)
            del filled

            def sub_report(fraction: float) -> None:
                report(0.5 + 0.5 * fraction)

            try:
                bundle = _bundle(net, ("stacks", len(images)), lambda: StackBundle(net, len(images)))
                pred, _ = predict_array(bundle, x, len(shape), (1,) * len(shape), tile=tile, device=device,
                                        progress=sub_report, cancel=cancel)
            except SciSRError as err:
                raise SciSRError(err.message, err.path or source) from None
            pred = pred if first.channel_axis is not None else pred[..., 0]
            out = denormalize(pred, params)
    check()
    out = out.astype(np.float32, copy=False)
    sources = [str(img.meta.get("source", f"stack {n}")) for n, img in enumerate(images)]
    if not sky:
        return regrid(first, out, factors, str(name), stacks=sources)
    if mode == "conserve":
        # Interpolated frames, and networks trained on block sums, are per input pixel: → per output pixel.
        out = out / np.float32(np.prod(factors))
    weights = [t * m.astype(np.float64) for t, m in zip(exptimes, inside, strict=True)]
    if mode != "none":
        out = project_on_frames(out, images, lows, weights, out_wcs, factors, mode)
    # drizzle's WHT convention: exposure seconds per output pixel (ΣEXPTIME/(sy·sx) where all frames cover it).
    weight = (sum(weights) / np.prod(factors)).astype(np.float32)
    step = {"step": "upscale", "model": str(name), "scale": list(factors), "flux": mode, "frames": len(images),
            "exptime": exptimes, "sources": sources}
    return combined_frames(images, out, factors, mode, t_out, weight, np.zeros(shape, bool), step)


def project_on_frames(sr: np.ndarray, frames: Sequence[SciImage], lows: Sequence[np.ndarray],
                      weights: Sequence[np.ndarray], out_wcs: Any, factors: Sequence[int], mode: str) -> np.ndarray:
    """The flux projection of one frame, averaged over dithered frames (docs/architecture.md §4.3).

    For each frame ``k`` the result is moved onto that frame's own ×``factors`` grid (by sky position), its
    blocks are compared with the frame's pixels (``"conserve"``: sums, ``"mean"``: means) and the
    per-block correction of :func:`sciSR.flux.project_blocks` is carried back to the output grid; the
    corrections are averaged with the frames' exposure-time coverage ``weights``. With one frame this is
    the exact single-frame projection; with several, the output's total is the frames' average total (as
    drizzle's) and each frame's noise enters once, divided among them, instead of one frame's noise being
    imposed on all blocks.

    Parameters
    ----------
    sr : numpy.ndarray
        ``(H·sy, W·sx)`` fused values per output pixel on ``out_wcs``.
    frames : sequence of SciImage
        The frames (their WCS).
    lows : sequence of numpy.ndarray
        Their values on the output's exposure time, per input pixel.
    weights : sequence of numpy.ndarray
        ``(H·sy, W·sx)`` exposure-time coverage of each frame on the output grid (0 outside it).
    out_wcs : astropy.wcs.WCS
        The output grid's WCS.
    factors : sequence of int
        ``(sy, sx)``.
    mode : str
        ``"conserve"`` or ``"mean"``.

    Returns
    -------
    numpy.ndarray
        float32 like ``sr``.
    """
    from astropy.wcs.utils import proj_plane_pixel_area

    x = sr.astype(np.float64)
    correction = np.zeros_like(x)
    out_area = proj_plane_pixel_area(out_wcs.celestial)
    for frame, low, w in zip(frames, lows, weights, strict=True):
        grid = geometry.upscale_wcs(frame.wcs, factors)
        shape = geometry.upscaled_shape(low.shape, factors)
        # Per-output-pixel values scale with pixel area when the frame's pixels differ from the first one's.
        area = proj_plane_pixel_area(grid.celestial) / out_area if mode == "conserve" else 1.0
        on_frame, _ = resample_to_wcs(x * area, out_wcs, grid, shape, order=3)
        delta = project_blocks(on_frame.astype(np.float64), low.astype(np.float64), factors, mode) - on_frame
        # The correction is constant per block: nearest-neighbour sampling carries it back unchanged (exact for
        # dithers of whole output pixels).
        back, _ = resample_to_wcs(delta / area, grid, out_wcs, x.shape, order=0)
        correction += w * back
    return (x + correction / np.maximum(sum(weights), 1e-300)).astype(np.float32)


def upscale_with_reference(
    img: SciImage,
    reference: SciImage,
    model: Any,
    scale: int | Sequence[int] | None = None,
    *,
    tile: int | Sequence[int] | None = None,
    device: str = "auto",
    progress: ProgressLike = False,
    cancel: threading.Event | None = None,
) -> SciImage:
    """Super-resolve ``img`` guided by a high-resolution ``reference`` (resampled onto the output grid).

    Parameters
    ----------
    img : SciImage
        The low-resolution input, with an affine.
    reference : SciImage
        A high-resolution image of the same object with an affine (another contrast, an earlier scan);
        any grid, orientation and FOV. Its own normalisation (the card's method) is fitted on it.
    model : str or os.PathLike or nn.Module
        A reference-guided model (``ttsr``: its spec's ``inputs`` is ``"reference"``).
    scale : int or sequence of int, optional
        Factor per spatial axis; None: the model card's scale.
    tile, device, progress, cancel
        As for :func:`sciSR.upscale`; ``tile`` in input voxels (see the module notes on global attention).

    Returns
    -------
    SciImage
        ``img`` upscaled on its FOV-preserving grid, in its units.

    Raises
    ------
    SciSRError
        Missing affines, a reference outside the input's FOV, a model without reference input, or channel
        counts that differ from the model's.
    """
    source = img.meta.get("source")
    for name, im in (("image", img), ("reference", reference)):
        if not isinstance(im, SciImage) or im.affine is None:
            raise SciSRError(f"reference-guided SR needs the {name} as a SciImage with an affine (voxel → mm)",
                             getattr(im, "meta", {}).get("source"))
    resolved = ResolvedModel.of(model)
    if resolved.is_interpolator:
        raise SciSRError(f"interpolation ({resolved.name}) takes no reference; use a reference-guided model (ttsr)")
    if resolved.spec.inputs != "reference":
        raise SciSRError(f"model {resolved.name} takes no reference; use a reference-guided model (ttsr) or leave "
                         "reference out")
    channels = _channels(img)
    if channels != resolved.spec.in_channels or _channels(reference) != channels:
        raise SciSRError(f"the model takes {resolved.spec.in_channels} channel(s); the image has {channels} and "
                         f"the reference {_channels(reference)}", source)
    if reference.spatial_ndim != img.spatial_ndim:
        raise SciSRError(f"the reference has {reference.spatial_ndim} spatial axes, the image "
                         f"{img.spatial_ndim}", reference.meta.get("source"))
    if not np.isfinite(img.array).all():
        raise SciSRError("the image has NaN/inf voxels; fill them first", source)
    check = cancel_checker(cancel)
    check()
    factors = resolve_factors(img, scale, resolved)
    affine, shape = geometry.fusion_output_grid(img.affine, img.spatial_shape, factors)
    ref, inside = resample_to_grid(reference, affine, shape, order=3)
    if not inside.any():
        raise SciSRError("the reference does not overlap the image's field of view", reference.meta.get("source"))
    params = resolved.fit_normalization(img.array.astype(np.float32))
    ref_params = resolved.fit_normalization(reference.array.astype(np.float32))
    x = normalize(img.array, params)
    x = x if img.channel_axis is not None else x[..., np.newaxis]
    ref = normalize(ref, ref_params)
    ref = ref if img.channel_axis is not None else ref[..., np.newaxis]
    if not inside.all():  # outside the reference's FOV: the input interpolated, no texture to transfer
        ref = np.where(inside[..., np.newaxis], ref, interpolate(x, factors, "cubic"))
    from sciSR.models.ttsr import pixel_unshuffle_nd

    # Pack the reference onto the input grid (per spatial axis, factor 1 where unscaled) so tiles of the
    # input carry exactly their reference window.
    packed = pixel_unshuffle_nd(torch.from_numpy(np.ascontiguousarray(np.moveaxis(ref, -1, 0)))[None], factors)[0]
    x = np.concatenate([x, np.moveaxis(packed.numpy(), 0, -1)], axis=-1)
    del ref, packed
    with progress_callback(progress) as report:
        try:
            bundle = _bundle(resolved.net, "reference",
                             lambda: ReferenceBundle(resolved.net, resolved.spec.global_pooling))
            pred, _ = predict_array(bundle, x, img.spatial_ndim, factors, tile=tile, device=device,
                                    progress=report, cancel=cancel)
        except SciSRError as err:
            raise SciSRError(err.message, err.path or source) from None
    check()
    pred = pred if img.channel_axis is not None else pred[..., 0]
    out = denormalize(pred, params).astype(np.float32, copy=False)
    return regrid(img, out, factors, resolved.name, reference=str(reference.meta.get("source", "reference")))
