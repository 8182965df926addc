"""Fusion and reference-guided networks: oktay-desr, oktay-multi (N stacks) and ttsr (texture transfer)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sciSR.errors import SciSRError
from sciSR.geometry import source_coordinates
from sciSR.hub import load_model, save_model
from sciSR.models import create_model, get_model_info
from sciSR.models.blocks import interpolate_fov, pixel_shuffle_nd
from sciSR.models.oktay import fov_deconv_kernel
from sciSR.models.ttsr import block_mean, patch_embedding, pixel_unshuffle_nd, relevance_attention

TINY = {
    "oktay-desr": {"features": 6, "lr_layers": 2, "hr_layers": 2},
    "oktay-multi": {"features": 6, "stream_layers": 2, "refine_layers": 2},
    "ttsr": {"features": 6, "n_blocks": 1, "tail_blocks": 1, "texture_features": 4},
}
CASES = [(2, (5, 6), 2), (2, (5, 6), (2, 3)), (3, (3, 2, 3), 2), (3, (3, 2, 3), (1, 1, 4))]
CASE_IDS = [f"{d}d-x{s}" for d, _, s in CASES]


def _check_every_parameter_learns(model: torch.nn.Module) -> None:
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, f"no gradient reaches {name}"


def _hr(shape: tuple[int, ...], scale: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(n * s for n, s in zip(shape, scale, strict=True))


def test_registry_entries() -> None:
    for name, kind in (("oktay-desr", "post"), ("oktay-multi", "fusion"), ("ttsr", "reference")):
        info = get_model_info(name)
        assert info.kind == kind and info.paper.endswith(".")
    assert get_model_info("oktay-desr").year == get_model_info("oktay-multi").year == 2016
    assert get_model_info("ttsr").year == 2020
    assert "MICCAI 2016" in get_model_info("oktay-multi").paper and "CVPR 2020" in get_model_info("ttsr").paper


@pytest.mark.parametrize(("dims", "shape", "scale"), CASES, ids=CASE_IDS)
def test_oktay_desr_shapes_and_gradients(dims: int, shape: tuple[int, ...], scale) -> None:
    torch.manual_seed(0)
    model = create_model("oktay-desr", scale=scale, spatial_dims=dims, in_channels=2, **TINY["oktay-desr"])
    x = torch.rand(2, 2, *shape, requires_grad=True)
    y = model(x)
    assert y.shape == (2, 2, *_hr(shape, model.scale))
    y.square().mean().backward()
    _check_every_parameter_learns(model)


@pytest.mark.parametrize("scale", [(2, 3), (1, 1, 4), (3, 2, 1)], ids=str)
def test_oktay_desr_is_on_the_fov_grid(scale: tuple[int, ...]) -> None:
    # Identity convolutions (centre tap 1) around the bilinear-initialised transposed convolution: the
    # network then adds the deconvolution's linear interpolation to the residual's, so a positive ramp
    # must come out as twice the ramp evaluated at the new centres (i' + 0.5)/s − 0.5, inside the input.
    dims = len(scale)
    model = create_model("oktay-desr", scale=scale, spatial_dims=dims, **TINY["oktay-desr"]).double()
    assert model.upsample.kernel_size == tuple(fov_deconv_kernel(s) for s in scale)
    with torch.no_grad():
        for layer in [*model.features, *model.refine]:
            if isinstance(layer, torch.nn.modules.conv._ConvNd):
                layer.weight.zero_()
                layer.bias.zero_()
                for c in range(min(layer.weight.shape[:2])):
                    layer.weight[(c, c, *([1] * dims))] = 1.0
    n = (5, 4, 6)[:dims]
    coefficients = (1.0, 2.0, 0.5)[:dims]
    grid = np.meshgrid(*(np.arange(k) for k in n), indexing="ij")
    ramp = 3.0 + sum(c * g for c, g in zip(coefficients, grid, strict=True))
    src = [source_coordinates(k * s, s) for k, s in zip(n, scale, strict=True)]
    new = np.meshgrid(*src, indexing="ij")
    expected = 3.0 + sum(c * g for c, g in zip(coefficients, new, strict=True))
    inside = np.ix_(*((c >= 0) & (c <= k - 1) for c, k in zip(src, n, strict=True)))
    x = torch.tensor(ramp)[None, None]
    with torch.no_grad():
        residual = interpolate_fov(x, scale, linear=True)[0, 0].numpy()
        out = model(x)[0, 0].numpy()
    np.testing.assert_allclose(residual[inside], expected[inside], atol=1e-12)
    np.testing.assert_allclose(out[inside], 2 * expected[inside], atol=1e-10)
    assert np.abs(out - 2 * expected).max() > 1e-3  # the borders differ: the check above is not vacuous


@pytest.mark.parametrize(("dims", "shape", "scale"), [(2, (7, 6), (1, 4)), (3, (4, 3, 8), (1, 1, 4))],
                         ids=["2d", "3d"])
def test_oktay_multi_takes_any_number_of_stacks(dims: int, shape: tuple[int, ...], scale) -> None:
    torch.manual_seed(1)
    model = create_model("oktay-multi", scale=scale, spatial_dims=dims, in_channels=2, **TINY["oktay-multi"])
    assert model.spec.inputs == "stacks" and model.spec.input_on_output_grid and model.scale == scale
    for n_stacks in (1, 2, 3):
        model.zero_grad()
        x = torch.rand(2, 2 * n_stacks, *shape, requires_grad=True)
        y = model(x)
        assert y.shape == (2, 2, *shape)
        y.square().mean().backward()
        assert torch.isfinite(x.grad).all()
        _check_every_parameter_learns(model)


def test_oktay_multi_is_invariant_to_the_order_of_the_stacks() -> None:
    torch.manual_seed(2)
    model = create_model("oktay-multi", scale=(1, 1, 3), spatial_dims=3, in_channels=2, **TINY["oktay-multi"])
    stacks = [torch.rand(1, 2, 4, 5, 6) for _ in range(3)]
    with torch.no_grad():
        reference = model(torch.cat(stacks, dim=1))
        for order in ((2, 0, 1), (1, 0, 2), (2, 1, 0)):
            permuted = model(torch.cat([stacks[i] for i in order], dim=1))
            torch.testing.assert_close(permuted, reference, rtol=0, atol=1e-6)
        # Not invariant to the content: swapping channels within a stack changes the result.
        assert not torch.allclose(model(torch.cat([s.flip(1) for s in stacks], dim=1)), reference, atol=1e-4)
        # Identical stacks: the mean residual is that stack, and one copy gives the same as three.
        torch.testing.assert_close(model(torch.cat([stacks[0]] * 3, dim=1)), model(stacks[0]), rtol=0, atol=1e-6)


@pytest.mark.parametrize(("dims", "shape", "scale"), CASES, ids=CASE_IDS)
def test_ttsr_shapes_and_gradients(dims: int, shape: tuple[int, ...], scale) -> None:
    torch.manual_seed(3)
    model = create_model("ttsr", scale=scale, spatial_dims=dims, in_channels=2, **TINY["ttsr"])
    assert model.spec.inputs == "reference" and model.spec.global_pooling
    x = torch.rand(2, 2, *shape, requires_grad=True)
    ref = torch.rand(2, 2, *_hr(shape, model.scale), requires_grad=True)
    y = model(x, ref)
    assert y.shape == (2, 2, *_hr(shape, model.scale))
    y.square().mean().backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(ref.grad).all() and ref.grad.abs().sum() > 0
    _check_every_parameter_learns(model)


@pytest.mark.parametrize("scale", [(2, 3), (1, 2, 3)], ids=str)
def test_pixel_unshuffle_inverts_the_shuffle(scale: tuple[int, ...]) -> None:
    x = torch.rand(2, 3 * int(np.prod(scale)), *(3, 4, 2)[: len(scale)])
    shuffled = pixel_shuffle_nd(x, scale)
    assert torch.equal(pixel_unshuffle_nd(shuffled, scale), x)
    # Channel block of LR voxel n is its field of view: the mean over sub-pixels is the block mean.
    torch.testing.assert_close(pixel_unshuffle_nd(shuffled, scale).reshape(2, 3, -1, *x.shape[2:]).mean(2),
                               block_mean(shuffled, scale))


@pytest.mark.parametrize("radius", [None, 0, 1, 3])
@pytest.mark.parametrize("grid", [(7, 5), (4, 3, 5)], ids=["2d", "3d"])
def test_chunked_attention_equals_the_full_matrix(grid: tuple[int, ...], radius: int | None, monkeypatch) -> None:
    torch.manual_seed(4)
    query = patch_embedding(torch.randn(2, 3, *grid))
    key = patch_embedding(torch.randn(2, 3, *grid))
    # Brute force: the whole relevance matrix, masked to the window.
    q = query.flatten(2).transpose(1, 2)
    full = torch.bmm(q, key.flatten(2))
    if radius is not None:
        coords = torch.stack(torch.meshgrid(*[torch.arange(n) for n in grid], indexing="ij")).flatten(1)
        far = (coords[:, :, None] - coords[:, None, :]).abs().amax(0) > radius
        full = full.masked_fill(far, float("-inf"))
    best, where = full.max(dim=2)
    sizes: list[int] = []
    bmm = torch.bmm

    def counting_bmm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        out = bmm(a, b)
        sizes.append(out.numel())
        return out

    monkeypatch.setattr(torch, "bmm", counting_bmm)
    total = int(np.prod(grid))
    budget = 2 * total * 3  # room for three queries against every key
    for chunk in (budget, 10**9):
        sizes.clear()
        index, score = relevance_attention(query, key, search_radius=radius, chunk_elements=chunk)
        assert index.shape == (2, *grid) and score.shape == (2, 1, *grid)
        assert torch.equal(index.flatten(1), where)
        torch.testing.assert_close(score.flatten(1), best, rtol=0, atol=1e-6)
        assert max(sizes) <= chunk
    assert len(sizes) == 1  # the large budget computed everything at once


def _shifted_reference_case(dims: int) -> tuple[torch.Tensor, torch.Tensor, tuple[int, ...], tuple[int, ...]]:
    scale = (2, 2) if dims == 2 else (1, 1, 2)
    lr_shape = (20, 18) if dims == 2 else (12, 12, 12)
    shift = (3, -2) if dims == 2 else (2, -1, 2)
    hr = torch.rand(1, 1, *_hr(lr_shape, scale), generator=torch.Generator().manual_seed(5))
    x = block_mean(hr, scale)
    # The reference holds the same scene moved by a whole number of input voxels.
    ref = torch.roll(hr, shifts=tuple(d * s for d, s in zip(shift, scale, strict=True)),
                     dims=tuple(range(2, 2 + dims)))
    return x, ref, scale, shift


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("radius", [None, 3])
def test_hard_attention_finds_the_shifted_copy(dims: int, radius: int | None) -> None:
    torch.manual_seed(6)
    x, ref, scale, shift = _shifted_reference_case(dims)
    model = create_model("ttsr", scale=scale, spatial_dims=dims, search_radius=radius, chunk_elements=5000,
                         **TINY["ttsr"])
    with torch.no_grad():
        index, score = model.attention(x, ref)
    grid = x.shape[2:]
    # Queries whose receptive field (interpolation, convolutions, 3×3 patches) stays clear of the borders
    # and of the seam where the roll wraps around.
    margin = 4
    valid = torch.ones(grid, dtype=torch.bool)
    expected = torch.zeros(grid, dtype=torch.long)
    for axis, (n, d) in enumerate(zip(grid, shift, strict=True)):
        pos = torch.arange(n).reshape([-1 if a == axis else 1 for a in range(dims)])
        valid &= (pos >= margin) & (pos < n - margin) & (pos + d >= margin) & (pos + d < n - margin)
        expected = expected * n + (pos + d)
    assert valid.sum() >= 8
    assert torch.equal(index[0][valid], expected[valid])
    torch.testing.assert_close(score[0, 0][valid], torch.ones(int(valid.sum())), rtol=0, atol=1e-5)
    # Near the borders and the seam no exact copy exists, so the best relevance falls short of 1.
    assert score[0, 0][~valid].min() < 1 - 1e-4


def test_ttsr_transfers_the_matched_reference_blocks() -> None:
    torch.manual_seed(7)
    x, ref, scale, shift = _shifted_reference_case(2)
    model = create_model("ttsr", scale=scale, **TINY["ttsr"])
    with torch.no_grad():
        index, _ = model.attention(x, ref)
        texture = model.transfer(ref, index)
        source = model.extractor.texture(ref)
    # Transferred block of LR voxel (i, j) is the reference texture block of its match.
    for i, j in ((6, 6), (9, 11)):
        k = int(index[0, i, j])
        ki, kj = divmod(k, x.shape[3])
        assert (ki, kj) == (i + shift[0], j + shift[1])
        torch.testing.assert_close(texture[0, :, 2 * i:2 * i + 2, 2 * j:2 * j + 2],
                                   source[0, :, 2 * ki:2 * ki + 2, 2 * kj:2 * kj + 2], rtol=0, atol=0)


def test_ttsr_output_does_not_depend_on_the_chunking() -> None:
    torch.manual_seed(8)
    small = create_model("ttsr", scale=(1, 1, 2), spatial_dims=3, chunk_elements=64, **TINY["ttsr"])
    large = create_model("ttsr", scale=(1, 1, 2), spatial_dims=3, chunk_elements=2**30, **TINY["ttsr"])
    large.load_state_dict(small.state_dict())
    x, ref = torch.rand(1, 1, 4, 5, 3), torch.rand(1, 1, 4, 5, 6)
    with torch.no_grad():
        torch.testing.assert_close(small(x, ref), large(x, ref), rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", ["oktay-desr", "oktay-multi", "ttsr"])
def test_model_files_round_trip(name: str, tmp_path) -> None:
    torch.manual_seed(9)
    options = {**TINY[name], **({"search_radius": 2} if name == "ttsr" else {})}
    model = create_model(name, scale=(1, 2, 3), spatial_dims=3, in_channels=2, **options).eval()
    path = save_model(model, tmp_path / f"{name}.safetensors", domain="mri")
    loaded = load_model(path)
    assert loaded.card["arch"] == name and loaded.card["options"] == model.card["options"]
    assert loaded.scale == (1, 2, 3) and loaded.in_channels == 2 and loaded.kind == model.kind
    assert loaded.spec == model.spec
    assert loaded.spec.inputs == {"oktay-multi": "stacks", "ttsr": "reference"}.get(name, "image")
    assert loaded.spec.input_on_output_grid is (name == "oktay-multi")
    x = torch.rand(1, 4 if name == "oktay-multi" else 2, 3, 4, 3)
    args = (x, torch.rand(1, 2, 3, 8, 9)) if name == "ttsr" else (x,)
    if name == "ttsr":
        assert loaded.search_radius == 2 and not loaded.spec.global_pooling
    with torch.no_grad():
        assert torch.equal(loaded(*args), model(*args))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: create_model("oktay-multi", in_channels=2, **TINY["oktay-multi"])(torch.rand(1, 3, 4, 4)),
         "3 channels, not a multiple of the 2 channels per stack"),
        (lambda: create_model("ttsr", **TINY["ttsr"])(torch.rand(1, 1, 4, 4), torch.rand(1, 1, 8, 6)),
         "ref must be (1, 1, 8, 8)"),
        (lambda: create_model("ttsr", spatial_dims=3, **TINY["ttsr"])(torch.rand(1, 1, 2, 2, 2),
                                                                      torch.rand(1, 1, 2, 2, 2)),
         "ref must be (1, 1, 4, 4, 4)"),
        (lambda: create_model("ttsr", **TINY["ttsr"])(torch.rand(1, 1, 4, 4)), "ttsr needs a reference"),
        (lambda: create_model("ttsr", scale=1.5), "positive integers"),
        (lambda: create_model("oktay-desr", scale=(2, 2, 2)), "has 3 factors but the image has 2 spatial axes"),
        (lambda: create_model("oktay-multi", scale=0), "positive integers"),
        (lambda: create_model("oktay-desr", in_channels=2, out_channels=1), "out_channels (1) must equal"),
        (lambda: create_model("oktay-multi", stream_layers=0), "stream_layers must be a positive integer"),
        (lambda: create_model("ttsr", search_radius=-1), "search_radius must be an integer ≥ 0"),
        (lambda: create_model("ttsr", chunk_elements=0), "chunk_elements must be an integer ≥ 1"),
        (lambda: relevance_attention(torch.rand(1, 2, 3, 3), torch.rand(1, 2, 3, 4)), "differ"),
    ],
)
def test_bad_input_is_a_one_line_error(call, message: str) -> None:
    with pytest.raises(SciSRError) as info:
        call()
    assert message in str(info.value)
    assert "\n" not in str(info.value)
