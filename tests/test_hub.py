"""Model files: safetensors + JSON card, refusal of pickles, validation, export (docs/architecture.md §6)."""

import json

import numpy as np
import pytest
import torch

import sciSR
from sciSR.errors import SciSRError
from sciSR.hub import export_model, load_model, read_spec, save_model
from sciSR.models import ModelSpec, create_model


@pytest.fixture
def small_model():
    torch.manual_seed(0)
    return create_model("edsr-baseline", scale=2, spatial_dims=2, n_blocks=2, features=8)


@pytest.fixture
def saved(tmp_path, small_model):
    path = save_model(small_model, tmp_path / "edsr.safetensors", name="edsr-test", domain="mri",
                      normalisation={"method": "percentile"})
    return path


def test_round_trip_gives_identical_outputs(saved, small_model):
    loaded = load_model(saved)
    x = torch.rand(1, 1, 12, 10)
    with torch.no_grad():
        np.testing.assert_array_equal(loaded(x).numpy(), small_model.eval()(x).numpy())
    assert loaded.card["name"] == "edsr-test" and loaded.card["domain"] == "mri"
    assert json.loads(saved.with_suffix(".json").read_text())["arch"] == "edsr-baseline"


def test_saved_card_holds_the_spec(saved, small_model):
    card = json.loads(saved.with_suffix(".json").read_text())
    assert ModelSpec.from_dict(card["spec"]) == small_model.spec == read_spec(saved) == load_model(saved).spec


def test_read_spec_reads_only_the_card(saved, small_model, tmp_path, monkeypatch):
    import sciSR.hub as hub

    def refuse(*args, **kwargs):
        raise AssertionError("read_spec built a network or read weights")

    monkeypatch.setattr(hub, "build_from_card", refuse)
    monkeypatch.setattr(hub, "_load_state", refuse)
    assert read_spec(saved) == small_model.spec
    saved.with_suffix(".json").unlink()  # the card in the safetensors header
    assert read_spec(str(saved)) == small_model.spec
    pickle = tmp_path / "edsr.pt"
    pickle.write_bytes(b"not even a pickle")  # never opened: no trust_pickle needed
    pickle.with_suffix(".json").write_text(json.dumps(small_model.card))
    assert read_spec(pickle) == small_model.spec
    with pytest.raises(SciSRError, match="unknown model"):
        read_spec(tmp_path / "missing.safetensors")


def test_card_without_spec_still_loads(saved, small_model):
    # Cards written before cards had a spec: it is derived (and the training degradation read).
    card_path = saved.with_suffix(".json")
    card = json.loads(card_path.read_text())
    del card["spec"]
    card["training"] = {"degradation": {"type": "kspace"}}
    card_path.write_text(json.dumps(card))
    loaded = load_model(saved)
    assert loaded.spec == ModelSpec.from_dict({**small_model.spec.to_dict(), "degradation": "kspace"})
    assert loaded.card["spec"] == loaded.spec.to_dict() and read_spec(saved) == loaded.spec


def test_spec_that_disagrees_with_the_network(saved):
    card_path = saved.with_suffix(".json")
    card = json.loads(card_path.read_text())
    card["spec"]["global_pooling"] = True
    card_path.write_text(json.dumps(card))
    with pytest.raises(SciSRError, match="spec says global_pooling True; the edsr-baseline network it describes"):
        load_model(saved)
    card["spec"] = {**card["spec"], "global_pooling": False, "scale": [4, 4]}
    card_path.write_text(json.dumps(card))
    with pytest.raises(SciSRError, match="spec says scale"):
        read_spec(saved)


def test_training_degradation_goes_into_the_spec(tmp_path, small_model, saved):
    path = save_model(small_model, tmp_path / "trained.safetensors", training={"degradation": {"type": "ct"}})
    assert small_model.spec.degradation == "ct" == read_spec(path).degradation
    # Trained again on another degradation: the new one replaces it.
    again = save_model(load_model(path), tmp_path / "again.safetensors", training={"degradation": {"type": "bicubic"}})
    assert read_spec(again).degradation == "bicubic"


def test_card_embedded_in_weights_is_enough(saved):
    saved.with_suffix(".json").unlink()
    assert load_model(saved).card["options"]["n_blocks"] == 2


def test_upscale_with_model_file_keeps_units_and_geometry(saved):
    img = sciSR.SciImage.from_array(np.random.default_rng(0).random((13, 9)).astype(np.float32) * 800 + 100,
                                    spacing=(0.5, 0.7), domain="mri")
    out = sciSR.upscale(img, saved)
    assert out.array.shape == (26, 18) and out.spacing == pytest.approx((0.25, 0.35))
    assert out.meta["provenance"][-1]["model"] == "edsr-test"
    # Normalisation is undone: values come back in the input's range, not [0, 1].
    assert np.median(out.array) > 0 and abs(np.median(out.array) - np.median(img.array)) < 400


def test_truncated_safetensors_is_a_clear_error(saved):
    data = saved.read_bytes()
    saved.write_bytes(data[: len(data) // 2])
    with pytest.raises(SciSRError, match="corrupt or truncated") as err:
        load_model(saved)
    assert "\n" not in str(err.value) and saved.name in str(err.value)


def test_card_that_disagrees_with_weights(saved):
    card_path = saved.with_suffix(".json")
    card = json.loads(card_path.read_text())
    card["options"]["features"] = 16
    card_path.write_text(json.dumps(card))
    with pytest.raises(SciSRError, match="disagrees with the weights"):
        load_model(saved)


@pytest.mark.parametrize("change,message", [
    ({"arch": "nonsense"}, "unknown architecture"),
    ({"scale": [2, 0]}, "scale"),
    ({"spatial_dims": 4}, "spatial_dims"),
])
def test_invalid_cards(saved, change, message):
    card_path = saved.with_suffix(".json")
    card_path.write_text(json.dumps({**json.loads(card_path.read_text()), **change}))
    with pytest.raises(SciSRError, match=message):
        load_model(saved)


def test_pickle_refused_unless_trusted(tmp_path, small_model, saved):
    path = tmp_path / "edsr.pt"
    torch.save(small_model.state_dict(), path)
    path.with_suffix(".json").write_text(saved.with_suffix(".json").read_text())
    with pytest.raises(SciSRError, match="pickle"):
        load_model(path)
    with pytest.raises(SciSRError, match="pickle"):
        sciSR.upscale(np.zeros((8, 8), np.float32), path)
    assert load_model(path, trust_pickle=True).card["arch"] == "edsr-baseline"


def test_model_for_3d_on_2d_image_and_wrong_scale(tmp_path):
    model3d = create_model("espcn", scale=(1, 1, 2), spatial_dims=3)
    with pytest.raises(SciSRError, match="3D model cannot run on a 2D image"):
        sciSR.upscale(np.zeros((8, 8), np.float32), model3d)
    model2d = create_model("espcn", scale=2, spatial_dims=2)
    with pytest.raises(SciSRError, match="produces scale"):
        sciSR.upscale(np.zeros((8, 8), np.float32), model2d, 3)


def test_2d_model_runs_plane_by_plane_on_a_volume():
    torch.manual_seed(0)
    model = create_model("espcn", scale=(1, 3), spatial_dims=2).eval()
    vol = np.random.default_rng(1).random((5, 6, 4)).astype(np.float32)
    img = sciSR.SciImage.from_array(vol, affine=np.diag([0.4, 0.4, 3.0, 1.0]), domain="mri")
    out = sciSR.upscale(img, model, (1, 1, 3), consistency="off")  # the network alone
    assert out.array.shape == (5, 6, 12)
    np.testing.assert_allclose(out.spacing, (0.4, 0.4, 1.0))
    # Both families of planes holding the scaled axis, (i, k) and (j, k), each plane through the model alone
    # (a module without a card gets no intensity normalisation), fused along k.
    from sciSR.infer.orientations import fuse_orientations

    def alone(plane: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.from_numpy(np.ascontiguousarray(plane))[None, None])[0, 0].numpy()

    first = np.stack([alone(vol[:, j, :]) for j in range(6)], axis=1)
    second = np.stack([alone(vol[i, :, :]) for i in range(5)], axis=0)
    np.testing.assert_allclose(out.array, fuse_orientations(first, second, 2)[0], rtol=1e-5, atol=1e-5)
    assert out.meta["provenance"][-1]["fusion"]["planes"] == [[2, 0], [2, 1]]


def test_channel_mismatch():
    model = create_model("espcn", scale=2, spatial_dims=2, in_channels=3)
    img = sciSR.SciImage.from_array(np.zeros((8, 8, 2), np.float32), meta={"channel_axis": 2})
    with pytest.raises(SciSRError, match="3 channel"):
        sciSR.upscale(img, model)


@pytest.mark.parametrize("fmt,name", [("torchscript", "m.pt"), ("onnx", "m.onnx"), ("bundle", "bundle")])
def test_exports_match_pytorch(tmp_path, small_model, fmt, name):
    small_model.eval()
    path = export_model(small_model, tmp_path / name, fmt)
    x = torch.rand(1, 1, 20, 24)
    with torch.no_grad():
        expected = small_model(x).numpy()
    if fmt == "torchscript":
        got = torch.jit.load(str(path))(x).detach().numpy()
    elif fmt == "onnx":
        ort = pytest.importorskip("onnxruntime")
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        got = session.run(None, {"input": x.numpy()})[0]
    else:
        meta = json.loads((path / "configs" / "metadata.json").read_text())
        assert meta["scisr_card"]["arch"] == "edsr-baseline"
        from monai.bundle import ConfigParser

        parser = ConfigParser()
        parser.read_config(str(path / "configs" / "inference.json"))
        net = parser.get_parsed_content("network_def")
        net.load_state_dict(torch.load(path / "models" / "model.pt", weights_only=True))
        with torch.no_grad():
            got = net.eval()(x).numpy()
        np.testing.assert_allclose(torch.jit.load(str(path / "models" / "model.ts"))(x).detach().numpy(),
                                   expected, atol=1e-5)
    np.testing.assert_allclose(got, expected, atol=1e-4)
