"""Dictionary transforms that turn a high-resolution image into an (LR, HR) training pair.

A sample dict carries ``"hr"`` (channel-first ``(C, *spatial)``), ``"spacing"`` (per spatial axis),
``"norm"`` (parameters from :func:`sciSR.intensity.fit_normalization`) and ``"fg"`` (flat indices of
foreground voxels). They are dictionary-only because each acts on a pair or on sample-level state;
the degradations themselves are array + dictionary pairs in :mod:`sciSR.degrade.monai_transforms`.

Order (see :class:`sciSR.data.dataset.PairSpec`): ``LoadSciImaged`` → ``FitNormalizationd`` →
``ForegroundIndicesd`` (cached) → ``RandPatchd`` → degradation → ``CropMargind`` → ``NormalizePaird`` →
``RandFlipRot90d`` → ``ToPaird``.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.transforms import MapTransform, Randomizable, RandomizableTransform, Transform
from monai.utils import convert_data_type

from sciSR import io
from sciSR.data.phantoms import generate
from sciSR.degrade.mri import kspace_resample
from sciSR.errors import SciSRError
from sciSR.geometry import grid_scale, upscale_spacing
from sciSR.image import SciImage
from sciSR.intensity import fit_normalization, normalize


def _numpy(x: Any) -> np.ndarray:
    return convert_data_type(x, np.ndarray)[0]


def load_image(source: str | os.PathLike | Mapping[str, Any]) -> SciImage:
    """A file (any format :func:`sciSR.read` takes) or a phantom spec ``{"generate", "seed", "options"}``."""
    if isinstance(source, Mapping):
        return generate(source["generate"], int(source.get("seed", 0)), **dict(source.get("options") or {}))
    return io.read(source)


class LoadSciImaged(Transform):
    """Read ``d["image"]`` into ``d["hr"]`` (float32 ``(C, *spatial)``), ``d["spacing"]``, ``d["domain"]``.

    NaNs (masked pixels) are replaced by the median of the finite values: training has no mask channel,
    and a constant fill adds no false structure. An MR image whose header says the scanner zero-filled
    k-space lines (``meta["acquired"]``, from DICOM AcquisitionMatrix) is reduced to the lines it measured
    (:func:`measured_band`; ``d["measured_shape"]`` records the new shape).
    """

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        img = load_image(d["image"])
        x = img.array.astype(np.float32, copy=True)
        finite = np.isfinite(x)
        if not finite.any():
            raise SciSRError("image has no finite values", str(d["image"]))
        if not finite.all():
            x[~finite] = np.median(x[finite])
        spacing = tuple(img.spacing)
        if img.meta.get("acquired") is not None and img.channel_axis is None:
            x, spacing = measured_band(x, spacing, img.meta["acquired"])
            d["measured_shape"] = list(x.shape)
        d["hr"] = np.moveaxis(x, -1, 0) if img.channel_axis is not None else x[np.newaxis]
        d["spacing"] = spacing
        d["domain"] = img.domain
        return d


def measured_band(x: np.ndarray, spacing: Sequence[float], acquired: Sequence[float]
                  ) -> tuple[np.ndarray, tuple[float, ...]]:
    """An MR image reduced to the k-space lines its scanner measured, on the same field of view.

    A scanner that measured ``a·n`` of an axis' ``n`` lines and zero-filled the rest wrote an interpolated
    image: as a training truth it would teach a network to reproduce that interpolation (pydicom's
    MR-SIEMENS-DICOM-WithOverlays.dcm: 53 % × 37 % of 484 × 484 measured). Each such axis keeps
    ``round(a·n)`` lines (:func:`sciSR.degrade.mri.kspace_resample`), its spacing growing by ``n / round(a·n)``.

    Parameters
    ----------
    x : numpy.ndarray
        ``(*spatial)`` magnitudes.
    spacing : sequence of float
        Voxel size per spatial axis (mm).
    acquired : sequence of float
        Measured share of the lines per spatial axis, in (0, 1] (missing trailing axes: 1).

    Returns
    -------
    x : numpy.ndarray
        float32, the measured lines' image.
    spacing : tuple of float
        Its voxel size.
    """
    shares = [float(acquired[a]) if a < len(acquired) else 1.0 for a in range(x.ndim)]
    shape = [max(1, round(a * n)) for a, n in zip(shares, x.shape, strict=True)]
    if shape == list(x.shape):
        return x, tuple(float(s) for s in spacing)
    return kspace_resample(x, shape), upscale_spacing(spacing, grid_scale(x.shape, shape))


class FitNormalizationd(Transform):
    """Fit the intensity normalisation on a simulated LR version of the whole image.

    :func:`sciSR.upscale` fits the card's normalisation on the LR image it is given; fitting here on the
    degraded whole image (a fixed draw of the degradation, seeded) gives the network the same units.

    Parameters
    ----------
    degradation : callable
        Channel-first degradation at the image's scale (a :mod:`sciSR.degrade.monai_transforms` instance;
        copied, random ones seeded with ``seed``).
    scale : sequence of int
        Factor per image spatial axis; the image is cropped to a multiple of it first.
    method : str
        :data:`sciSR.intensity.METHODS` entry.
    options : dict, optional
        Options of :func:`sciSR.intensity.fit_normalization`.
    seed : int
        Seed of the reference degradation.
    """

    def __init__(self, degradation: Any, scale: Sequence[int], method: str, options: Mapping[str, Any] | None = None,
                 seed: int = 0) -> None:
        self.degradation, self.scale, self.method = degradation, tuple(scale), method
        self.options, self.seed = dict(options or {}), seed

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        hr = _numpy(d["hr"])
        if len(self.scale) != hr.ndim - 1:
            raise SciSRError(f"scale {self.scale} has {len(self.scale)} factors but the image has "
                             f"{hr.ndim - 1} spatial axes", str(d.get("image", "")))
        if self.method in ("none", "ct_window"):  # fixed parameters: nothing to learn from the image
            d["norm"] = fit_normalization(hr, self.method, **self.options)
            return d
        reference = copy.deepcopy(self.degradation)
        if isinstance(reference, Randomizable):
            reference.set_random_state(self.seed)
        crop = (slice(None), *(slice(0, n - n % s) for n, s in zip(hr.shape[1:], self.scale, strict=True)))
        d["norm"] = fit_normalization(_numpy(reference(hr[crop])), self.method, **self.options)
        return d


class ForegroundIndicesd(Transform):
    """Flat indices (into the spatial grid) of voxels whose normalised value exceeds ``threshold``.

    Cached with the image, so patch sampling does not rescan the volume; at most ``max_count`` evenly
    spaced indices are kept to bound memory on large volumes.
    """

    def __init__(self, threshold: float = 0.1, max_count: int = 100_000) -> None:
        self.threshold, self.max_count = float(threshold), int(max_count)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        strongest = normalize(_numpy(d["hr"]), d["norm"]).max(axis=0)
        index = np.flatnonzero(strongest > self.threshold)
        if index.size > self.max_count:
            index = index[np.linspace(0, index.size - 1, self.max_count).astype(np.int64)]
        d["fg"] = index.astype(np.int64)
        return d


class RandPatchd(RandomizableTransform):
    """Crop a random high-resolution patch from ``d["hr"]``, centred on foreground with ``foreground_prob``.

    Parameters
    ----------
    size : sequence of int
        HR patch size per image spatial axis (a multiple of the scale; margins included).
    foreground_prob : float
        Probability that the centre is a foreground voxel (``d["fg"]``) rather than uniform.
    squeeze_axis : int, optional
        Spatial axis of size 1 to drop (2D slices from a volume); ``d["spacing"]`` loses it too.
    """

    def __init__(self, size: Sequence[int], foreground_prob: float = 0.8, squeeze_axis: int | None = None) -> None:
        RandomizableTransform.__init__(self, prob=1.0)
        self.size, self.foreground_prob, self.squeeze_axis = tuple(size), float(foreground_prob), squeeze_axis
        self._start: tuple[int, ...] = ()

    def randomize(self, data: Mapping[Hashable, Any]) -> None:
        shape = tuple(np.shape(data["hr"])[1:])
        if len(shape) != len(self.size) or any(n < p for n, p in zip(shape, self.size, strict=True)):
            raise SciSRError(f"image spatial shape {shape} is smaller than the patch {self.size} (margins "
                             "included); use a smaller patch_size or margin", str(data.get("image", "")))
        fg = _numpy(data.get("fg", np.zeros(0, np.int64)))
        if fg.size and self.R.uniform() < self.foreground_prob:
            centre = np.unravel_index(int(fg[self.R.randint(fg.size)]), shape)
        else:
            centre = tuple(self.R.randint(n) for n in shape)
        self._start = tuple(int(np.clip(c - p // 2, 0, n - p))
                            for c, p, n in zip(centre, self.size, shape, strict=True))

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        self.randomize(d)
        crop = (slice(None), *(slice(s, s + p) for s, p in zip(self._start, self.size, strict=True)))
        hr = _numpy(d["hr"])[crop]
        spacing = tuple(d["spacing"])
        if self.squeeze_axis is not None:
            hr = np.squeeze(hr, axis=1 + self.squeeze_axis)
            spacing = spacing[: self.squeeze_axis] + spacing[self.squeeze_axis + 1:]
        d["hr"], d["spacing"] = hr, spacing
        return d


class CropMargind(MapTransform):
    """Remove ``margin`` LR voxels (``margin·s`` HR voxels) per side: degradation borders are discarded.

    Parameters
    ----------
    scale : sequence of int
        Factor per spatial axis of the pair.
    margin : int
        LR voxels cut from each side of every spatial axis.
    lr_key, hr_key : str
        Keys of the pair.
    """

    def __init__(self, scale: Sequence[int], margin: int, lr_key: str = "lr", hr_key: str = "hr") -> None:
        super().__init__((lr_key, hr_key))
        self.scale, self.margin, self.lr_key, self.hr_key = tuple(scale), int(margin), lr_key, hr_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        if self.margin:
            m = self.margin
            d[self.lr_key] = d[self.lr_key][(slice(None), *(slice(m, -m) for _ in self.scale))]
            d[self.hr_key] = d[self.hr_key][(slice(None), *(slice(m * s, -m * s) for s in self.scale))]
        return d


class NormalizePaird(MapTransform):
    """Normalise LR and HR with the image's ``d["norm"]``; HR is first multiplied by ``hr_factor``.

    ``hr_factor = ∏ scale`` when the degradation sums blocks (counts): the network then predicts
    values in LR-pixel units, which :func:`sciSR.upscale` divides by ``∏ scale`` in flux-conserving mode.
    """

    def __init__(self, hr_factor: float = 1.0, lr_key: str = "lr", hr_key: str = "hr") -> None:
        super().__init__((lr_key, hr_key))
        self.hr_factor, self.lr_key, self.hr_key = float(hr_factor), lr_key, hr_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        d[self.lr_key] = normalize(_numpy(d[self.lr_key]), d["norm"])
        d[self.hr_key] = normalize(_numpy(d[self.hr_key]) * np.float32(self.hr_factor), d["norm"])
        return d


def rotation_planes(scale: Sequence[int], spacing: Sequence[float], rel_tol: float = 1e-3) -> list[tuple[int, int]]:
    """Spatial planes where a 90° rotation maps the pair onto itself: equal factors and equal spacing."""
    n = len(scale)
    return [(a, b) for a in range(n) for b in range(a + 1, n)
            if scale[a] == scale[b] and np.isclose(spacing[a], spacing[b], rtol=rel_tol)]


class RandFlipRot90d(RandomizableTransform, MapTransform):
    """Random flips of every spatial axis and 90° rotations, identical on all keys, anisotropy-aware.

    Flips keep the FOV grid (LR voxel ``M − 1 − n`` sits on HR ``N − 1 − (s·n + (s−1)/2)``). A rotation
    only happens in a plane whose two axes have the same factor and spacing (``d["spacing"]``), so a
    through-plane axis is never swapped with an in-plane one.

    Parameters
    ----------
    keys : str or sequence of str
        Channel-first arrays to transform together.
    scale : sequence of int
        Factor per spatial axis.
    flip, rot90 : bool
        Enable each augmentation.
    """

    def __init__(self, keys: Sequence[str] | str, scale: Sequence[int], flip: bool = True, rot90: bool = True) -> None:
        MapTransform.__init__(self, keys)
        RandomizableTransform.__init__(self, prob=1.0)
        self.scale, self.flip, self.rot90 = tuple(scale), flip, rot90
        self._flips: list[int] = []
        self._plane: tuple[int, int] | None = None
        self._turns = 0

    def randomize(self, data: Mapping[Hashable, Any]) -> None:
        n = len(self.scale)
        self._flips = [a for a in range(n) if self.flip and self.R.uniform() < 0.5]
        planes = rotation_planes(self.scale, data["spacing"]) if self.rot90 else []
        self._plane = planes[self.R.randint(len(planes))] if planes else None
        self._turns = int(self.R.randint(4)) if planes else 0

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        self.randomize(d)
        for key in self.key_iterator(d):
            x = _numpy(d[key])
            if self._flips:
                x = np.flip(x, axis=[1 + a for a in self._flips])
            if self._plane is not None and self._turns:
                x = np.rot90(x, self._turns, axes=(1 + self._plane[0], 1 + self._plane[1]))
            d[key] = np.ascontiguousarray(x)
        return d


class ToPaird(Transform):
    """Keep only the training pair as float32 tensors: ``{"lr": (C, *lr_spatial), "hr": (C, *hr_spatial)}``."""

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[str, torch.Tensor]:
        return {key: torch.as_tensor(np.ascontiguousarray(_numpy(data[key])), dtype=torch.float32)
                for key in ("lr", "hr")}
