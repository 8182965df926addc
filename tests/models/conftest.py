"""Shared settings of the model-zoo tests: small options so the whole zoo runs in seconds on a laptop CPU."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import torch

# Reduced widths/depths (same topology as the paper configurations, which the parameter-count tests
# build on the meta device and test_models_shapes runs once in 2D).
TINY: dict[str, dict[str, Any]] = {
    "srnet-toy": {"features": 8},
    "srcnn": {"features": (8, 4), "kernel_sizes": (3, 1, 3)},
    "fsrcnn": {"features": 8, "shrink": 4, "mapping_layers": 2},
    "vdsr": {"depth": 4, "features": 8},
    "espcn": {"features": (8, 4)},
    "lapsrn": {"depth": 2, "features": 8},
    "srresnet": {"n_blocks": 2, "features": 8},
    "srgan-d": {"features": 4, "fc_features": 16, "pool_size": 2},
    "edsr": {"n_blocks": 2, "features": 8},
    "edsr-baseline": {"n_blocks": 2, "features": 8},
    "srdensenet": {"n_blocks": 2, "n_layers": 2, "growth": 4, "features": 8, "bottleneck": 8},
    "rdn": {"n_blocks": 2, "n_layers": 2, "growth": 4, "features": 8},
    "rcan": {"n_groups": 2, "n_blocks": 2, "features": 8, "reduction": 4},
    "san": {"n_groups": 2, "n_blocks": 2, "features": 8, "reduction": 4},
    "rrdbnet": {"n_blocks": 1, "features": 8, "growth": 4},
    "esrgan-d": {"features": 2, "fc_features": 8, "pool_size": 1},
    "swinir": {"embed_dim": 12, "depths": (2,), "num_heads": (2,), "window_size": 4, "upsample_features": 8},
    "oktay-desr": {"features": 8, "lr_layers": 2, "hr_layers": 2},
    "oktay-multi": {"features": 8, "stream_layers": 2, "refine_layers": 2},
    "ttsr": {"features": 8, "n_blocks": 1, "tail_blocks": 1, "texture_features": 4},
}


@pytest.fixture
def tiny() -> dict[str, dict[str, Any]]:
    """Reduced options per architecture name."""
    return TINY


@pytest.fixture(autouse=True, scope="module")
def _single_thread() -> Iterator[None]:
    """One intra-op thread: these tensors are tiny, and idle OpenMP threads spinning on a shared CI
    machine cost far more than they gain. Restored afterwards for the rest of the suite."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
