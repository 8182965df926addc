"""The torch flux projection equals the numpy one and trains: docs/architecture.md §4 projections, issue 8 item 1."""

import numpy as np
import pytest
import torch

from sciSR.errors import SciSRError
from sciSR.flux import enforce_flux
from sciSR.models import create_model
from sciSR.models.flux_projection import FluxProjection, attach
from sciSR.training.config import load_config
from sciSR.training.engine import build_generator, pair_spec


def _real_pair(scale, path):
    import sciSR

    hr = sciSR.read(path).array[:60, :90].astype(np.float64)
    rng = np.random.default_rng(0)
    lr = hr[:: scale[0], :: scale[1]] + rng.normal(0, 5, (60 // scale[0], 90 // scale[1]))
    sr = np.kron(lr, np.ones(scale)) + rng.normal(0, 20, hr.shape)  # any guess, far from the constraint
    return sr, lr


@pytest.mark.parametrize("mode", ["conserve", "mean"])
@pytest.mark.parametrize("scale", [(2, 2), (2, 3)])
def test_torch_layer_matches_numpy(mode, scale, m13_path):
    sr, lr = _real_pair(scale, m13_path)
    mask = np.zeros(lr.shape, bool)
    mask[3, 4] = True
    numpy_out = enforce_flux(sr, lr, scale, mode, mask).astype(np.float64)
    layer = FluxProjection(scale, mode)
    torch_out = layer(torch.from_numpy(sr)[None, None], torch.from_numpy(lr)[None, None])[0, 0].numpy()
    unmasked = np.kron(~mask, np.ones(scale, bool))
    peak = np.abs(lr).max()
    # enforce_flux returns float32: agreement to float32 rounding of values ≤ peak, relative 1e-6.
    assert np.abs(torch_out - numpy_out)[unmasked].max() <= 1e-6 * peak
    blocks = torch_out.reshape(lr.shape[0], scale[0], lr.shape[1], scale[1]).sum(axis=(1, 3))
    target = lr if mode == "conserve" else lr * np.prod(scale)
    assert np.abs(blocks - target).max() <= 1e-9 * peak
    # The projection is idempotent and leaves a consistent image alone.
    again = layer(torch.from_numpy(torch_out)[None, None], torch.from_numpy(lr)[None, None])[0, 0].numpy()
    np.testing.assert_allclose(again, torch_out, rtol=0, atol=1e-9 * peak)


def test_asinh_space_is_exact_in_physical_units(m13_path):
    sr, lr = _real_pair((2, 2), m13_path)
    background, scale = 120.0, 30.0
    y_sr = torch.asinh(torch.from_numpy((sr - background) / scale))[None, None]
    y_lr = torch.asinh(torch.from_numpy((lr - background) / scale))[None, None]
    out = FluxProjection((2, 2), "mean", "asinh")(y_sr, y_lr)[0, 0].numpy()
    physical = np.sinh(out) * scale + background
    means = physical.reshape(30, 2, 45, 2).mean(axis=(1, 3))
    assert np.abs(means - lr).max() <= 1e-9 * np.abs(lr).max()
    with pytest.raises(SciSRError, match="block means"):
        FluxProjection((2, 2), "conserve", "asinh")


def test_hook_keeps_state_dict_and_passes_gradients():
    net = create_model("edsr-baseline", scale=2, spatial_dims=2, n_blocks=1, features=8)
    keys = list(net.state_dict())
    attach(net, "mean")
    assert list(net.state_dict()) == keys  # the model file is unchanged by the layer
    lr = torch.rand(2, 1, 12, 12, requires_grad=True)
    out = net(lr)
    np.testing.assert_allclose(torch.nn.functional.avg_pool2d(out, 2).detach().numpy(), lr.detach().numpy(),
                               atol=1e-6)
    out.square().mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())


def test_config_switch_attaches_projection_and_checks_degradation():
    from pathlib import Path

    recipe = Path(__file__).parents[2] / "configs" / "sky_x2.yaml"
    cfg = load_config(recipe, ["model.options={n_blocks: 1, features: 8}"])
    assert cfg["model"]["flux_projection"] == "conserve"
    net = build_generator(cfg, pair_spec(cfg))
    lr = torch.randn(1, 1, 10, 10)
    out = net(lr)  # asinh units: block means hold after sinh
    np.testing.assert_allclose(torch.sinh(out.detach().double()).reshape(1, 1, 10, 2, 10, 2).mean((3, 5)).numpy(),
                               torch.sinh(lr.double()).numpy(), rtol=1e-5, atol=1e-6)
    wrong = load_config(recipe, ["model.flux_projection=mean", "model.options={n_blocks: 1, features: 8}"])
    with pytest.raises(SciSRError, match="block sums"):
        build_generator(wrong, pair_spec(wrong))
    with pytest.raises(SciSRError, match=r"model\.flux_projection"):
        load_config(recipe, ["model.flux_projection=sum"])
