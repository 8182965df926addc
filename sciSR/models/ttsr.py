"""TTSR-style reference-guided super-resolution: texture from a high-resolution reference, found by attention.

A learnable texture extractor describes the upsampled input (LR↑), the reference blurred to the input's
resolution (Ref↓↑, so both are compared at the same blur) and the reference itself. Relevance between
LR↑ and Ref↓↑ is the normalised inner product of 3×3(×3) feature patches on the input grid; for every
input voxel the best match (hard attention) names the reference block whose texture is transferred, and
its relevance (soft attention) says how much to trust it. The main branch super-resolves the input and
fuses the transferred texture, weighted by the soft map, at the output scale.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from sciSR.errors import SciSRError
from sciSR.models.base import ZooModel
from sciSR.models.blocks import ResidualBlock, Upsampler, conv_nd, interpolate_fov, pixel_shuffle_nd
from sciSR.models.registry import register_model

TTSR_PAPER = ("Yang, Yang, Fu, Lu, Guo. Learning Texture Transformer Network for Image Super-Resolution. "
              "CVPR 2020.")


def pixel_unshuffle_nd(x: torch.Tensor, scale: Sequence[int]) -> torch.Tensor:
    """Inverse of :func:`~sciSR.models.blocks.pixel_shuffle_nd`: ``(B, C, *S·s) → (B, C·∏s, *S)``.

    The output voxel ``n`` holds, as channels ``(C, s_0, s_1[, s_2])`` in C order, the block of input
    voxels ``s·n … s·n + s − 1`` — the field of view of low-resolution voxel ``n``.
    """
    scale = tuple(int(s) for s in scale)
    dims = len(scale)
    batch, channels = x.shape[0], x.shape[1]
    spatial = [n // s for n, s in zip(x.shape[2:], scale, strict=True)]
    split = [size for pair in zip(spatial, scale, strict=True) for size in pair]
    x = x.reshape(batch, channels, *split)
    order = [0, 1, *(3 + 2 * a for a in range(dims)), *(2 + 2 * a for a in range(dims))]
    return x.permute(order).reshape(batch, channels * math.prod(scale), *spatial)


def patch_embedding(features: torch.Tensor) -> torch.Tensor:
    """Unit-norm 3×3 (2D) or 3×3×3 (3D) patches of a feature map, zero-padded at the borders.

    Parameters
    ----------
    features : torch.Tensor
        ``(B, F, *G)``.

    Returns
    -------
    torch.Tensor
        ``(B, F·3^d, *G)``: the patch around every voxel as one vector of L2 norm 1 (0 where the patch is
        all zero), so inner products are the relevance ``r ∈ [−1, 1]`` of TTSR.
    """
    dims = features.ndim - 2
    padded = F.pad(features, (1, 1) * dims)
    sizes = features.shape[2:]
    shifts = []
    for offset in torch.cartesian_prod(*[torch.arange(3)] * dims).reshape(-1, dims).tolist():
        view = padded
        for axis, (o, n) in enumerate(zip(offset, sizes, strict=True)):
            view = view.narrow(2 + axis, o, n)
        shifts.append(view)
    return F.normalize(torch.cat(shifts, dim=1), dim=1)


def _queries_per_chunk(batch: int, rows: int, row: int, radius: int | None, budget: int) -> int:
    """Queries per chunk so that ``batch · queries · keys ≤ budget`` (at least one query).

    Queries are taken in flat (C) order; ``row`` is the number of voxels in one slice along the first
    axis. Globally every chunk sees all ``rows · row`` keys. With a search radius, a chunk of ``m``
    whole slices sees ``m + 2·radius`` slices of keys, and a chunk shorter than a slice may straddle two.
    """
    if radius is None:
        return max(1, budget // (batch * rows * row))
    slices = 0
    while slices < rows and batch * (slices + 1) * row * min(rows, slices + 1 + 2 * radius) * row <= budget:
        slices += 1
    if slices:
        return slices * row
    return max(1, budget // (batch * min(rows, 2 + 2 * radius) * row))


def relevance_attention(query: torch.Tensor, key: torch.Tensor, *, search_radius: int | None = None,
                        chunk_elements: int = 2**22) -> tuple[torch.Tensor, torch.Tensor]:
    """Hard and soft attention: the best-matching key of every query, and its relevance.

    Parameters
    ----------
    query, key : torch.Tensor
        ``(B, D, *G)`` unit-norm embeddings (:func:`patch_embedding`) on the same grid ``G``.
    search_radius : int, optional
        Only keys within this many voxels of the query's own position on every axis compete (a local
        window, for references that are already roughly aligned); None searches the whole grid.
    chunk_elements : int
        Upper bound on the relevance values held at once (``batch · queries · keys`` per chunk); queries
        are processed in chunks so that the full ``|G| × |G|`` matrix never exists. The result does not
        depend on it.

    Returns
    -------
    index : torch.Tensor
        ``(B, *G)`` int64: flat (C-order) position on ``G`` of the best key of every query (hard
        attention; the first one on ties).
    score : torch.Tensor
        ``(B, 1, *G)``: its relevance, the soft-attention confidence map (differentiable).
    """
    if query.shape != key.shape:
        raise SciSRError(f"relevance_attention: query {tuple(query.shape)} and key {tuple(key.shape)} differ")
    batch, depth, grid = query.shape[0], query.shape[1], tuple(query.shape[2:])
    rows, row = grid[0], math.prod(grid[1:])
    total = rows * row
    q = query.reshape(batch, depth, total).transpose(1, 2)
    k = key.reshape(batch, depth, total)
    step = _queries_per_chunk(batch, rows, row, search_radius, int(chunk_elements))
    if search_radius is not None:
        axes = [torch.arange(n, device=query.device, dtype=torch.int32) for n in grid]
        coords = torch.stack(torch.meshgrid(*axes, indexing="ij")).reshape(len(grid), total)
    indices, scores = [], []
    for start in range(0, total, step):
        stop = min(total, start + step)
        if search_radius is None:
            first, last = 0, total
        else:
            first = max(0, start // row - search_radius) * row
            last = min(rows, (stop - 1) // row + search_radius + 1) * row
        relevance = torch.bmm(q[:, start:stop], k[:, :, first:last])
        if search_radius is not None:
            # One axis at a time: the (queries, keys) int32 temporaries stay the size of the chunk.
            outside = torch.zeros_like(relevance[0], dtype=torch.bool)
            for axis in range(len(grid)):
                outside |= (coords[axis, start:stop, None] - coords[axis, None, first:last]).abs() > search_radius
            relevance = relevance.masked_fill(outside, float("-inf"))
        score, index = relevance.max(dim=2)
        indices.append(index + first)
        scores.append(score)
    index = torch.cat(indices, dim=1).reshape(batch, *grid)
    return index, torch.cat(scores, dim=1).reshape(batch, 1, *grid)


class TextureExtractor(nn.Module):
    """Learnable texture extractor (TTSR's LTE without the pretrained VGG): two levels of features.

    ``texture`` is two 3×3(×3) conv + ReLU layers on the output grid (what is transferred);
    ``descriptor`` block-averages them onto the input grid (factor ``s``) and applies one more conv
    (what relevance is computed on, like TTSR's coarsest VGG level). That conv has no ReLU: signed
    descriptors spread over the sphere after normalisation, where non-negative ones all point into one
    orthant and every patch looks alike (relevance ≈ 1 everywhere at initialisation).
    """

    def __init__(self, spatial_dims: int, in_channels: int, features: int, scale: Sequence[int]) -> None:
        super().__init__()
        self.scale = tuple(int(s) for s in scale)
        self.texture_layers = nn.Sequential(conv_nd(spatial_dims, in_channels, features), nn.ReLU(),
                                            conv_nd(spatial_dims, features, features), nn.ReLU())
        self.descriptor_layers = conv_nd(spatial_dims, features, features)

    def texture(self, image: torch.Tensor) -> torch.Tensor:
        """``(B, C, *S·s) → (B, features, *S·s)``."""
        return self.texture_layers(image)

    def descriptor(self, image: torch.Tensor) -> torch.Tensor:
        """``(B, C, *S·s) → (B, features, *S)``."""
        return self.descriptor_layers(block_mean(self.texture_layers(image), self.scale))


def block_mean(x: torch.Tensor, scale: Sequence[int]) -> torch.Tensor:
    """Mean over each ``s``-block: ``(B, C, *S·s) → (B, C, *S)``, voxel ``n`` centred on ``s·n + (s−1)/2``."""
    pool = F.avg_pool2d if x.ndim == 4 else F.avg_pool3d
    return pool(x, kernel_size=tuple(scale), stride=tuple(scale))


@register_model("ttsr", paper=TTSR_PAPER, year=2020)
class TTSR(ZooModel):
    """Reference-guided SR: texture transfer by hard/soft attention, fused at the output scale.

    Parameters
    ----------
    spatial_dims, in_channels, out_channels, scale
        See :class:`~sciSR.models.base.ZooModel`; ``out_channels`` must equal ``in_channels`` (the output
        is added to the interpolated input).
    features : int
        Feature channels of the main branch (64, as TTSR).
    n_blocks : int
        Residual blocks of the main branch on the input grid (16, TTSR's shallow feature extractor).
    tail_blocks : int
        Residual blocks after the texture fusion on the output grid (8).
    texture_features : int
        Channels of the texture extractor, hence of the transferred texture (64, VGG's first level).
    search_radius : int, optional
        Local search window for the attention, in input voxels per axis; None searches the whole image.
    chunk_elements : int
        Memory bound of the attention: relevance values computed at once (see
        :func:`relevance_attention`); 2**22 float32 values is 16 MiB.

    Notes
    -----
    ``spec.inputs`` is ``"reference"``: ``forward`` takes ``ref``, the reference resampled onto the
    output grid. ``spec.global_pooling`` is True without a search radius (every output voxel can draw
    on any reference voxel), so tiled inference differs from whole-image inference where the best match
    lies outside a tile.

    Differences from the paper: the texture extractor is a small conv net trained from scratch (no
    ImageNet VGG for scientific images); relevance is computed once, on the input grid, and the texture
    of the matched ``s``-block is transferred at the output scale only (TTSR transfers at three scales
    with cross-scale integration); the output is added to the interpolated input.

    Shapes
    ------
    ``x: (B, C, *S)``, ``ref: (B, C, *S·s)`` → ``(B, C, *S·s)``.
    """

    kind: ClassVar[str] = "reference"

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int, scale: Sequence[int], *,
                 features: int = 64, n_blocks: int = 16, tail_blocks: int = 8, texture_features: int = 64,
                 search_radius: int | None = None, chunk_elements: int = 2**22) -> None:
        super().__init__(spatial_dims, in_channels, out_channels, scale, options={"search_radius": search_radius})
        if out_channels != in_channels:
            raise SciSRError(f"ttsr adds its output to the interpolated input, so out_channels ({out_channels}) "
                             f"must equal in_channels ({in_channels})")
        for name, value, low in (("features", features, 1), ("n_blocks", n_blocks, 0), ("tail_blocks", tail_blocks, 0),
                                 ("texture_features", texture_features, 1), ("chunk_elements", chunk_elements, 1),
                                 ("search_radius", 0 if search_radius is None else search_radius, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise SciSRError(f"ttsr {name} must be an integer ≥ {low}, got {value!r}")
        self.search_radius = search_radius
        self.chunk_elements = chunk_elements
        self.extractor = TextureExtractor(spatial_dims, in_channels, texture_features, self.scale)
        self.head = conv_nd(spatial_dims, in_channels, features)
        self.body = nn.Sequential(*(ResidualBlock(spatial_dims, features) for _ in range(n_blocks)),
                                  conv_nd(spatial_dims, features, features))
        self.upsample = Upsampler(spatial_dims, features, self.scale)
        self.fuse = conv_nd(spatial_dims, features + texture_features, features)
        self.tail = nn.Sequential(*(ResidualBlock(spatial_dims, features) for _ in range(tail_blocks)),
                                  conv_nd(spatial_dims, features, out_channels))

    @classmethod
    def spec_abilities(cls, options: Mapping[str, Any]) -> dict[str, Any]:
        """A reference input; global attention (``global_pooling``) unless ``search_radius`` bounds it."""
        return {"inputs": "reference", "global_pooling": options["search_radius"] is None}

    def _check_reference(self, x: torch.Tensor, ref: torch.Tensor | None) -> None:
        expected = (x.shape[0], x.shape[1], *(n * s for n, s in zip(x.shape[2:], self.scale, strict=True)))
        if ref is None:
            raise SciSRError(f"ttsr needs a reference: ref of shape {tuple(expected)} (the reference resampled "
                             "onto the output grid)")
        if tuple(ref.shape) != tuple(expected):
            raise SciSRError(f"ttsr: ref must be {tuple(expected)} (input {tuple(x.shape)} × scale {self.scale}, "
                             f"resampled onto the output grid), got {tuple(ref.shape)}")

    def attention(self, x: torch.Tensor, ref: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Hard and soft attention between the upsampled input and the down-up-sampled reference.

        Parameters
        ----------
        x : torch.Tensor
            ``(B, C, *S)`` input.
        ref : torch.Tensor
            ``(B, C, *S·s)`` reference on the output grid.

        Returns
        -------
        index : torch.Tensor
            ``(B, *S)`` int64: flat position on the input grid of the reference block each input voxel
            draws its texture from.
        score : torch.Tensor
            ``(B, 1, *S)``: the relevance of that match, in [−1, 1].
        """
        self._check_reference(x, ref)
        query = patch_embedding(self.extractor.descriptor(interpolate_fov(x, self.scale)))
        key = patch_embedding(self.extractor.descriptor(interpolate_fov(block_mean(ref, self.scale), self.scale)))
        return relevance_attention(query, key, search_radius=self.search_radius, chunk_elements=self.chunk_elements)

    def transfer(self, ref: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """Texture of the matched reference blocks: ``(B, texture_features, *S·s)`` on the output grid."""
        blocks = pixel_unshuffle_nd(self.extractor.texture(ref), self.scale)
        batch, channels, grid = blocks.shape[0], blocks.shape[1], blocks.shape[2:]
        flat = index.reshape(batch, 1, -1).expand(batch, channels, -1)
        gathered = blocks.reshape(batch, channels, -1).gather(2, flat).reshape(batch, channels, *grid)
        return pixel_shuffle_nd(gathered, self.scale)

    def forward(self, x: torch.Tensor, ref: torch.Tensor | None = None) -> torch.Tensor:
        self._check_reference(x, ref)
        index, score = self.attention(x, ref)
        texture = self.transfer(ref, index)
        confidence = F.interpolate(score, scale_factor=tuple(float(s) for s in self.scale), mode="nearest")
        head = self.head(x)
        feats = self.upsample(head + self.body(head))
        feats = feats + self.fuse(torch.cat([feats, texture], dim=1)) * confidence
        return interpolate_fov(x, self.scale) + self.tail(feats)
