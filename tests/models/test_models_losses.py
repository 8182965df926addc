"""Pixel losses (L1, MSE, Charbonnier) in 2D and 3D, with masks; GAN losses for SRGAN/ESRGAN critics."""

from __future__ import annotations

import math

import pytest
import torch

from sciSR.errors import SciSRError
from sciSR.losses import CharbonnierLoss, GANLoss, L1Loss, MSELoss


@pytest.mark.parametrize("shape", [(2, 1, 5, 6), (2, 3, 4, 5, 3)])
def test_pixel_losses_values(shape) -> None:
    prediction, target = torch.rand(shape, dtype=torch.float64), torch.rand(shape, dtype=torch.float64)
    diff = prediction - target
    assert torch.isclose(L1Loss()(prediction, target), diff.abs().mean())
    assert torch.isclose(MSELoss()(prediction, target), diff.square().mean())
    assert torch.isclose(CharbonnierLoss(eps=1e-3)(prediction, target), torch.sqrt(diff**2 + 1e-6).mean())
    assert CharbonnierLoss(reduction="none")(prediction, target).shape == shape
    assert torch.isclose(CharbonnierLoss(reduction="sum")(prediction, target), torch.sqrt(diff**2 + 1e-6).sum())


def test_charbonnier_is_a_smooth_l1() -> None:
    x = torch.zeros(1, 1, 4, 4, requires_grad=True)
    loss = CharbonnierLoss(eps=1e-3)(x, torch.zeros(1, 1, 4, 4))
    assert math.isclose(loss.item(), 1e-3, rel_tol=1e-6)  # a perfect prediction costs eps
    loss.backward()
    assert torch.equal(x.grad, torch.zeros_like(x))  # differentiable at zero, unlike L1
    big = CharbonnierLoss()(torch.full((1, 1, 2, 2), 5.0), torch.zeros(1, 1, 2, 2))
    assert math.isclose(big.item(), 5.0, rel_tol=1e-6)  # L1 away from zero


def test_mask_restricts_the_mean_to_valid_voxels() -> None:
    prediction, target = torch.zeros(1, 1, 2, 2, 2), torch.zeros(1, 1, 2, 2, 2)
    prediction[..., 0, 0, 0] = 4.0
    prediction[..., 1, 1, 1] = 1e6  # e.g. a masked NaN replaced by a fill value
    mask = torch.ones_like(prediction)
    mask[..., 1, 1, 1] = 0
    assert L1Loss()(prediction, target, mask).item() == pytest.approx(4.0 / 7)
    assert MSELoss(reduction="sum")(prediction, target, mask).item() == pytest.approx(16.0)


def test_pixel_loss_errors() -> None:
    with pytest.raises(SciSRError, match="differ in shape"):
        L1Loss()(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 3))
    with pytest.raises(SciSRError, match="reduction must be one of"):
        MSELoss(reduction="max")
    with pytest.raises(SciSRError, match="eps must be positive"):
        CharbonnierLoss(eps=0)


def test_standard_gan_loss() -> None:
    loss = GANLoss("standard")
    real, fake = torch.tensor([[10.0]]), torch.tensor([[-10.0]])
    assert loss.discriminator_loss(real, fake).item() < 1e-4  # a perfect critic
    assert loss.generator_loss(None, fake).item() == pytest.approx(10.0, rel=1e-3)


def test_relativistic_gan_loss_compares_against_the_other_mean() -> None:
    loss = GANLoss("relativistic")
    real, fake = torch.tensor([[3.0], [5.0]]), torch.tensor([[-1.0], [1.0]], requires_grad=True)
    # Critic: real should exceed the mean fake, fake should fall below the mean real.
    expected = 0.5 * (torch.nn.functional.softplus(-(real - fake.mean())).mean()
                      + torch.nn.functional.softplus(fake - real.mean()).mean())
    assert torch.isclose(loss.discriminator_loss(real, fake), expected)
    g = loss.generator_loss(real, fake)
    g.backward()
    assert fake.grad is not None and (fake.grad < 0).all()  # raising fake logits lowers the generator loss
    with pytest.raises(SciSRError, match="needs the critic's logits on real images"):
        loss.generator_loss(None, fake)
    with pytest.raises(SciSRError, match="'standard' or 'relativistic'"):
        GANLoss("wgan")
