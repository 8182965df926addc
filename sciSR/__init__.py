"""sciSR: super-resolution for scientific images with geometry that survives the upscale."""

from sciSR.api import list_models, load_model, read, upscale, write
from sciSR.errors import Cancelled, SciSRError
from sciSR.image import SciImage

__version__ = "0.1.0"

__all__ = [
    "Cancelled",
    "SciImage",
    "SciSRError",
    "__version__",
    "list_models",
    "load_model",
    "read",
    "upscale",
    "write",
]
