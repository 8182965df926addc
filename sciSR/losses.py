"""Training losses for 2D and 3D super-resolution.

Pixel losses (:class:`L1Loss`, :class:`MSELoss`, :class:`CharbonnierLoss`) compare ``(B, C, *S)``
tensors element-wise, so the same object serves images and volumes; an optional ``mask`` (1 = valid,
e.g. not a masked FITS NaN) restricts the mean to valid voxels. :class:`GANLoss` provides the SRGAN
(standard) and ESRGAN (relativistic average) adversarial terms on discriminator logits.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sciSR.errors import SciSRError

REDUCTIONS = ("mean", "sum", "none")


class PixelLoss(nn.Module):
    """Base of the element-wise losses: checks shapes, applies the mask, reduces.

    Parameters
    ----------
    reduction : str
        ``"mean"`` (over valid elements), ``"sum"`` or ``"none"`` (per element, masked ones zeroed).
    """

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        if reduction not in REDUCTIONS:
            raise SciSRError(f"reduction must be one of {', '.join(REDUCTIONS)}, got {reduction!r}")
        self.reduction = reduction

    def elementwise(self, diff: torch.Tensor) -> torch.Tensor:
        """The per-element penalty of ``prediction − target``."""
        raise NotImplementedError

    def forward(self, prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Loss between ``prediction`` and ``target``.

        Parameters
        ----------
        prediction, target : torch.Tensor
            Same shape, e.g. ``(B, C, H, W)`` or ``(B, C, D, H, W)``.
        mask : torch.Tensor, optional
            Broadcastable to the inputs; nonzero marks elements that count.

        Returns
        -------
        torch.Tensor
            A scalar (``"mean"``, ``"sum"``) or the element-wise loss (``"none"``).
        """
        if prediction.shape != target.shape:
            raise SciSRError(f"prediction {tuple(prediction.shape)} and target {tuple(target.shape)} differ in shape")
        loss = self.elementwise(prediction - target)
        if mask is not None:
            weight = (mask != 0).to(loss.dtype).expand_as(loss)
            loss = loss * weight
            if self.reduction == "mean":
                return loss.sum() / weight.sum().clamp_min(1.0)
        if self.reduction == "mean":
            return loss.mean()
        return loss.sum() if self.reduction == "sum" else loss


class L1Loss(PixelLoss):
    """Mean absolute error ``|x − y|`` (EDSR, RCAN, RDN, SAN, SwinIR train with it)."""

    def elementwise(self, diff: torch.Tensor) -> torch.Tensor:
        return diff.abs()


class MSELoss(PixelLoss):
    """Mean squared error ``(x − y)²`` (SRCNN, FSRCNN, VDSR, ESPCN, SRResNet)."""

    def elementwise(self, diff: torch.Tensor) -> torch.Tensor:
        return diff.square()


class CharbonnierLoss(PixelLoss):
    """Charbonnier penalty ``sqrt((x − y)² + ε²)``, a differentiable L1 (LapSRN).

    Parameters
    ----------
    eps : float
        ``ε`` (LapSRN: 1e-3), in the units of the (normalised) intensities; the loss of a perfect
        prediction is ``ε``.
    reduction : str
        See :class:`PixelLoss`.
    """

    def __init__(self, eps: float = 1e-3, reduction: str = "mean") -> None:
        super().__init__(reduction)
        if eps <= 0:
            raise SciSRError(f"Charbonnier eps must be positive, got {eps}")
        self.eps = float(eps)

    def elementwise(self, diff: torch.Tensor) -> torch.Tensor:
        return torch.sqrt(diff.square() + self.eps**2)


class GANLoss(nn.Module):
    """Adversarial losses on discriminator logits (``sciSR.models`` ``srgan-d`` / ``esrgan-d`` output).

    Parameters
    ----------
    mode : str
        ``"standard"``: SRGAN's ``−log D(G(x))`` generator loss and binary cross-entropy discriminator
        loss. ``"relativistic"``: ESRGAN's relativistic average GAN, where the critic judges whether real
        data is more realistic than the average fake, ``D_Ra(a, b) = σ(C(a) − E[C(b)])``, and the
        generator gets gradients from both real and fake logits.

    Notes
    -----
    Works on logits with ``binary_cross_entropy_with_logits``, which is the numerically stable form of
    the papers' sigmoid + log.
    """

    def __init__(self, mode: str = "standard") -> None:
        super().__init__()
        if mode not in ("standard", "relativistic"):
            raise SciSRError(f"GAN loss mode must be 'standard' or 'relativistic', got {mode!r}")
        self.mode = mode

    @staticmethod
    def _bce(logits: torch.Tensor, real: bool) -> torch.Tensor:
        target = torch.ones_like(logits) if real else torch.zeros_like(logits)
        return F.binary_cross_entropy_with_logits(logits, target)

    def generator_loss(self, real_logits: torch.Tensor | None, fake_logits: torch.Tensor) -> torch.Tensor:
        """Adversarial term of the generator.

        Parameters
        ----------
        real_logits : torch.Tensor or None
            ``(B, 1)`` critic output on HR images (required for ``"relativistic"``; ignored otherwise).
        fake_logits : torch.Tensor
            ``(B, 1)`` critic output on generated images (keep the graph to the generator).
        """
        if self.mode == "standard":
            return self._bce(fake_logits, True)
        if real_logits is None:
            raise SciSRError("the relativistic generator loss needs the critic's logits on real images")
        real_logits = real_logits.detach()
        return 0.5 * (self._bce(real_logits - fake_logits.mean(), False)
                      + self._bce(fake_logits - real_logits.mean(), True))

    def discriminator_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        """Loss of the critic; pass ``fake_logits`` computed on detached generator output."""
        if self.mode == "standard":
            return 0.5 * (self._bce(real_logits, True) + self._bce(fake_logits, False))
        return 0.5 * (self._bce(real_logits - fake_logits.mean(), True)
                      + self._bce(fake_logits - real_logits.mean(), False))
