"""Readable model cards: sciSR.hub.model_summary/describe_card and `scisr models [NAME]` (issue 21, item 4)."""

import json

import pytest
import torch

from sciSR import hub
from sciSR.cli import main
from sciSR.errors import SciSRError
from sciSR.models import create_model


def test_summary_of_a_shipped_model_comes_from_its_card():
    card = json.loads(hub.shipped_models()["mri-thick-x4"].with_suffix(".json").read_text())
    summary = hub.model_summary("mri-thick-x4")
    rows = card["held_out_metrics"]
    assert summary["domain"] == "mri" and summary["scale"] == [1, 4] and summary["degradation"] == "thick_slice"
    assert summary["baseline"] == "cubic"
    assert [r["image"] for r in summary["held_out"]] == [r["image"] for r in rows]
    expected = sum(r["psnr"] - r["psnr_cubic"] for r in rows) / len(rows)
    assert summary["gain_db"] == pytest.approx(expected)
    assert summary["size_bytes"] == hub.shipped_models()["mri-thick-x4"].stat().st_size
    line = hub.summary_line(summary)
    assert f"{expected:+.2f} dB vs cubic ({len(rows)} held-out)" in line and "×1×4" in line and "KiB" in line


def test_summary_of_a_card_without_metrics(tmp_path):
    torch.manual_seed(0)
    model = create_model("edsr-baseline", scale=2, spatial_dims=2, n_blocks=1, features=8)
    path = hub.save_model(model, tmp_path / "m.safetensors", name="mine", domain="ct",
                          training={"degradation": {"type": "bicubic"}})
    summary = hub.model_summary(path)
    assert summary["name"] == "mine" and summary["gain_db"] is None and summary["held_out"] == []
    assert summary["degradation"] == "bicubic"
    assert "no held-out metrics" in hub.summary_line(summary)
    assert any("no held-out metrics" in line for line in hub.describe_card(path))


def test_describe_card_prints_the_whole_card():
    text = "\n".join(hub.describe_card("generic-x2"))
    card = json.loads(hub.shipped_models()["generic-x2"].with_suffix(".json").read_text())
    row = card["held_out_metrics"][0]  # the card's own numbers, as the table prints them
    for needle in ("generic-x2", "edsr-baseline", "×2×2", "percentile", "bicubic", "camera.png",
                   f"{row['psnr']:.2f} vs {row['psnr_cubic']:.2f}", f"({row['delta_psnr']:+.2f})",
                   card["data_licences"][0], card["machine"]):
        assert needle in text


def test_unknown_model_is_one_line():
    with pytest.raises(SciSRError, match="unknown model; scisr models lists them"):
        hub.model_summary("no-such-model")


def test_cli_models_lists_every_shipped_model_with_its_gain(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in hub.shipped_models():
        s = hub.model_summary(name)
        row = next(line for line in out.splitlines() if line.startswith(name + " "))
        assert f"{s['gain_db']:+.2f} dB vs cubic" in row and s["domain"] in row and hub.format_size(
            s["size_bytes"]) in row
    assert "interpolation baselines: nearest, linear, cubic" in out
    assert "edsr-baseline" in out.split("architecture")[-1]


def test_cli_models_name_prints_the_card(capsys):
    assert main(["models", "sky-x2"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["model:", "sky-x2"] and "held-out PSNR" in out


def test_cli_models_unknown_name(capsys):
    assert main(["models", "nope"]) == 1
    assert capsys.readouterr().err.strip() == "error: nope: unknown model; scisr models lists them"
