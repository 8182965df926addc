"""Datasets of (LR, HR) pairs from files or phantoms: items, subject-wise split, caching, loaders.

An *item* is ``{"image": <path or phantom spec>, "subject": <id>}``. The deterministic part of the
pipeline (read, fit the normalisation, find foreground) runs once per item and is cached in memory
(MONAI ``CacheDataset``), on disk (``PersistentDataset``) or not at all; the random part (patch,
degradation, augmentation) runs per sample. Samples are ``{"lr": (C, *lr_spatial), "hr": (C, *hr_spatial)}``
float32 tensors in normalised units.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.data import CacheDataset, DataLoader, Dataset, PersistentDataset
from monai.transforms import Compose

from sciSR.data.pair_transforms import (
    CropMargind,
    FitNormalizationd,
    ForegroundIndicesd,
    LoadSciImaged,
    NormalizePaird,
    RandFlipRot90d,
    RandPatchd,
    ToPaird,
)
from sciSR.degrade.monai_transforms import Degradationd, RandDegradation, RandDegradationd, create_degradation
from sciSR.errors import SciSRError
from sciSR.geometry import normalize_scale
from sciSR.io.dicom import study_uid

CACHES = ("memory", "disk", "none")


class PairCompose(Compose):
    """MONAI ``Compose`` that lets a :class:`~sciSR.errors.SciSRError` through unwrapped.

    MONAI re-raises every transform error as ``RuntimeError("applying transform ...")``; the user should
    see the one-line reason (e.g. a patch larger than the image) instead.
    """

    def __call__(self, input_: Any, start: int = 0, end: int | None = None, threading: bool = False,
                 lazy: bool | None = None) -> Any:
        try:
            return super().__call__(input_, start=start, end=end, threading=threading, lazy=lazy)
        except RuntimeError as err:
            cause: BaseException | None = err
            while cause is not None and not isinstance(cause, SciSRError):
                cause = cause.__cause__
            if cause is None:
                raise
            raise cause from None


@dataclasses.dataclass
class PairSpec:
    """How (LR, HR) pairs are made from high-resolution images.

    Parameters
    ----------
    scale : sequence of int
        Factor per IMAGE spatial axis, e.g. ``(1, 1, 4)``; for 2D patches from volumes the slicing axis
        has factor 1, e.g. ``(2, 2, 1)``.
    patch_size : sequence of int
        LR patch size per MODEL axis (2 entries: 2D model, 3 entries: 3D model).
    degradation : str
        Name in :data:`sciSR.degrade.DEGRADATIONS`.
    degradation_options : dict
        Its options (numbers or ``[low, high]`` ranges).
    normalisation : str
        :data:`sciSR.intensity.METHODS` entry (must be what the model card says).
    normalisation_options : dict
        Options of :func:`sciSR.intensity.fit_normalization`.
    margin : int
        LR voxels per side degraded with the patch and then discarded (k-space and PSF borders).
    foreground_prob : float
        Probability that a patch is centred on foreground.
    foreground_threshold : float
        Foreground = normalised value above this.
    flip, rot90 : bool
        Augmentations (rotations only in planes with equal factor and spacing).
    slice_axis : int, optional
        Image axis sliced for a 2D model on volumes; default the last axis with factor 1.
    """

    scale: Sequence[int]
    patch_size: Sequence[int]
    degradation: str = "bin"
    degradation_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    normalisation: str = "percentile"
    normalisation_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    margin: int = 2
    foreground_prob: float = 0.8
    foreground_threshold: float = 0.1
    flip: bool = True
    rot90: bool = True
    slice_axis: int | None = None

    def __post_init__(self) -> None:
        self.scale = normalize_scale(self.scale, len(self.scale))
        self.patch_size = tuple(int(p) for p in self.patch_size)
        image_dims, model_dims = len(self.scale), len(self.patch_size)
        if model_dims not in (2, 3) or model_dims > image_dims:
            raise SciSRError(f"patch_size {self.patch_size} must have 2 or 3 entries, at most one per scale "
                             f"factor {self.scale}")
        if model_dims == image_dims:
            if self.slice_axis is not None:
                raise SciSRError(f"slice_axis is for 2D patches from volumes; patch_size {self.patch_size} "
                                 f"already has one entry per axis of scale {self.scale}")
        elif model_dims == image_dims - 1:
            unscaled = [a for a, s in enumerate(self.scale) if s == 1]
            if self.slice_axis is None and not unscaled:
                raise SciSRError(f"2D patches from volumes need an axis with factor 1 to slice; scale {self.scale}")
            axis = unscaled[-1] if self.slice_axis is None else int(self.slice_axis)
            if not 0 <= axis < image_dims or self.scale[axis] != 1:
                raise SciSRError(f"slice_axis {axis} must be an image axis with factor 1 (scale {self.scale})")
            self.slice_axis = axis
        else:
            raise SciSRError(f"patch_size {self.patch_size} does not fit scale {self.scale}")
        if any(p <= 0 for p in self.patch_size) or self.margin < 0:
            raise SciSRError(f"patch_size must be positive and margin ≥ 0, got {self.patch_size}, {self.margin}")
        # Build once now so unknown degradation options fail before any data is read.
        self.degradation_transform(self.scale)

    @property
    def model_scale(self) -> tuple[int, ...]:
        """Factor per model axis (the image scale without the slicing axis)."""
        return tuple(s for a, s in enumerate(self.scale) if a != self.slice_axis)

    @property
    def hr_factor(self) -> float:
        """``∏ scale`` for block-summing degradations (counts), else 1 (see :class:`NormalizePaird`)."""
        summed = self.degradation_transform(self.model_scale).flux_reduce == "sum"
        return float(math.prod(self.model_scale)) if summed else 1.0

    def degradation_transform(self, scale: Sequence[int]) -> Any:
        """A fresh degradation array transform at ``scale``."""
        return create_degradation(self.degradation, tuple(scale), **dict(self.degradation_options))

    def hr_patch_size(self) -> tuple[int, ...]:
        """HR crop per image axis, margins included (1 along the slicing axis)."""
        sizes = iter((p + 2 * self.margin) * s for p, s in zip(self.patch_size, self.model_scale, strict=True))
        return tuple(1 if a == self.slice_axis else next(sizes) for a in range(len(self.scale)))

    def deterministic(self, seed: int = 0) -> list[Any]:
        """Read → fit normalisation on a seeded LR simulation of the whole image → foreground indices."""
        return [
            LoadSciImaged(),
            FitNormalizationd(self.degradation_transform(self.scale), self.scale, self.normalisation,
                              self.normalisation_options, seed),
            ForegroundIndicesd(self.foreground_threshold),
        ]

    def random(self) -> list[Any]:
        """Patch → degrade → drop margins → normalise → flip/rotate → tensors."""
        degrade = self.degradation_transform(self.model_scale)
        wrapper = RandDegradationd if isinstance(degrade, RandDegradation) else Degradationd
        return [
            RandPatchd(self.hr_patch_size(), self.foreground_prob, self.slice_axis),
            wrapper("hr", degrade, output_keys="lr"),
            CropMargind(self.model_scale, self.margin),
            NormalizePaird(self.hr_factor),
            RandFlipRot90d(("lr", "hr"), self.model_scale, self.flip, self.rot90),
            ToPaird(),
        ]

    def transform(self, seed: int = 0) -> PairCompose:
        """The whole pipeline; MONAI caches up to the first random transform."""
        return PairCompose([*self.deterministic(seed), *self.random()])


def find_items(
    *,
    files: Sequence[str | os.PathLike] = (),
    folder: str | os.PathLike | None = None,
    pattern: str = "*",
    generate: str | None = None,
    count: int = 8,
    seed: int = 0,
    options: Mapping[str, Any] | None = None,
    subject_pattern: str | None = None,
    collection: Sequence[str] = (),
    exclude: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """List the training images.

    Parameters
    ----------
    files : sequence of path
        Image files or DICOM series folders.
    folder : path, optional
        Also take every entry of ``folder`` matching ``pattern`` (sorted).
    pattern : str
        Glob inside ``folder``.
    generate : str, optional
        Phantom name (:data:`sciSR.data.phantoms.PHANTOMS`): ``count`` images with seeds ``seed, seed+1, …``.
    count, seed, options
        Phantom count, first seed and generator options.
    subject_pattern : str, optional
        Regular expression whose first group (or whole match) names the subject in a path, so that the
        split keeps all files of a subject together (e.g. ``"sub-[0-9]+"``). Default: the DICOM study for
        DICOM files (:func:`sciSR.io.dicom.study_uid`; one subject per study, named after its first file),
        else the file name.
    collection : sequence of str
        Names of :data:`sciSR.data.shipped.COLLECTIONS` (images that installed packages ship); slices of
        one volume share its file name as subject. May be combined with ``generate`` (phantoms are added).
    exclude : sequence of str
        File-name globs of collection images to leave out (held-out test images).

    Returns
    -------
    list of dict
        ``{"image": path or {"generate", "seed", "options"}, "subject": str}``.
    """
    phantoms = [] if generate is None else [
        {"image": {"generate": generate, "seed": seed + i, "options": dict(options or {})},
         "subject": f"{generate}-{seed + i}"} for i in range(int(count))]
    if collection:
        from sciSR.data.shipped import collection as shipped_collection

        shipped = [f for name in collection for f in shipped_collection(name, exclude=exclude)]
        return [{"image": os.fspath(f.path), "subject": f.source} for f in shipped] + phantoms
    if generate is not None:
        return phantoms
    paths = [Path(f) for f in files]
    if folder is not None:
        if not Path(folder).is_dir():
            raise SciSRError("data folder does not exist", folder)
        paths += sorted(p for p in Path(folder).glob(pattern) if not p.name.startswith("."))
    if not paths:
        raise SciSRError("no training images: give data files, a folder with matching files, or generate:")
    items = []
    first_of_study: dict[str, str] = {}
    for path in paths:
        if not path.exists():
            raise SciSRError("no such training image", path)
        subject = path.name.split(".")[0]
        if subject_pattern:
            match = re.search(subject_pattern, str(path))
            if match is None:
                raise SciSRError(f"subject_pattern {subject_pattern!r} does not match", path)
            # The first group that took part in the match: with alternatives, group 1 may not have.
            subject = next((g for g in match.groups() if g is not None), match.group(0))
        elif (study := study_uid(path)) is not None:
            # Scanners export one file per slice: split by file, the slices of one scan would validate each
            # other. The subject is named after the study's first file, so no UID reaches the model card.
            subject = first_of_study.setdefault(study, subject)
        items.append({"image": os.fspath(path), "subject": subject})
    return items


def split_items(items: Sequence[Mapping[str, Any]], val_fraction: float = 0.2, seed: int = 0,
                val_subjects: Sequence[str] = ()) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Split by subject (never one subject on both sides), reproducibly.

    Parameters
    ----------
    items : sequence of dict
        From :func:`find_items`.
    val_fraction : float
        Fraction of subjects held out (at least one when > 0); ignored if ``val_subjects`` is given.
    seed : int
        Shuffle seed.
    val_subjects : sequence of str
        Explicit validation subjects.

    Returns
    -------
    train, val : list of dict
    """
    subjects = sorted({str(it["subject"]) for it in items})
    if val_subjects:
        missing = sorted(set(val_subjects) - set(subjects))
        if missing:
            raise SciSRError(f"validation subject {missing[0]!r} is not among the data subjects")
        held = set(val_subjects)
    elif val_fraction > 0:
        if len(subjects) < 2:
            raise SciSRError("a train/validation split needs at least 2 subjects; add data or set val_fraction: 0")
        n_val = min(max(1, round(val_fraction * len(subjects))), len(subjects) - 1)
        order = np.random.default_rng(seed).permutation(len(subjects))
        held = {subjects[i] for i in order[:n_val]}
    else:
        held = set()
    train = [dict(it) for it in items if it["subject"] not in held]
    val = [dict(it) for it in items if it["subject"] in held]
    if not train:
        raise SciSRError("every subject is in the validation set; nothing left to train on")
    return train, val


class RepeatDataset(torch.utils.data.Dataset):
    """``length`` samples cycling over ``dataset`` (each access draws a fresh random patch)."""

    def __init__(self, dataset: torch.utils.data.Dataset, length: int) -> None:
        self.dataset, self.length = dataset, int(length)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> Any:
        return self.dataset[index % len(self.dataset)]


def train_dataset(items: Sequence[Mapping[str, Any]], spec: PairSpec, *, cache: str = "memory",
                  cache_dir: str | os.PathLike | None = None, samples_per_epoch: int | None = None, seed: int = 0,
                  cache_workers: int = 1) -> torch.utils.data.Dataset:
    """Random pairs from ``items`` with the deterministic stage cached.

    Parameters
    ----------
    items : sequence of dict
        From :func:`find_items` / :func:`split_items`.
    spec : PairSpec
        Pair recipe.
    cache : str
        ``"memory"`` (``CacheDataset``), ``"disk"`` (``PersistentDataset`` in ``cache_dir``) or ``"none"``.
    cache_dir : path, optional
        Folder for ``"disk"``.
    samples_per_epoch : int, optional
        Length of an epoch (patches); default one per item.
    seed : int
        Seed of the normalisation reference degradation.
    cache_workers : int
        Threads filling the memory cache.
    """
    if cache not in CACHES:
        raise SciSRError(f"cache must be one of {CACHES}, got {cache!r}")
    transform = spec.transform(seed)
    data = [dict(it) for it in items]
    if cache == "memory":
        # copy_cache=False: every random transform copies what it changes, so the cache is never modified.
        ds: torch.utils.data.Dataset = CacheDataset(data, transform, cache_rate=1.0, num_workers=cache_workers,
                                                    copy_cache=False, progress=False)
    elif cache == "disk":
        if cache_dir is None:
            raise SciSRError("cache: disk needs a cache_dir")
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        ds = PersistentDataset(data, transform, cache_dir=cache_dir)
    else:
        ds = Dataset(data, transform)
    return RepeatDataset(ds, samples_per_epoch) if samples_per_epoch else ds


def fixed_dataset(items: Sequence[Mapping[str, Any]], spec: PairSpec, *, per_item: int = 4, seed: int = 0
                  ) -> Dataset:
    """The same pairs every time (validation): ``per_item`` seeded draws per item, computed once."""
    deterministic, random = PairCompose(spec.deterministic(seed)), PairCompose(spec.random())
    random.set_random_state(seed)
    samples = []
    for item in items:
        prepared = deterministic(dict(item))
        samples += [random(prepared) for _ in range(per_item)]
    return Dataset(samples)


def make_loader(dataset: torch.utils.data.Dataset, *, batch_size: int, shuffle: bool, num_workers: int = 0,
                seed: int | None = None, drop_last: bool = False) -> DataLoader:
    """A MONAI ``DataLoader``; random transforms are seeded from ``seed`` (per worker when ``num_workers > 0``).

    Parameters
    ----------
    dataset : torch.utils.data.Dataset
        Map-style dataset of pair dicts.
    batch_size, shuffle, num_workers, drop_last
        As for :class:`torch.utils.data.DataLoader`.
    seed : int, optional
        Seeds shuffling and the transforms' random states (give each DDP rank its own).
    """
    generator = None if seed is None else torch.Generator().manual_seed(int(seed))
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, num_workers=num_workers, generator=generator,
                      drop_last=drop_last, pin_memory=torch.cuda.is_available(), persistent_workers=num_workers > 0)

