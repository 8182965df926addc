"""Training losses: SSIM, gradient, perceptual/style from a user TorchScript network."""

import pytest
import torch
from torch import nn

from sciSR.errors import SciSRError
from sciSR.training.objective import FeatureLoss, GradientLoss, SSIMLoss, TrainingLoss


def test_ssim_and_gradient_losses_vanish_on_identical_images():
    x = torch.rand(2, 1, 16, 16, 16)
    assert SSIMLoss(3)(x, x).item() == pytest.approx(0.0, abs=1e-5)
    assert SSIMLoss(3)(x, torch.rand_like(x)).item() > 0.5
    assert GradientLoss()(x, x).item() == 0.0
    assert GradientLoss()(x + 3.0, x).item() == pytest.approx(0.0, abs=1e-6)  # an offset has no edges
    with pytest.raises(SciSRError, match="at least 11"):
        SSIMLoss(2)(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 8))


class Features(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, padding=1)
        self.b = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        first = torch.relu(self.a(x))
        return [first, self.b(first)]


def test_feature_loss_from_a_torchscript_file(tmp_path):
    path = tmp_path / "features.pt"
    torch.jit.script(Features()).save(str(path))
    loss = FeatureLoss(path, spatial_dims=3, channels=3, net_dims=2)
    x = torch.rand(2, 1, 4, 16, 16, requires_grad=True)
    perceptual, style = loss(x, x.detach())
    assert perceptual.item() == pytest.approx(0.0, abs=1e-7) and style.item() == pytest.approx(0.0, abs=1e-7)
    perceptual, style = loss(x, torch.rand(2, 1, 4, 16, 16))
    (perceptual + style).backward()
    assert x.grad is not None and all(not p.requires_grad for p in loss.net.parameters())
    with pytest.raises(SciSRError, match="not a TorchScript feature network"):
        FeatureLoss(tmp_path / "missing.pt", 2)


def test_training_loss_sums_enabled_terms():
    loss = TrainingLoss({"l1": 1.0, "mse": 0.5, "gradient": 0.1}, spatial_dims=2)
    a, b = torch.zeros(1, 1, 8, 8), torch.ones(1, 1, 8, 8)
    total, terms = loss(a, b)
    assert set(terms) == {"l1", "mse", "gradient"} and total.item() == pytest.approx(1.5)
