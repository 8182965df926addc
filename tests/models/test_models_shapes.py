"""Every architecture runs forward and backward in 2D and 3D at ×2, ×3, ×4 and anisotropic factors."""

from __future__ import annotations

import pytest
import torch

from sciSR.models import MODEL_REGISTRY, create_model

# Multi-stack and reference-guided networks take other inputs: tests/models/test_models_fusion.py.
SR_NETS = sorted(n for n, info in MODEL_REGISTRY.items() if info.kind not in ("discriminator", "fusion", "reference"))
DISCRIMINATORS = sorted(n for n, info in MODEL_REGISTRY.items() if info.kind == "discriminator")
# Odd, unequal sizes exercise SwinIR's window padding and SAN's uneven non-local regions.
CASES = [
    (2, (5, 6), 2), (2, (5, 6), 3), (2, (5, 6), 4), (2, (5, 6), (2, 3)),
    (3, (3, 2, 3), 2), (3, (3, 2, 3), 3), (3, (3, 2, 3), 4), (3, (3, 2, 3), (1, 1, 4)),
]


def _run(model: torch.nn.Module, shape: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.rand(2, model.in_channels, *shape, requires_grad=True)
    y = model(x)
    y.square().mean().backward()
    return x, y


@pytest.mark.parametrize("name", SR_NETS)
@pytest.mark.parametrize(("dims", "shape", "scale"), CASES, ids=[f"{d}d-x{s}" for d, _, s in CASES])
def test_forward_backward_shapes(name: str, dims: int, shape: tuple[int, ...], scale, tiny: dict) -> None:
    if name == "lapsrn" and scale in (3, (2, 3)):
        pytest.skip("LapSRN is progressive: powers of two only (the error is tested in test_models_registry)")
    model = create_model(name, scale=scale, spatial_dims=dims, in_channels=2, **tiny[name])
    x, y = _run(model, shape)
    assert y.shape == (2, 2, *(n * s for n, s in zip(shape, model.scale, strict=True)))
    assert torch.isfinite(y).all() and x.grad is not None and torch.isfinite(x.grad).all()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("name", DISCRIMINATORS)
@pytest.mark.parametrize("dims", [2, 3])
def test_discriminators_give_one_logit_per_image(name: str, dims: int, tiny: dict) -> None:
    # SRGAN's critic halves four times, ESRGAN's five times (4×4 stride-2 kernels need 32 voxels).
    size = 16 if name == "srgan-d" else 32
    model = create_model(name, spatial_dims=dims, in_channels=2, **tiny[name])
    x, y = _run(model, (size, size - 2, size)[:dims] if name == "srgan-d" else (size,) * dims)
    assert y.shape == (2, 1) and torch.isfinite(x.grad).all()


# The large paper configurations (EDSR, RCAN, RDN, SAN, RRDBNet, SwinIR: 11–43M parameters) are only built,
# on the meta device, by test_models_params; these are cheap enough to run as published.
SMALL_PAPER_NETS = [
    "srnet-toy", "srcnn", "fsrcnn", "vdsr", "espcn", "lapsrn", "srresnet", "edsr-baseline", "srdensenet",
]


@pytest.mark.parametrize("name", SMALL_PAPER_NETS)
def test_paper_configuration_runs_in_2d(name: str) -> None:
    scale = 4 if name == "lapsrn" else 2
    model = create_model(name, scale=scale, in_channels=3 if name not in ("vdsr", "lapsrn") else 1)
    _, y = _run(model, (6, 7))
    assert y.shape == (2, model.in_channels, 6 * scale, 7 * scale)


def test_lapsrn_levels_are_the_pyramid(tiny: dict) -> None:
    model = create_model("lapsrn", scale=(2, 8), **tiny["lapsrn"])
    levels = model.forward_levels(torch.rand(1, 1, 3, 2))
    assert [tuple(level.shape[2:]) for level in levels] == [(6, 4), (6, 8), (6, 16)]


def test_eval_mode_is_deterministic(tiny: dict) -> None:
    model = create_model("swinir", scale=2, **tiny["swinir"]).eval()
    x = torch.rand(1, 1, 5, 7)
    with torch.no_grad():
        assert torch.equal(model(x), model(x))
