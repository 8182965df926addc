"""SwinIR (classical super-resolution): residual Swin Transformer blocks with (shifted) window attention.

In 3D the windows are cubes (``window_size³`` tokens) and the relative position bias table covers
``(2·window_size − 1)³`` offsets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from sciSR.errors import SciSRError
from sciSR.models.base import ZooModel
from sciSR.models.blocks import Upsampler, conv_nd, symmetric_pad_to_multiple
from sciSR.models.registry import register_model


def to_tokens(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, *S) → (B, *S, C)`` (explicit positive permutation: ONNX export rejects ``movedim(1, -1)``)."""
    return x.permute(0, *range(2, x.ndim), 1)


def to_channels(x: torch.Tensor) -> torch.Tensor:
    """``(B, *S, C) → (B, C, *S)``."""
    return x.permute(0, x.ndim - 1, *range(1, x.ndim - 1))


def window_partition(x: torch.Tensor, window: int) -> torch.Tensor:
    """``(B, *S, C)`` with every ``S`` a multiple of ``window`` → ``(B·nW, window^d, C)`` windows."""
    dims = x.ndim - 2
    shape = [x.shape[0]]
    for n in x.shape[1:-1]:
        shape += [n // window, window]
    x = x.reshape(*shape, x.shape[-1])
    order = [0, *(1 + 2 * a for a in range(dims)), *(2 + 2 * a for a in range(dims)), 2 * dims + 1]
    return x.permute(order).reshape(-1, window**dims, x.shape[-1])


def window_reverse(windows: torch.Tensor, window: int, like: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`window_partition`: ``(B·nW, window^d, C)`` → the shape of ``like``, ``(B, *S, C)``."""
    dims = like.ndim - 2
    counts = [n // window for n in like.shape[1:-1]]
    x = windows.reshape(like.shape[0], *counts, *([window] * dims), like.shape[-1])
    order = [0]
    for a in range(dims):
        order += [1 + a, 1 + dims + a]
    return x.permute(*order, 2 * dims + 1).reshape(like.shape)


def relative_position_index(window: int, spatial_dims: int) -> torch.Tensor:
    """``(N, N)`` index into the ``(2w−1)^d`` bias table for every pair of the ``N = w^d`` window tokens."""
    grids = torch.meshgrid(*([torch.arange(window)] * spatial_dims), indexing="ij")
    coords = torch.stack(grids).flatten(1)  # (d, N)
    relative = coords[:, :, None] - coords[:, None, :] + (window - 1)
    index = torch.zeros_like(relative[0])
    for axis in range(spatial_dims):
        index = index * (2 * window - 1) + relative[axis]
    return index


def shifted_window_mask(x: torch.Tensor, window: int, shift: int) -> torch.Tensor:
    """Attention mask of shifted windows for tokens ``x`` of shape ``(B, *S, C)``.

    After the cyclic shift the last window of each axis holds voxels from opposite image borders;
    tokens of different border regions must not attend to each other.

    Returns
    -------
    torch.Tensor
        ``(nW, N, N)`` float: 0 within a region, −100 across regions. Built from tensor operations on the
        current size, so traced graphs stay valid for other sizes.
    """
    region = None
    for n in x.shape[1:-1]:
        index = torch.arange(n, device=x.device)
        axis_region = (index >= n - window).long() + (index >= n - shift).long()
        region = axis_region if region is None else region[..., None] * 3 + axis_region
    windows = window_partition(region[None, ..., None], window)[..., 0]  # (nW, N)
    different = windows[:, :, None] != windows[:, None, :]
    return different.to(x.dtype) * -100.0


class WindowAttention(nn.Module):
    """Multi-head self-attention inside windows with a learned relative position bias.

    Shapes
    ------
    ``(B·nW, N, C)`` (+ mask ``(nW, N, N)``) → ``(B·nW, N, C)``.
    """

    def __init__(self, spatial_dims: int, dim: int, window: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.tokens = window**spatial_dims
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** spatial_dims, heads))
        nn.init.trunc_normal_(self.bias_table, std=0.02)
        # Derived from the window size alone: not saved in model files.
        self.register_buffer("bias_index", relative_position_index(window, spatial_dims).flatten(), persistent=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        batch, n, dim = x.shape
        qkv = self.qkv(x).reshape(batch, n, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q * (dim // self.heads) ** -0.5) @ k.transpose(-2, -1)
        bias = self.bias_table[self.bias_index].reshape(self.tokens, self.tokens, self.heads).permute(2, 0, 1)
        attn = attn + bias[None]
        if mask is not None:
            attn = attn.reshape(-1, mask.shape[0], self.heads, n, n) + mask[None, :, None]
            attn = attn.reshape(-1, self.heads, n, n)
        out = (attn.softmax(dim=-1) @ v).transpose(1, 2).reshape(batch, n, dim)
        return self.proj(out)


class DropPath(nn.Module):
    """Stochastic depth: drop a sample's residual branch with probability ``p`` while training."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(1.0 - self.p)
        return x * keep / (1.0 - self.p)


class SwinLayer(nn.Module):
    """Swin Transformer layer: LN → (shifted) window attention → + skip; LN → MLP(GELU) → + skip.

    Shapes
    ------
    ``(B, *S, C) → (B, *S, C)``, ``S`` multiples of the window.
    """

    def __init__(self, spatial_dims: int, dim: int, heads: int, window: int, shift: int, mlp_ratio: float,
                 drop_path: float) -> None:
        super().__init__()
        self.window, self.shift = window, shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(spatial_dims, dim, window, heads)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        axes = tuple(range(1, x.ndim - 1))
        h = self.norm1(x)
        if self.shift:
            h = torch.roll(h, shifts=(-self.shift,) * len(axes), dims=axes)
        h = window_reverse(self.attn(window_partition(h, self.window), mask if self.shift else None), self.window, h)
        if self.shift:
            h = torch.roll(h, shifts=(self.shift,) * len(axes), dims=axes)
        x = x + self.drop_path(h)
        return x + self.drop_path(self.mlp(self.norm2(x)))


class ResidualSwinBlock(nn.Module):
    """RSTB: Swin layers (shift 0 and window/2 alternating), a 3×3 convolution, and a skip.

    Shapes
    ------
    ``(B, *S, C) → (B, *S, C)``.
    """

    def __init__(self, spatial_dims: int, dim: int, depth: int, heads: int, window: int, mlp_ratio: float,
                 drop_paths: Sequence[float]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            SwinLayer(spatial_dims, dim, heads, window, 0 if i % 2 == 0 else window // 2, mlp_ratio, drop_paths[i])
            for i in range(depth)
        )
        self.conv = conv_nd(spatial_dims, dim, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        h = x
        for layer in self.layers:
            h = layer(h, mask)
        return x + to_tokens(self.conv(to_channels(h)))


@register_model("swinir", paper="Liang, Cao, Sun, Zhang, Van Gool, Timofte. SwinIR: Image Restoration Using Swin "
                "Transformer. ICCV Workshops 2021.", year=2021)
class SwinIR(ZooModel):
    """Classical-SR SwinIR: ``conv`` → LN → RSTBs → LN → conv, + skip → conv-LeakyReLU → sub-pixel stages →
    ``conv``.

    Parameters
    ----------
    spatial_dims, in_channels, out_channels, scale
        See :class:`~sciSR.models.base.ZooModel`.
    embed_dim : int
        Token channels (180).
    depths : sequence of int
        Swin layers per RSTB (six RSTBs of 6).
    num_heads : sequence of int
        Attention heads per RSTB (6 each).
    window_size : int
        Window edge (8; 3D windows are cubes). Inputs are padded to a multiple of it inside
        :meth:`forward` by mirroring and the output is cropped back, so any size works
        (``spec.window_multiple``).
    mlp_ratio : float
        MLP hidden width / ``embed_dim`` (2).
    drop_path : float
        Stochastic-depth rate, rising linearly to this over all layers (0.1; training only).
    upsample_features : int
        Channels of the sub-pixel tail (64).

    Notes
    -----
    The paper's RGB mean shift is left out (no parameters; sciSR normalises intensities itself).

    Shapes
    ------
    ``(B, in_channels, *S) → (B, out_channels, *S·s)``.
    """

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int, scale: Sequence[int], *,
                 embed_dim: int = 180, depths: Sequence[int] = (6, 6, 6, 6, 6, 6),
                 num_heads: Sequence[int] = (6, 6, 6, 6, 6, 6), window_size: int = 8, mlp_ratio: float = 2.0,
                 drop_path: float = 0.1, upsample_features: int = 64) -> None:
        super().__init__(spatial_dims, in_channels, out_channels, scale, options={"window_size": window_size})
        depths, num_heads = tuple(depths), tuple(num_heads)
        if len(depths) != len(num_heads):
            raise SciSRError(f"swinir depths {depths} and num_heads {num_heads} must have the same length")
        if any(embed_dim % h for h in num_heads):
            raise SciSRError(f"swinir embed_dim {embed_dim} must be divisible by every num_heads entry {num_heads}")
        self.window_size = window_size
        self.shift = window_size // 2
        total = sum(depths)
        rates = [drop_path * i / max(total - 1, 1) for i in range(total)]
        starts = [sum(depths[:i]) for i in range(len(depths))]
        self.conv_first = conv_nd(spatial_dims, in_channels, embed_dim)
        self.embed_norm = nn.LayerNorm(embed_dim)
        self.blocks = nn.ModuleList(
            ResidualSwinBlock(spatial_dims, embed_dim, d, h, window_size, mlp_ratio, rates[s:s + d])
            for d, h, s in zip(depths, num_heads, starts, strict=True)
        )
        self.norm = nn.LayerNorm(embed_dim)
        self.conv_after_body = conv_nd(spatial_dims, embed_dim, embed_dim)
        self.conv_before_upsample = nn.Sequential(conv_nd(spatial_dims, embed_dim, upsample_features),
                                                  nn.LeakyReLU(0.01))
        self.upsample = Upsampler(spatial_dims, upsample_features, self.scale)
        self.conv_last = conv_nd(spatial_dims, upsample_features, out_channels)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)

    @classmethod
    def spec_abilities(cls, options: Mapping[str, Any]) -> dict[str, Any]:
        """Inputs are padded to whole windows: ``window_multiple=window_size``."""
        window_size = options["window_size"]
        if isinstance(window_size, bool) or not isinstance(window_size, int) or window_size < 1:
            raise SciSRError(f"swinir window_size must be a positive integer, got {window_size!r}")
        return {"window_multiple": window_size}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sizes = x.shape[2:]
        x = symmetric_pad_to_multiple(x, self.window_size)
        shallow = self.conv_first(x)
        tokens = self.embed_norm(to_tokens(shallow))
        mask = shifted_window_mask(tokens, self.window_size, self.shift) if self.shift else None
        for block in self.blocks:
            tokens = block(tokens, mask)
        deep = self.conv_after_body(to_channels(self.norm(tokens)))
        out = self.conv_last(self.upsample(self.conv_before_upsample(shallow + deep)))
        for dim, (n, s) in enumerate(zip(sizes, self.scale, strict=True), start=2):
            out = out.narrow(dim, 0, n * s)
        return out

