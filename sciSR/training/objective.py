"""Training-only losses: SSIM, gradient, perceptual/style from a user feature network, and their sum.

Pixel losses (L1, MSE, Charbonnier) and the GAN terms are :mod:`sciSR.losses`; everything here works on
``(B, C, *S)`` tensors in normalised units, 2D or 3D.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch
from monai.losses import SSIMLoss as _MonaiSSIM
from torch import nn

from sciSR.errors import SciSRError
from sciSR.losses import CharbonnierLoss, L1Loss, MSELoss
from sciSR.metrics import SSIM_SIGMA, SSIM_WINDOW


class SSIMLoss(nn.Module):
    """``1 − SSIM`` (Gaussian window 11, σ 1.5: :func:`sciSR.metrics.ssim`'s) over a data range of 1 (normalised units).

    Parameters
    ----------
    spatial_dims : int
        2 or 3; every spatial size must be ≥ 11.
    """

    def __init__(self, spatial_dims: int) -> None:
        super().__init__()
        self.ssim = _MonaiSSIM(spatial_dims=spatial_dims, data_range=1.0, kernel_type="gaussian",
                               win_size=SSIM_WINDOW, kernel_sigma=SSIM_SIGMA)

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if min(target.shape[2:]) < SSIM_WINDOW:
            raise SciSRError(f"the SSIM loss needs HR patches of at least {SSIM_WINDOW} voxels per axis, "
                             f"got {tuple(target.shape[2:])}")
        # MONAI's SSIM takes float32; under AMP the prediction may be half precision.
        return self.ssim(prediction.float(), target.float())


class GradientLoss(nn.Module):
    """Mean L1 distance between finite differences along every spatial axis (edge sharpness)."""

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        axes = range(2, target.ndim)
        return torch.stack([(prediction.diff(dim=a) - target.diff(dim=a)).abs().mean() for a in axes]).mean()


def gram(features: torch.Tensor) -> torch.Tensor:
    """Gram matrix ``F Fᵀ / (C·N)`` of ``(B, C, *S)`` features: ``(B, C, C)``."""
    flat = features.flatten(2)
    return flat @ flat.transpose(1, 2) / (flat.shape[1] * flat.shape[2])


class FeatureLoss(nn.Module):
    """Perceptual (feature L1) and style (Gram L1) losses from a TorchScript network you provide.

    Nothing is downloaded: ``path`` is a ``torch.jit.save`` file (e.g. a VGG you scripted yourself, or a
    network trained on your own modality). It maps ``(B, C, *S)`` to a tensor, or to a list/tuple/dict of
    tensors (one per layer); each layer counts equally. Its weights are frozen.

    Parameters
    ----------
    path : str or os.PathLike
        TorchScript file.
    spatial_dims : int
        Dimensions of the SR images. A 2D network on 3D images sees the planes of the last two axes
        (the first spatial axis is folded into the batch), which contain a through-plane last axis.
    channels : int, optional
        Channels the network expects; single-channel images are repeated to it (e.g. 3 for RGB nets).
    net_dims : int, optional
        Spatial dims of the network (default ``spatial_dims``).
    """

    def __init__(self, path: str | os.PathLike, spatial_dims: int, channels: int | None = None,
                 net_dims: int | None = None) -> None:
        super().__init__()
        try:
            self.net = torch.jit.load(os.fspath(path), map_location="cpu").eval()
        except (RuntimeError, ValueError, OSError) as err:
            raise SciSRError(f"not a TorchScript feature network ({str(err).splitlines()[0]})", path) from None
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.spatial_dims, self.channels = spatial_dims, channels
        self.net_dims = net_dims or spatial_dims

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        if self.spatial_dims == 3 and self.net_dims == 2:
            x = x.movedim(2, 1).flatten(0, 1)  # (B, C, D, H, W) -> (B·D, C, H, W)
        if self.channels is not None and x.shape[1] != self.channels:
            if x.shape[1] != 1:
                raise SciSRError(f"the feature network takes {self.channels} channels; images have {x.shape[1]}")
            x = x.expand(-1, self.channels, *x.shape[2:])
        out = self.net(x.float())
        if isinstance(out, Mapping):
            return list(out.values())
        return list(out) if isinstance(out, list | tuple) else [out]

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(perceptual, style)``: mean over layers of feature L1 and Gram-matrix L1."""
        with torch.no_grad():
            wanted = self.features(target)
        got = self.features(prediction)
        perceptual = torch.stack([(g - w).abs().mean() for g, w in zip(got, wanted, strict=True)]).mean()
        style = torch.stack([(gram(g) - gram(w)).abs().mean() for g, w in zip(got, wanted, strict=True)]).mean()
        return perceptual, style


class TrainingLoss(nn.Module):
    """Weighted sum of the configured terms.

    Parameters
    ----------
    weights : Mapping
        ``l1``, ``mse``, ``charbonnier``, ``ssim``, ``gradient``, ``perceptual``, ``style`` (0 disables),
        plus ``charbonnier_eps``, ``feature_net`` (path) and ``feature_channels``.
    spatial_dims : int
        2 or 3.

    Returns (forward)
    -----------------
    total : torch.Tensor
        Scalar.
    terms : dict of str to torch.Tensor
        Each enabled term, unweighted (for logging).
    """

    def __init__(self, weights: Mapping[str, Any], spatial_dims: int) -> None:
        super().__init__()
        self.weights = {k: float(weights.get(k, 0.0)) for k in
                        ("l1", "mse", "charbonnier", "ssim", "gradient", "perceptual", "style")}
        terms: dict[str, nn.Module] = {"l1": L1Loss(), "mse": MSELoss(),
                                       "charbonnier": CharbonnierLoss(float(weights.get("charbonnier_eps", 1e-3))),
                                       "ssim": SSIMLoss(spatial_dims), "gradient": GradientLoss()}
        self.terms = nn.ModuleDict({k: m for k, m in terms.items() if self.weights[k] > 0})
        wants_features = self.weights["perceptual"] > 0 or self.weights["style"] > 0
        self.feature_loss = FeatureLoss(weights["feature_net"], spatial_dims, weights.get("feature_channels")) \
            if wants_features else None

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        values = {name: term(prediction, target) for name, term in self.terms.items()}
        if self.feature_loss is not None:
            values["perceptual"], values["style"] = self.feature_loss(prediction, target)
        total = sum(self.weights[k] * v for k, v in values.items() if self.weights[k] > 0)
        return total, values
