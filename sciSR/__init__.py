"""sciSR: super-resolution for scientific images with geometry that survives the upscale.

``import sciSR`` is light (no torch, no MONAI): networks, training and napari load on first use. The
public functions that need torch (``load_model``, ``train``, ``self_supervised``) are the library's own
functions, reached lazily by name (PEP 562), so each has exactly one definition.
"""

import importlib
from typing import Any

from sciSR.api import evaluate, list_models, read, upscale, upscale_batch, upscale_file, write
from sciSR.errors import Cancelled, SciSRError
from sciSR.image import SciImage
from sciSR.version import __version__

_LAZY_FUNCTIONS = {
    "load_model": ("sciSR.hub", "load_model"),
    "train": ("sciSR.training", "run"),
    "self_supervised": ("sciSR.self_supervision", "self_supervised"),
}

# Subpackages reached as attributes (``sciSR.models.create_model``): imported on first use.
_SUBPACKAGES = ("models", "training", "hub", "geometry", "degrade", "data", "intensity", "metrics", "flux",
                "infer", "self_supervision", "science", "multi_input", "resample", "pipeline")


def __getattr__(name: str) -> Any:
    if name in _LAZY_FUNCTIONS:
        module, attribute = _LAZY_FUNCTIONS[name]
        return getattr(importlib.import_module(module), attribute)
    if name in _SUBPACKAGES:
        return importlib.import_module(f"sciSR.{name}")
    raise AttributeError(f"module 'sciSR' has no attribute {name!r}")


__all__ = [
    "Cancelled",
    "SciImage",
    "SciSRError",
    "__version__",
    "evaluate",
    "list_models",
    "load_model",
    "read",
    "self_supervised",
    "train",
    "upscale",
    "upscale_batch",
    "upscale_file",
    "write",
]
