"""The model zoo: a registry of super-resolution architectures, each in 2D and 3D at any per-axis scale.

>>> from sciSR.models import create_model, list_architectures, spec_of
>>> model = create_model("edsr-baseline", scale=(1, 1, 4), spatial_dims=3)
>>> model.card["arch"], model.scale, spec_of(model).global_pooling
('edsr-baseline', (1, 1, 4), False)

Importing this package registers every family (one module each).
"""

from sciSR.models import (  # noqa: F401  (imported to register their architectures)
    edsr,
    espcn,
    esrgan,
    fsrcnn,
    lapsrn,
    oktay,
    rcan,
    rdn,
    san,
    srcnn,
    srdensenet,
    srresnet,
    swinir,
    toy,
    ttsr,
    vdsr,
)
from sciSR.models.base import Discriminator, PostUpsamplingModel, PreUpsamplingModel, ZooModel
from sciSR.models.registry import (
    MODEL_REGISTRY,
    ModelInfo,
    create_model,
    get_model_info,
    list_architectures,
    list_models,
    register_model,
    spec_from_card,
)
from sciSR.models.spec import ModelSpec, spec_of

__all__ = [
    "MODEL_REGISTRY",
    "Discriminator",
    "ModelInfo",
    "ModelSpec",
    "PostUpsamplingModel",
    "PreUpsamplingModel",
    "ZooModel",
    "create_model",
    "get_model_info",
    "list_architectures",
    "list_models",
    "register_model",
    "spec_from_card",
    "spec_of",
]
