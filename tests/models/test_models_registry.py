"""The registry: listing, building by name, cards that rebuild the network, and one-line errors."""

from __future__ import annotations

import json

import pytest
import torch

from sciSR.errors import SciSRError
from sciSR.models import (
    MODEL_REGISTRY,
    ModelSpec,
    ZooModel,
    create_model,
    get_model_info,
    list_architectures,
    list_models,
)

ALL = sorted(MODEL_REGISTRY)
EXPECTED = {
    "srnet-toy", "srcnn", "fsrcnn", "vdsr", "espcn", "lapsrn", "srresnet", "srgan-d", "edsr", "edsr-baseline",
    "srdensenet", "rdn", "rcan", "san", "rrdbnet", "esrgan-d", "swinir", "oktay-desr", "oktay-multi", "ttsr",
}
KINDS = {"srnet-toy": "pre", "srcnn": "pre", "vdsr": "pre", "lapsrn": "progressive", "srgan-d": "discriminator",
         "esrgan-d": "discriminator", "oktay-multi": "fusion", "ttsr": "reference"}


def test_list_architectures_entries() -> None:
    entries = list_architectures()
    assert list_models is list_architectures  # the old name stays an alias
    assert {e["name"] for e in entries} == EXPECTED
    for entry in entries:
        assert set(entry) == {"name", "paper", "year", "kind", "defaults"}
        assert isinstance(entry["paper"], str) and entry["paper"].endswith(".")
        assert isinstance(entry["year"], int)
        assert entry["kind"] == KINDS.get(entry["name"], "post")
        json.dumps(entry["defaults"])  # defaults are plain data
    years = [e["year"] for e in entries]
    assert years == sorted(years)


def test_paper_defaults_are_the_documented_configurations() -> None:
    assert get_model_info("edsr").defaults == {"n_blocks": 32, "features": 256, "res_scale": 0.1}
    assert get_model_info("edsr-baseline").defaults == {"n_blocks": 16, "features": 64, "res_scale": 1.0}
    assert get_model_info("rdn").defaults == {"n_blocks": 16, "n_layers": 8, "growth": 64, "features": 64}
    assert get_model_info("rcan").defaults == {"n_groups": 10, "n_blocks": 20, "features": 64, "reduction": 16}
    assert get_model_info("fsrcnn").defaults == {"features": 56, "shrink": 12, "mapping_layers": 4, "deconv_kernel": 9}
    swin = get_model_info("swinir").defaults
    assert (swin["embed_dim"], tuple(swin["depths"]), swin["window_size"]) == (180, (6,) * 6, 8)
    assert get_model_info("rrdbnet").defaults == {"n_blocks": 23, "features": 64, "growth": 32}


@pytest.mark.parametrize("name", ALL)
def test_attributes_and_card_rebuild(name: str, tiny: dict) -> None:
    is_d = get_model_info(name).kind == "discriminator"
    scale = None if is_d else ((1, 2, 4) if name == "lapsrn" else (1, 2, 3))
    model = create_model(name, scale=scale, spatial_dims=3, in_channels=2, **tiny[name])
    assert isinstance(model, ZooModel)
    assert model.spatial_dims == 3 and model.in_channels == 2
    assert model.out_channels == (1 if is_d else 2)
    assert model.scale == ((1, 1, 1) if is_d else tuple(scale))
    assert model.kind == get_model_info(name).kind == model.spec.kind
    assert model.spec.arch == name
    assert model.spec.global_pooling is (name in ("rcan", "san", "ttsr"))  # ttsr: global attention by default
    assert model.spec.window_multiple == (tiny[name]["window_size"] if name == "swinir" else 1)
    card = json.loads(json.dumps(model.card))  # survives a JSON round trip
    assert card == {"arch": name, "options": card["options"], "scale": list(model.scale), "spatial_dims": 3,
                    "in_channels": 2, "out_channels": model.out_channels, "spec": model.spec.to_dict()}
    assert ModelSpec.from_dict(card["spec"]) == model.spec
    assert set(card["options"]) == set(get_model_info(name).defaults)
    rebuilt = create_model(card["arch"], scale=card["scale"], spatial_dims=card["spatial_dims"],
                           in_channels=card["in_channels"], out_channels=card["out_channels"], **card["options"])
    assert rebuilt.card == model.card
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {k: v.shape for k, v in model.state_dict().items()}
    rebuilt.load_state_dict(model.state_dict())


def test_default_scale_and_channels() -> None:
    model = create_model("srnet-toy")
    assert model.scale == (2, 2) and model.in_channels == model.out_channels == 1
    assert create_model("espcn", in_channels=3, out_channels=1, features=(4, 4)).out_channels == 1
    assert create_model("srgan-d", features=2, fc_features=4).scale == (1, 1)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: create_model("nope"), "unknown architecture 'nope'; choose from"),
        (lambda: create_model("edsr", depth=3), "edsr has no option 'depth'"),
        (lambda: create_model("edsr", spatial_dims=4), "spatial_dims must be 2 or 3"),
        (lambda: create_model("edsr", scale=(2, 2, 2)), "has 3 factors but the image has 2 spatial axes"),
        (lambda: create_model("edsr", scale=0), "positive integers"),
        (lambda: create_model("edsr", scale=1.5), "positive integers"),
        (lambda: create_model("lapsrn", scale=3), "lapsrn is progressive (×2 levels): every factor must be a power"),
        (lambda: create_model("lapsrn", scale=(2, 6)), "power of two"),
        (lambda: create_model("lapsrn", scale=1), "power of two"),
        (lambda: create_model("srgan-d", scale=2), "srgan-d is a discriminator and takes no scale"),
        (lambda: create_model("esrgan-d", scale=(1, 4)), "esrgan-d is a discriminator and takes no scale"),
        (lambda: create_model("esrgan-d", out_channels=3), "outputs one logit per image"),
        (lambda: create_model("vdsr", in_channels=3, out_channels=1), "out_channels (1) must equal in_channels (3)"),
        (lambda: create_model("edsr", in_channels=0), "in_channels must be a positive integer"),
        (lambda: create_model("srcnn", kernel_sizes=(9, 2, 5)), "three odd sizes"),
        (lambda: create_model("swinir", embed_dim=20), "divisible by every num_heads"),
        (lambda: create_model("rcan", features=8), "features ≥ reduction"),
    ],
)
def test_errors_are_one_line(call, message: str) -> None:
    with pytest.raises(SciSRError) as info:
        call()
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_scale_one_axes_are_untouched(tiny: dict) -> None:
    model = create_model("edsr-baseline", scale=(1, 1, 4), spatial_dims=3, **tiny["edsr-baseline"])
    assert model(torch.rand(1, 1, 3, 4, 2)).shape == (1, 1, 3, 4, 8)
