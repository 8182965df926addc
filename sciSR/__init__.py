"""sciSR: super-resolution for scientific images with geometry that survives the upscale.

``import sciSR`` is light (no torch, no MONAI); networks, training and napari load on first use.
"""

import importlib
from typing import Any

from sciSR.api import evaluate, list_models, load_model, read, upscale, upscale_batch, upscale_file, write
from sciSR.errors import Cancelled, SciSRError
from sciSR.image import SciImage

__version__ = "0.1.0"

# Subpackages reached as attributes (``sciSR.models.create_model``, ``sciSR.train(config)``): imported
# on first use. ``sciSR.train`` is the training package, and calling it runs a recipe; likewise calling
# the ``sciSR.self_supervised`` module runs self-supervised SR (it imports torch, so it loads on first use).
_SUBPACKAGES = ("models", "train", "hub", "geometry", "degrade", "data", "intensity", "metrics", "flux", "infer",
                "self_supervised", "science", "fusion", "resample")


def __getattr__(name: str) -> Any:
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
