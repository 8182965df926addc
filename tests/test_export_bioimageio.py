"""BioImage Model Zoo export (issue 21, item 5): packages pass bioimageio.spec's own validator, offline."""

import zipfile

import numpy as np
import pytest
import torch
import yaml

pytest.importorskip("bioimageio.spec")

from sciSR import hub
from sciSR.cli import main
from sciSR.errors import SciSRError
from sciSR.export_bioimageio import validate_package
from sciSR.models import create_model


@pytest.fixture(scope="module")
def generic_package(tmp_path_factory):
    out = tmp_path_factory.mktemp("bio") / "generic-x2"
    assert main(["export", "generic-x2", str(out), "--format", "bioimageio"]) == 0
    return out


def test_shipped_2d_model_package_is_valid(generic_package):
    assert validate_package(generic_package) == []
    names = {p.name for p in generic_package.iterdir()}
    assert {"rdf.yaml", "weights.torchscript.pt", "test_input.npy", "test_output.npy", "cover.png",
            "README.md"} <= names


def test_package_tensors_are_the_model_on_its_preprocessed_input(generic_package):
    rdf = yaml.safe_load((generic_package / "rdf.yaml").read_text())
    test_in = np.load(generic_package / "test_input.npy")
    test_out = np.load(generic_package / "test_output.npy")
    assert test_out.shape == (1, 1, 2 * test_in.shape[2], 2 * test_in.shape[3])
    kwargs = rdf["inputs"][0]["preprocessing"][0]["kwargs"]
    low, high = np.percentile(test_in, [kwargs["min_percentile"], kwargs["max_percentile"]])
    net = hub.load_model("generic-x2")
    with torch.no_grad():
        expected = net(torch.from_numpy(((test_in - low) / (high - low + 1e-6)).astype(np.float32))).numpy()
    np.testing.assert_allclose(test_out, expected, atol=1e-4)
    # The traced weights follow the input size: bioimage.io tiles with other sizes than the test tensor.
    scripted = torch.jit.load(generic_package / "weights.torchscript.pt")
    assert scripted(torch.rand(1, 1, 24, 40)).shape == (1, 1, 48, 80)
    assert [a.get("scale") for a in rdf["outputs"][0]["axes"][2:]] == [0.5, 0.5]
    assert rdf["cite"][0]["doi"] and rdf["license"] == "BSD-3-Clause"
    assert "## Validation" in (generic_package / "README.md").read_text()


def test_validator_catches_a_changed_file(generic_package, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    for p in generic_package.iterdir():
        (broken / p.name).write_bytes(p.read_bytes())
    np.save(broken / "test_output.npy", np.zeros((1, 1, 8, 8), np.float32))
    assert validate_package(broken)


def test_zip_package_of_a_3d_model(tmp_path):
    torch.manual_seed(0)
    model = create_model("edsr-baseline", scale=(1, 2, 2), spatial_dims=3, n_blocks=1, features=8)
    hub.save_model(model, tmp_path / "vol.safetensors", name="vol-test", domain="mri")
    out = hub.export_model(hub.load_model(tmp_path / "vol.safetensors"), tmp_path / "vol.zip", "bioimageio")
    assert validate_package(out) == []
    with zipfile.ZipFile(out) as archive:
        rdf = yaml.safe_load(archive.read("rdf.yaml"))
    assert [a["id"] for a in rdf["inputs"][0]["axes"][2:]] == ["z", "y", "x"]
    assert [a["scale"] for a in rdf["outputs"][0]["axes"][2:]] == [1.0, 0.5, 0.5]
    assert rdf["outputs"][0]["axes"][2]["unit"] == "millimeter"


def test_missing_package_is_an_error_not_a_lookup(tmp_path):
    with pytest.raises(SciSRError, match=r"no bioimage\.io package here"):
        validate_package(tmp_path / "absent")
