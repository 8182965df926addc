"""Graph capture: torch.jit.trace and ONNX (as sciSR.hub exports) and torch.compile see the same network;
channels_last gives the same result."""

from __future__ import annotations

import io
import warnings

import pytest
import torch

from sciSR.models import create_model

# Representative mechanisms: interpolation (srcnn), per-axis shuffle (espcn 3D), deconvolutions (lapsrn),
# channel attention (rcan), region non-local + covariance (san), window padding/masks (swinir).
TRACED = [
    ("srcnn", 2, (2, 3), (5, 6), (7, 4)),
    ("espcn", 3, (1, 1, 4), (3, 4, 2), (2, 5, 3)),
    ("lapsrn", 2, 4, (5, 6), (4, 9)),
    ("rcan", 2, 3, (5, 6), (6, 3)),
    ("san", 3, (1, 2, 2), (3, 4, 5), (5, 2, 4)),
    ("swinir", 2, 2, (5, 6), (9, 4)),
    ("swinir", 3, (1, 1, 4), (3, 4, 5), (5, 5, 2)),
]


# torch 2.13 deprecates torch.jit.trace, but sciSR.hub still exports TorchScript with it.
@pytest.mark.filterwarnings("ignore:`torch.jit.trace:DeprecationWarning")
@pytest.mark.parametrize(("name", "dims", "scale", "traced_shape", "other_shape"), TRACED,
                         ids=[f"{t[0]}-{t[1]}d" for t in TRACED])
def test_trace_matches_eager_at_traced_and_other_sizes(name, dims, scale, traced_shape, other_shape, tiny) -> None:
    model = create_model(name, scale=scale, spatial_dims=dims, **tiny[name]).eval()
    example = torch.rand(1, 1, *traced_shape)
    with torch.no_grad(), warnings.catch_warnings():
        # A TracerWarning means a size was frozen into the graph: the model must not produce any.
        warnings.simplefilter("error", torch.jit.TracerWarning)
        traced = torch.jit.trace(model, example)
        for shape in (traced_shape, other_shape):
            x = torch.rand(2, 1, *shape)
            torch.testing.assert_close(traced(x), model(x), rtol=1e-5, atol=1e-5)


def test_channels_last_gives_the_same_output(tiny) -> None:
    model = create_model("edsr-baseline", scale=3, in_channels=3, **tiny["edsr-baseline"]).eval()
    x = torch.rand(2, 3, 7, 5)
    with torch.no_grad():
        reference = model(x)
        fast = model.to(memory_format=torch.channels_last)(x.to(memory_format=torch.channels_last))
    torch.testing.assert_close(fast, reference, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["swinir", "lapsrn"])
def test_torch_compile_captures_one_graph(name: str, tiny) -> None:
    # fullgraph=True fails on any graph break; the eager backend checks capture without a C++ toolchain.
    model = create_model(name, scale=(2, 4), **tiny[name]).eval()
    compiled = torch.compile(model, backend="eager", fullgraph=True)
    x = torch.rand(1, 1, 5, 6)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), model(x))


@pytest.mark.parametrize(("name", "dims", "scale"), [("swinir", 2, 2), ("espcn", 3, (1, 1, 4)), ("san", 2, 2)])
def test_onnx_export_with_dynamic_sizes(name: str, dims: int, scale, tiny) -> None:
    # sciSR.hub exports ONNX with dynamic batch and spatial axes; the graph must hold at other sizes.
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    model = create_model(name, scale=scale, spatial_dims=dims, **tiny[name]).eval()
    axes = {"input": {0: "batch", **{i + 2: f"d{i}" for i in range(dims)}}, "output": {0: "batch"}}
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.rand(1, 1, *([8] * dims)),), buffer, input_names=["input"],
                          output_names=["output"], dynamic_axes=axes, dynamo=False, opset_version=17)
    session = ort.InferenceSession(buffer.getvalue())
    x = torch.rand(2, 1, *(5, 7, 6)[:dims])
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(session.run(None, {"input": x.numpy()})[0]), model(x),
                                   rtol=1e-4, atol=1e-5)
