"""The typed model contract: ModelSpec, spec_of, the spec every zoo network carries, and unchanged weights layout."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch
from torch import nn

from sciSR.errors import SciSRError
from sciSR.models import (
    MODEL_REGISTRY,
    ModelSpec,
    PostUpsamplingModel,
    create_model,
    get_model_info,
    spec_from_card,
    spec_of,
)
from sciSR.models.edsr import EDSR
from sciSR.models.esrgan import RRDBNet
from sciSR.models.rcan import RCAN
from sciSR.models.srresnet import SRResNet

ALL = sorted(MODEL_REGISTRY)
REMOVED = ("multi_input", "reference_input", "global_pooling", "window_multiple", "input_on_output_grid")

# sha256 (first 16 hex digits) of "key:shape" lines of each architecture's state dict at its paper-default
# options (create_model(name) and create_model(name, spatial_dims=3)), recorded with the code before the
# ModelSpec/PostUpsamplingModel refactor: weight files written before it must keep loading with strict=True.
STATE_KEYS_2D = {
    "edsr": ("30a191cf5dbbb723", 136), "edsr-baseline": ("c74e077ee321bc68", 72),
    "espcn": ("482bd3ec3cba7c70", 6), "esrgan-d": ("23ec7fb7abb557c1", 60), "fsrcnn": ("cbb9b5f8e8477154", 23),
    "lapsrn": ("2776245c292d9fca", 27), "oktay-desr": ("8c29e3e1f7f4996d", 14),
    "oktay-multi": ("9f26486560cb5e97", 14), "rcan": ("843dc50eb9b9cb6f", 1628), "rdn": ("b078303043ffd8e9", 300),
    "rrdbnet": ("12b1974b8a8aed6c", 700), "san": ("a3e3ca51b3c07b73", 945), "srcnn": ("68f2644e4da10729", 6),
    "srdensenet": ("ed336ffbe74bc401", 136), "srgan-d": ("5d1e747ca753daf7", 48),
    "srnet-toy": ("db62d55fb1b205b1", 4), "srresnet": ("c67dd48d9f32ba26", 222),
    "swinir": ("611ab90fd373e8b5", 494), "ttsr": ("a99123c638eb1256", 112), "vdsr": ("54375835d7377db2", 40),
}
STATE_KEYS_3D = {
    "edsr": "7420de3497a42412", "edsr-baseline": "782e50e315385dab", "espcn": "9edad7be6bb6ce99",
    "esrgan-d": "674cfa4e8dafcff4", "fsrcnn": "61489479f606477d", "lapsrn": "6ebab67e70559d37",
    "oktay-desr": "2a3618deb4fdc638", "oktay-multi": "f9661817b27ea32f", "rcan": "e4700ae5fdb320c5",
    "rdn": "72141bb8b230e164", "rrdbnet": "93ee65d71b5bc71b", "san": "1a3b311699c745f7",
    "srcnn": "9029dbfdbb4b53a8", "srdensenet": "ff3a5404c63cd10f", "srgan-d": "1445da03ba2ae10f",
    "srnet-toy": "86ba6359fe725c60", "srresnet": "f868a4e9cff606dd", "swinir": "4b98bfb7f7d623c2",
    "ttsr": "5f7e723223b7ca85", "vdsr": "18167275c3ec0e3d",
}


def _state_digest(model: nn.Module) -> tuple[str, int]:
    text = "\n".join(f"{k}:{tuple(v.shape)}" for k, v in model.state_dict().items())
    return hashlib.sha256(text.encode()).hexdigest()[:16], len(model.state_dict())


def test_snapshot_covers_the_registry() -> None:
    assert set(STATE_KEYS_2D) == set(STATE_KEYS_3D) == set(ALL)


@pytest.mark.parametrize("name", ALL)
def test_state_dict_keys_are_unchanged(name: str) -> None:
    with torch.device("meta"):  # the paper configurations, without allocating their weights
        model_2d = create_model(name)
        model_3d = create_model(name, spatial_dims=3)
    assert _state_digest(model_2d) == STATE_KEYS_2D[name]
    assert _state_digest(model_3d)[0] == STATE_KEYS_3D[name]


@pytest.mark.parametrize("cls", [EDSR, RCAN, SRResNet, RRDBNet])
def test_post_upsampling_families_share_one_forward(cls: type) -> None:
    assert issubclass(cls, PostUpsamplingModel)
    assert "forward" not in vars(cls)


def test_post_upsampling_forward_is_head_body_skip_upsample_tail(tiny: dict) -> None:
    torch.manual_seed(0)
    model = create_model("rcan", **tiny["rcan"]).eval()
    x = torch.rand(1, 1, 6, 5)
    with torch.no_grad():
        head = model.head(x)
        expected = model.tail(model.upsample(head + model.body(head)))
        assert torch.equal(model(x), expected)


ABILITIES = {
    "rcan": {"global_pooling": True},
    "san": {"global_pooling": True},
    "ttsr": {"inputs": "reference", "global_pooling": True},
    "oktay-multi": {"inputs": "stacks", "input_on_output_grid": True},
}


@pytest.mark.parametrize("name", ALL)
def test_every_network_carries_its_spec(name: str, tiny: dict) -> None:
    info = get_model_info(name)
    scale = None if info.kind == "discriminator" else (1, 2, 4)
    model = create_model(name, scale=scale, spatial_dims=3, in_channels=2, **tiny[name])
    spec = model.spec
    expected = {"global_pooling": False, "inputs": "image", "input_on_output_grid": False,
                "window_multiple": tiny[name]["window_size"] if name == "swinir" else 1, **ABILITIES.get(name, {})}
    assert {k: getattr(spec, k) for k in expected} == expected
    assert (spec.arch, spec.kind, spec.spatial_dims, spec.in_channels) == (name, info.kind, 3, 2)
    assert (spec.scale, spec.out_channels) == (model.scale, model.out_channels)
    assert spec.receptive_field is None and spec.degradation is None and spec_of(model) is spec
    assert not any(hasattr(model, attr) for attr in REMOVED)
    with pytest.raises(AttributeError):
        model.scale = (2, 2, 2)
    with pytest.raises(AttributeError):  # frozen
        spec.scale = (2, 2, 2)


def test_spec_follows_the_constructor_options(tiny: dict) -> None:
    assert not create_model("ttsr", search_radius=3, **tiny["ttsr"]).spec.global_pooling
    assert create_model("swinir", **{**tiny["swinir"], "window_size": 2}).spec.window_multiple == 2
    with pytest.raises(SciSRError, match="window_size must be a positive integer"):
        create_model("swinir", **{**tiny["swinir"], "window_size": 0})


def test_to_dict_round_trips_through_json() -> None:
    spec = ModelSpec("edsr", (1, 2), 2, 1, 1, receptive_field=(3, 4), precisions=("fp32",), degradation="ct")
    data = json.loads(json.dumps(spec.to_dict()))
    assert data["scale"] == [1, 2] and data["receptive_field"] == [3, 4] and data["precisions"] == ["fp32"]
    assert ModelSpec.from_dict(data) == spec
    assert hash(ModelSpec.from_dict(data)) == hash(spec)


def test_values_are_normalised() -> None:
    spec = ModelSpec("x", 2, 3, 1, 1, receptive_field=5, precisions=["bf16", "fp32"])
    assert spec.scale == (2, 2, 2) and spec.receptive_field == (5, 5, 5) and spec.precisions == ("bf16", "fp32")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"spatial_dims": 4}, "spatial_dims must be 2 or 3"),
        ({"scale": (2, 2, 2)}, "3 factors"),
        ({"in_channels": 0}, "in_channels must be a positive integer"),
        ({"kind": "magic"}, "kind must be one of"),
        ({"inputs": "video"}, "inputs must be one of"),
        ({"window_multiple": 0}, "window_multiple must be a positive integer"),
        ({"receptive_field": (1, -1)}, "receptive_field"),
        ({"precisions": ("fp64",)}, "precisions"),
        ({"global_pooling": 1}, "global_pooling must be true or false"),
        ({"degradation": 3}, "degradation must be a string"),
    ],
)
def test_invalid_spec_is_a_one_line_error(fields: dict, message: str) -> None:
    with pytest.raises(SciSRError, match=message) as info:
        ModelSpec(**{"arch": "edsr", "scale": (2, 2), "spatial_dims": 2, "in_channels": 1, "out_channels": 1,
                     **fields})
    assert "\n" not in str(info.value)


def test_from_dict_errors() -> None:
    good = ModelSpec("edsr", (2, 2), 2, 1, 1).to_dict()
    with pytest.raises(SciSRError, match="unknown field"):
        ModelSpec.from_dict({**good, "colour": "blue"})
    with pytest.raises(SciSRError, match="lacks out_channels"):
        ModelSpec.from_dict({k: v for k, v in good.items() if k != "out_channels"})
    with pytest.raises(SciSRError, match="JSON object"):
        ModelSpec.from_dict([1, 2])


def test_from_card_derives_the_spec_of_an_old_card() -> None:
    # A card as written before cards had a spec: abilities come from the registry class and the options.
    card = {"arch": "swinir", "scale": [2, 2], "spatial_dims": 2, "in_channels": 1, "options": {"window_size": 4},
            "training": {"degradation": {"type": "kspace", "noise_std": [0, 1]}}}
    spec = spec_from_card(card)
    assert (spec.arch, spec.window_multiple, spec.out_channels, spec.degradation) == ("swinir", 4, 1, "kspace")
    assert spec_from_card({**card, "arch": "swinir", "options": {}}).window_multiple == 8  # paper default
    ttsr = spec_from_card({"arch": "ttsr", "scale": 2, "spatial_dims": 3, "in_channels": 1,
                                "options": {"search_radius": 2}})
    assert ttsr.inputs == "reference" and not ttsr.global_pooling and ttsr.scale == (2, 2, 2)
    assert ttsr.degradation is None


def test_from_card_reads_and_checks_a_stored_spec() -> None:
    model = create_model("oktay-multi", features=4, stream_layers=1, refine_layers=1)
    card = {**model.card, "training": {"degradation": {"type": "thick_slice"}}}
    assert spec_from_card(card) == ModelSpec.from_dict({**model.card["spec"], "degradation": "thick_slice"})
    stored = {**card, "spec": {**card["spec"], "degradation": "bicubic"}}
    assert spec_from_card(stored).degradation == "bicubic"  # the spec's own value wins
    with pytest.raises(SciSRError, match="spec says scale"):
        spec_from_card({**card, "scale": [4, 4]})
    with pytest.raises(SciSRError, match="unknown architecture"):
        spec_from_card({"arch": "nope", "scale": 2, "spatial_dims": 2, "in_channels": 1})


class _UserNet(nn.Module):
    """A user's network: the attributes inference needs, no spec."""

    def __init__(self) -> None:
        super().__init__()
        self.scale, self.spatial_dims, self.in_channels = (2, 3), 2, 1
        self.conv = nn.Conv2d(1, 6, 3, padding=1)


def test_spec_of_a_plain_module() -> None:
    net = _UserNet()
    spec = spec_of(net)
    assert (spec.arch, spec.scale, spec.out_channels, spec.kind, spec.global_pooling) == (
        "_UserNet", (2, 3), 1, "post", False)
    net.global_pooling, net.receptive_field, net.window_multiple = True, 4, 8
    net.out_channels, net.card = 2, {"arch": "my-net"}
    spec = spec_of(net)
    assert (spec.arch, spec.global_pooling, spec.receptive_field, spec.window_multiple, spec.out_channels) == (
        "my-net", True, (4, 4), 8, 2)


def test_spec_of_uses_fallbacks_only_where_attributes_are_missing() -> None:
    bare = nn.Sequential(nn.Conv2d(1, 4, 3))
    with pytest.raises(SciSRError, match="Sequential has no scale, spatial_dims, in_channels: build it with"):
        spec_of(bare)
    assert spec_of(bare, spatial_dims=2, scale=2, in_channels=1).scale == (2, 2)
    net = _UserNet()
    assert spec_of(net, spatial_dims=2, scale=4, in_channels=3) == spec_of(net)
    del net.in_channels
    assert spec_of(net, in_channels=3).in_channels == 3
    net.spec = {"scale": 2}
    with pytest.raises(SciSRError, match="not a sciSR ModelSpec"):
        spec_of(net)
