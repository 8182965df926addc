"""Training data: phantoms, (LR, HR) pair pipelines (MONAI), subject-wise splits, cached datasets, loaders.

>>> from sciSR.data import PairSpec, find_items, split_items, train_dataset, make_loader
>>> spec = PairSpec(scale=(1, 1, 4), patch_size=(24, 24, 6), degradation="thick_slice")
>>> train, val = split_items(find_items(folder="knees", pattern="*.nii.gz"), val_fraction=0.2)
>>> loader = make_loader(train_dataset(train, spec, samples_per_epoch=512), batch_size=4, shuffle=True)

Samples are ``{"lr": (C, *lr_spatial), "hr": (C, *hr_spatial)}`` float32 tensors in the normalised
units of :mod:`sciSR.intensity`, fitted per image on its simulated LR version exactly as
:func:`sciSR.upscale` fits them on the LR image at inference.
"""

from sciSR.data.dataset import (
    PairCompose,
    PairSpec,
    RepeatDataset,
    find_items,
    fixed_dataset,
    make_loader,
    split_items,
    train_dataset,
)
from sciSR.data.phantoms import PHANTOMS, ct_phantom, generate, generic_scene, knee_phantom, star_field

__all__ = [
    "PHANTOMS",
    "PairCompose",
    "PairSpec",
    "RepeatDataset",
    "ct_phantom",
    "find_items",
    "fixed_dataset",
    "generate",
    "generic_scene",
    "knee_phantom",
    "make_loader",
    "split_items",
    "star_field",
    "train_dataset",
]
