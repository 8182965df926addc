"""Training samples for multi-stack fusion and reference-guided super-resolution.

Two sample kinds are simulated from high-resolution images (volumes or 2D images):

- **stacks** (``oktay-multi``): N thick-slice stacks, each degraded along its own axes with a random
  sub-slice offset, resampled back onto the HR grid by world coordinates (:mod:`sciSR.resample`) and
  given as channel groups: ``{"lr": (N·C, *hr_patch), "hr": (C, *hr_patch)}``.
- **reference** (``ttsr``): the usual degraded LR plus a reference on the HR grid — the HR patch seen in
  another contrast (a monotone non-linear intensity remap), through a small smooth deformation, with its
  own noise: ``{"lr": (C, *lr_patch), "ref": (C, *hr_patch), "hr": (C, *hr_patch)}``.

Both are specs with the interface of :class:`sciSR.data.dataset.PairSpec` (``deterministic``,
``random``, ``transform``, ``model_scale``, ``patch_size``), so :func:`~sciSR.data.dataset.train_dataset`
and :func:`~sciSR.data.dataset.fixed_dataset` cache and draw them the same way. Values are in the
normalised units of the image's normalisation (fitted on a simulation of the first stack / the LR).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.transforms import MapTransform, Randomizable, RandomizableTransform, Transform
from scipy import ndimage

from sciSR.data.dataset import PairCompose, PairSpec
from sciSR.data.pair_transforms import (
    FitNormalizationd,
    ForegroundIndicesd,
    LoadSciImaged,
    NormalizePaird,
    RandFlipRot90d,
    RandPatchd,
    ToPaird,
)
from sciSR.degrade.kernels import mirror_index
from sciSR.degrade.monai_transforms import create_degradation
from sciSR.errors import SciSRError
from sciSR.geometry import downscale_affine, normalize_scale
from sciSR.image import SciImage
from sciSR.resample import ORDERS, resample_array


def shift_phase(x: np.ndarray, offset: Sequence[int]) -> np.ndarray:
    """Shift the sampling phase of ``(C, *spatial)`` by whole voxels, mirrored at the edges.

    After the shift a degradation that puts LR voxel ``n`` on HR ``s·n + (s − 1)/2`` puts it on
    ``s·n + (s − 1)/2 + offset`` of the original grid (a stack acquired a fraction of a slice later).
    """
    out = np.asarray(x)
    for axis, o in enumerate(offset):
        if o:
            n = out.shape[axis + 1]
            out = np.take(out, mirror_index(np.arange(n) + int(o), n), axis=axis + 1)
    return out


def simulate_stacks(img: SciImage, scales: Sequence[Sequence[int]], *, offsets: Sequence[Sequence[int]] | None = None,
                    degradation: str = "thick_slice", options: Mapping[str, Any] | None = None,
                    seed: int = 0) -> list[SciImage]:
    """Thick-slice stacks of one high-resolution image, each with its own correctly placed affine.

    Parameters
    ----------
    img : SciImage
        High-resolution image with an affine (a spacing-only image gets ``diag(spacing)``); no channel axis.
    scales : sequence of sequence of int
        Factor per spatial axis for each stack, e.g. ``[(4, 1, 1), (1, 4, 1), (1, 1, 4)]``; each spatial
        size must be a multiple of the factor.
    offsets : sequence of sequence of int, optional
        Sub-slice offset of each stack per axis, in HR voxels (``0 ≤ o < s``); default none.
    degradation : str
        :data:`sciSR.degrade.DEGRADATIONS` entry (``"thick_slice"``: slice-profile blur and decimation).
    options : dict, optional
        Its options (random ranges are drawn once per stack from ``seed``).
    seed : int
        Seed of random degradation parameters (noise).

    Returns
    -------
    list of SciImage
        One per stack: float32 ``spatial / scale``; affine :func:`sciSR.geometry.downscale_affine` of the
        HR affine with the offset, so world coordinates stay on the same anatomy.
    """
    affine = img.affine if img.affine is not None else np.diag([*img.spacing, *[1.0] * (4 - img.spatial_ndim)])
    if img.channel_axis is not None:
        raise SciSRError("simulate_stacks takes a single-channel image", img.meta.get("source"))
    hr = np.asarray(img.array, dtype=np.float32)[np.newaxis]
    rng = np.random.RandomState(seed)
    stacks = []
    for n, scale in enumerate(scales):
        factors = normalize_scale(scale, img.spatial_ndim)
        offset = tuple(offsets[n]) if offsets is not None else (0,) * len(factors)
        degrade = create_degradation(degradation, factors, **dict(options or {}))
        if isinstance(degrade, Randomizable):
            degrade.set_random_state(state=rng)
        low = np.asarray(degrade(shift_phase(hr, offset)))[0]
        stacks.append(SciImage.from_array(low, affine=downscale_affine(affine, factors, offset), domain=img.domain,
                                          meta={"source": f"{img.meta.get('source', 'image')} stack {n}"}))
    return stacks


class SimulateStacksd(RandomizableTransform):
    """``d["lr"]``: N simulated stacks of ``d["hr"]`` resampled back onto its grid, as channel groups.

    Parameters
    ----------
    scales : sequence of sequence of int
        Factor per spatial axis of each stack.
    degradation : str
        :data:`sciSR.degrade.DEGRADATIONS` entry.
    options : dict, optional
        Its options.
    offsets : bool
        Draw a random sub-slice offset ``0 ≤ o < s`` (HR voxels) per stack and scaled axis, except for the
        first stack, which defines the output grid.
    order : int
        Interpolation order of the resampling (1 or 3).
    """

    def __init__(self, scales: Sequence[Sequence[int]], degradation: str = "thick_slice",
                 options: Mapping[str, Any] | None = None, offsets: bool = True, order: int = 3) -> None:
        RandomizableTransform.__init__(self, prob=1.0)
        self.scales = [tuple(int(f) for f in s) for s in scales]
        self.degradations = [create_degradation(degradation, s, **dict(options or {})) for s in self.scales]
        self.offsets, self.order = bool(offsets), int(order)

    def set_random_state(self, seed: int | None = None, state: np.random.RandomState | None = None
                         ) -> SimulateStacksd:
        super().set_random_state(seed, state)
        for degrade in self.degradations:
            if isinstance(degrade, Randomizable):
                degrade.set_random_state(state=self.R)  # one stream: a seeded draw fixes every stack
        return self

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        hr = np.asarray(d["hr"], dtype=np.float32)
        shape = hr.shape[1:]
        identity = np.eye(4)  # the HR voxel grid is the world here: only relative placement matters
        stacks = []
        for n, (scale, degrade) in enumerate(zip(self.scales, self.degradations, strict=True)):
            # The output grid is the first stack's grid upscaled (geometry.fusion_output_grid): that stack
            # sits on it with no offset, as at inference; the others are shifted against it.
            offset = tuple(int(self.R.randint(s)) if self.offsets and s > 1 and n else 0 for s in scale)
            low = np.asarray(degrade(shift_phase(hr, offset)), dtype=np.float32)
            on_hr, _ = resample_array(np.moveaxis(low, 0, -1), downscale_affine(identity, scale, offset), identity,
                                      shape, order=self.order)
            stacks.append(np.moveaxis(on_hr, -1, 0))
        d["lr"] = np.concatenate(stacks, axis=0)
        return d


class CropHRMargind(MapTransform):
    """Cut ``margin[a]`` voxels from both ends of spatial axis ``a`` of every key (all on one grid)."""

    def __init__(self, keys: Sequence[str], margin: Sequence[int]) -> None:
        super().__init__(tuple(keys))
        self.margin = tuple(int(m) for m in margin)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        crop = (slice(None), *(slice(m, -m if m else None) for m in self.margin))
        for key in self.key_iterator(d):
            d[key] = d[key][crop]
        return d


class SimulateReferenced(RandomizableTransform):
    """``d["ref"]``: the normalised HR patch in another contrast, slightly deformed, with its own noise.

    Parameters
    ----------
    contrast : bool
        Remap intensities by ``expm1(g·x) / expm1(g)``, monotone and non-linear, ``|g|`` drawn from
        ``[1, 3]`` with a random sign (convex or concave), so the network cannot copy reference values.
    deform : float
        Largest displacement of the smooth random deformation, in HR voxels (0: none). The field is
        Gaussian noise smoothed over ``smoothness`` voxels, plus a uniform sub-voxel translation.
    smoothness : float
        Correlation length of the deformation in HR voxels.
    noise : float
        Gaussian noise σ added to the reference, in normalised units.
    """

    def __init__(self, contrast: bool = True, deform: float = 1.0, smoothness: float = 6.0, noise: float = 0.02
                 ) -> None:
        RandomizableTransform.__init__(self, prob=1.0)
        if deform < 0 or noise < 0 or smoothness <= 0:
            raise SciSRError(f"reference deform {deform} and noise {noise} must be ≥ 0, smoothness {smoothness} > 0")
        self.contrast, self.deform, self.smoothness, self.noise = bool(contrast), float(deform), float(smoothness), \
            float(noise)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        ref = np.asarray(d["hr"], dtype=np.float32)
        shape = ref.shape[1:]
        if self.contrast:
            g = float(self.R.uniform(1.0, 3.0)) * (1.0 if self.R.uniform() < 0.5 else -1.0)
            ref = (np.expm1(g * np.clip(ref, -1.0, 2.0)) / np.expm1(g)).astype(np.float32)
        if self.deform > 0:
            grid = np.meshgrid(*[np.arange(n, dtype=np.float64) for n in shape], indexing="ij")
            coords = []
            for axis in range(len(shape)):
                field = ndimage.gaussian_filter(self.R.standard_normal(shape), self.smoothness, mode="reflect")
                field *= 0.5 * self.deform / max(float(np.abs(field).max()), 1e-12)
                coords.append(grid[axis] + field + self.R.uniform(-0.5, 0.5) * self.deform)
            ref = np.stack([ndimage.map_coordinates(c, coords, order=3, mode="reflect")
                            for c in ref]).astype(np.float32)
        if self.noise > 0:
            ref = ref + self.R.normal(0.0, self.noise, ref.shape).astype(np.float32)
        d["ref"] = ref
        return d


class ToTensorsd(Transform):
    """Keep only ``keys`` as float32 tensors (the training sample)."""

    def __init__(self, keys: Sequence[str]) -> None:
        self.keys = tuple(keys)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[str, torch.Tensor]:
        return {key: torch.as_tensor(np.ascontiguousarray(np.asarray(data[key])), dtype=torch.float32)
                for key in self.keys}


@dataclasses.dataclass
class StackSpec:
    """How (stacks…, HR) samples for ``oktay-multi`` are made from high-resolution images.

    Parameters
    ----------
    stacks : sequence of sequence of int
        Factor per image spatial axis of each simulated stack, e.g. ``[[4, 1, 1], [1, 4, 1], [1, 1, 4]]``
        (three orthogonal ×4 thick-slice stacks). The first one is the model's nominal scale.
    patch_size : sequence of int
        Patch size in LR voxels of the FIRST stack, one per image axis (the model runs on
        ``patch_size · stacks[0]`` HR voxels, which must be a multiple of every stack's factor).
    degradation, degradation_options
        How one stack is simulated (:data:`sciSR.degrade.DEGRADATIONS`; ``thick_slice`` for MRI).
    normalisation, normalisation_options
        :data:`sciSR.intensity.METHODS` entry and options, fitted on the first stack's simulation.
    margin : int
        Context cut away after resampling, in units of the coarsest factor per axis (HR voxels
        ``margin · lcm(factors)``), so resampling borders never reach the loss.
    offsets : bool
        Random sub-slice offsets per stack.
    order : int
        Resampling order (1 or 3).
    foreground_prob, foreground_threshold, flip, rot90
        As in :class:`~sciSR.data.dataset.PairSpec` (rotations only in planes with equal spacing).
    """

    stacks: Sequence[Sequence[int]]
    patch_size: Sequence[int]
    degradation: str = "thick_slice"
    degradation_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    normalisation: str = "percentile"
    normalisation_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    margin: int = 1
    offsets: bool = True
    order: int = 3
    foreground_prob: float = 0.8
    foreground_threshold: float = 0.1
    flip: bool = True
    rot90: bool = True

    def __post_init__(self) -> None:
        self.patch_size = tuple(int(p) for p in self.patch_size)
        dims = len(self.patch_size)
        if dims not in (2, 3):
            raise SciSRError(f"patch_size {self.patch_size} must have 2 or 3 entries (one per image axis)")
        if not self.stacks:
            raise SciSRError("fusion needs at least one stack scale in data.fusion.stacks")
        self.stacks = [normalize_scale(s, dims) for s in self.stacks]
        if self.order not in ORDERS[1:]:
            raise SciSRError(f"fusion resampling order must be 1 or 3, got {self.order}")
        lcm = tuple(math.lcm(*(s[a] for s in self.stacks)) for a in range(dims))
        core = tuple(p * f for p, f in zip(self.patch_size, self.stacks[0], strict=True))
        if any(c % m for c, m in zip(core, lcm, strict=True)):
            raise SciSRError(f"patch_size {self.patch_size} × first stack {self.stacks[0]} = {core} HR voxels must "
                             f"be a multiple of every stack's factor {lcm} per axis")
        self._hr_margin = tuple(self.margin * m for m in lcm)
        self._core = core
        for s in self.stacks:
            create_degradation(self.degradation, s, **dict(self.degradation_options))

    @property
    def model_scale(self) -> tuple[int, ...]:
        """The nominal scale of the fusion model: the first stack's factors."""
        return tuple(self.stacks[0])

    @property
    def scale(self) -> tuple[int, ...]:
        """Alias of :attr:`model_scale` (the image scale; fusion never slices volumes into planes)."""
        return self.model_scale

    @property
    def hr_factor(self) -> float:
        """``∏`` of the first stack's factors for block-summing degradations (counts: sky frames), else 1.

        The network then predicts in the first stack's pixel units, as single-image models do
        (:class:`~sciSR.data.pair_transforms.NormalizePaird`).
        """
        first = create_degradation(self.degradation, self.stacks[0], **dict(self.degradation_options))
        return float(math.prod(self.stacks[0])) if first.flux_reduce == "sum" else 1.0

    def hr_patch_size(self) -> tuple[int, ...]:
        """HR crop per axis, margins included."""
        return tuple(c + 2 * m for c, m in zip(self._core, self._hr_margin, strict=True))

    def deterministic(self, seed: int = 0) -> list[Any]:
        """Read → normalisation fitted on the first stack's simulation → foreground indices."""
        first = create_degradation(self.degradation, self.stacks[0], **dict(self.degradation_options))
        return [LoadSciImaged(),
                FitNormalizationd(first, self.stacks[0], self.normalisation, self.normalisation_options, seed),
                ForegroundIndicesd(self.foreground_threshold)]

    def random(self) -> list[Any]:
        """Patch → stacks on the HR grid → drop margins → normalise → flip/rotate → tensors."""
        dims = len(self.patch_size)
        return [RandPatchd(self.hr_patch_size(), self.foreground_prob),
                SimulateStacksd(self.stacks, self.degradation, self.degradation_options, self.offsets, self.order),
                CropHRMargind(("lr", "hr"), self._hr_margin),
                NormalizePaird(self.hr_factor),
                RandFlipRot90d(("lr", "hr"), (1,) * dims, self.flip, self.rot90),
                ToTensorsd(("lr", "hr"))]

    def transform(self, seed: int = 0) -> PairCompose:
        """The whole pipeline; MONAI caches up to the first random transform."""
        return PairCompose([*self.deterministic(seed), *self.random()])


@dataclasses.dataclass
class ReferenceSpec(PairSpec):
    """(LR, reference, HR) samples for ``ttsr``: a :class:`~sciSR.data.dataset.PairSpec` plus a reference.

    Parameters
    ----------
    scale, patch_size, degradation, ... :
        As in :class:`~sciSR.data.dataset.PairSpec` (the LR is made exactly as for single-image SR).
    ref_contrast, ref_deform, ref_smoothness, ref_noise :
        Options of :class:`SimulateReferenced`.
    """

    ref_contrast: bool = True
    ref_deform: float = 1.0
    ref_smoothness: float = 6.0
    ref_noise: float = 0.02

    def random(self) -> list[Any]:
        """The pair pipeline with the reference drawn from the normalised HR patch before augmentation."""
        # PairSpec.random ends with flip/rotate and ToPaird; the reference joins before both.
        steps = [t for t in super().random() if not isinstance(t, RandFlipRot90d | ToPaird)]
        reference = SimulateReferenced(self.ref_contrast, self.ref_deform, self.ref_smoothness, self.ref_noise)
        flip_all = RandFlipRot90d(("lr", "ref", "hr"), self.model_scale, self.flip, self.rot90)
        return [*steps, reference, flip_all, ToTensorsd(("lr", "ref", "hr"))]
