"""Export a sciSR model as a BioImage Model Zoo package (bioimage.io model description, format 0.5).

The package is a folder, or a ``.zip`` of the same files, holding ``rdf.yaml``; the network as
TorchScript (``weights.torchscript.pt``: no sciSR code is needed to run it); a test input and the output
the model gives for it (``test_input.npy``, ``test_output.npy``, batch and channel axes included; also as
TIFF samples, ``sample_input.tif``/``sample_output.tif``, without the batch axis); a cover image
(``cover.png``: input beside output, 2:1) and ``README.md`` generated from the card.

The card's intensity normalisation becomes the model's preprocessing where bioimage.io has the same
operation (``percentile`` → ``scale_range``, ``ct_window`` → ``scale_linear``); the output stays in
normalised units, since bioimage.io has no step that inverts a preprocessing. An ``asinh`` (sky) model
expects an already normalised input, which the README says.

Validation (:func:`validate_package`) runs the spec's own validator offline: the description names no
URL (papers are cited by DOI), so its file checks read only the package.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn

from sciSR.errors import SciSRError
from sciSR.io.atomic import atomic_output
from sciSR.version import __version__

# bioimage.io format of the written rdf.yaml (the one bioimageio.spec 0.5.14 implements).
FORMAT_VERSION = "0.5.14"
LICENCE = "BSD-3-Clause"
AUTHORS = [{"name": "sciSR contributors"}]
# DOIs of the architectures' papers: bioimage.io citations need a DOI or a URL, and a URL would make the
# offline validator reach the network. Exporting an architecture not listed here is refused.
PAPER_DOI = {
    "srcnn": "10.1109/TPAMI.2015.2439281",
    "espcn": "10.1109/CVPR.2016.207",
    "vdsr": "10.1109/CVPR.2016.182",
    "edsr": "10.1109/CVPRW.2017.151",
    "edsr-baseline": "10.1109/CVPRW.2017.151",
    "srresnet": "10.1109/CVPR.2017.19",
    "rcan": "10.1007/978-3-030-01234-2_18",
    "rrdbnet": "10.1007/978-3-030-11021-5_5",
}
# Physical unit of a pixel per domain; sky pixels are angles, which bioimage.io space axes cannot carry.
DOMAIN_UNIT = {"mri": "millimeter", "ct": "millimeter"}
AXIS_IDS = {2: ("y", "x"), 3: ("z", "y", "x")}
TEST_SIZE = {2: 64, 3: 24}
COVER_HEIGHT = 256


def _test_image(card: dict[str, Any]) -> np.ndarray:
    """A small domain-like image (float32, ``TEST_SIZE`` per axis) from sciSR's phantoms, in raw units."""
    from sciSR.data import phantoms

    dims = card["spatial_dims"]
    shape = (TEST_SIZE[dims],) * dims
    domain = card["domain"]
    if domain == "mri" and dims == 3:
        array = phantoms.knee_phantom(shape).array
    elif domain == "mri":
        # The knee phantom is a volume: its middle slice is the 2D image.
        array = phantoms.knee_phantom((*shape, 8)).array[..., 4]
    elif domain == "ct" and dims == 2:
        array = phantoms.ct_phantom(shape).array
    elif domain == "sky" and dims == 2:
        array = phantoms.star_field(shape).array
    else:
        array = phantoms.generic_scene(shape).array
    return np.asarray(array, dtype=np.float32).reshape(shape)


def _preprocessing(card: dict[str, Any], axes: tuple[str, ...]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The rdf preprocessing of the card's normalisation, and the sciSR normalisation to compute test outputs.

    Returns
    -------
    steps : list of dict
        bioimage.io preprocessing steps (empty when none matches: the input is then taken as normalised).
    params : dict
        :func:`sciSR.intensity.normalize` parameters applying the same map to the test input, or
        ``{"method": "none"}``.
    """
    norm = card["normalisation"]
    method = norm.get("method", "percentile")
    if method == "percentile":
        low_q, high_q = float(norm.get("low_q", 0.5)), float(norm.get("high_q", 99.5))
        return ([{"id": "scale_range", "kwargs": {"axes": list(axes), "min_percentile": low_q,
                                                  "max_percentile": high_q}}],
                {"method": "percentile", "low_q": low_q, "high_q": high_q})
    if method == "ct_window":
        low, high = float(norm.get("low", -1024.0)), float(norm.get("high", 3071.0))
        return ([{"id": "scale_linear", "kwargs": {"gain": 1.0 / (high - low), "offset": -low / (high - low)}}],
                {"method": "ct_window", "low": low, "high": high})
    return [], {"method": "none"}


def _normalise(array: np.ndarray, params: dict[str, Any]) -> np.ndarray:
    """``array`` (batch, channel, spatial...) mapped as the rdf preprocessing maps it: percentiles per sample and
    channel over the spatial axes, as bioimage.io's ``scale_range`` over those axes."""
    if params["method"] == "percentile":
        spatial = tuple(range(2, array.ndim))
        low = np.percentile(array, params["low_q"], axis=spatial, keepdims=True)
        high = np.percentile(array, params["high_q"], axis=spatial, keepdims=True)
        # bioimage.io's scale_range adds eps = 1e-6 to the denominator.
        return ((array - low) / (high - low + 1e-6)).astype(np.float32)
    if params["method"] == "ct_window":
        return ((array - params["low"]) / (params["high"] - params["low"])).astype(np.float32)
    return array.astype(np.float32)


def _cover(test_in: np.ndarray, test_out: np.ndarray) -> bytes:
    """PNG bytes: the (middle plane of the) test input, enlarged to the output grid, beside the output (2:1)."""
    from PIL import Image

    def plane(a: np.ndarray) -> np.ndarray:
        a = a[0, 0]
        return a[a.shape[0] // 2] if a.ndim == 3 else a

    def grey(a: np.ndarray, low: float, high: float) -> Image.Image:
        scaled = np.clip((a - low) / max(high - low, 1e-12), 0, 1)
        return Image.fromarray((scaled * 255).astype(np.uint8)).resize((COVER_HEIGHT, COVER_HEIGHT),
                                                                       Image.Resampling.NEAREST)

    lr, sr = plane(test_in), plane(test_out)
    low, high = (float(v) for v in np.percentile(sr, [0.5, 99.5]))
    lr_low, lr_high = (float(v) for v in np.percentile(lr, [0.5, 99.5]))
    canvas = Image.new("L", (2 * COVER_HEIGHT, COVER_HEIGHT))
    canvas.paste(grey(lr, lr_low, lr_high), (0, 0))
    canvas.paste(grey(sr, low, high), (COVER_HEIGHT, 0))
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG")
    return buffer.getvalue()


def _validation_lines(summary: dict[str, Any]) -> list[str]:
    """README lines on the held-out images: PSNR of the model and of its interpolation baseline."""
    if not summary["held_out"]:
        return ["The card records no held-out metrics."]
    lines = [f"PSNR on images never trained on (simulated low-res inputs), model vs {summary['baseline']} "
             f"interpolation; mean gain {summary['gain_db']:+.2f} dB:", ""]
    lines += [f"- {r['image']}: {r['psnr']:.2f} dB vs {r['psnr_baseline']:.2f} dB ({r['delta_db']:+.2f} dB)"
              for r in summary["held_out"]]
    return lines


def _readme(card: dict[str, Any], name: str, normalised_input: bool, summary: dict[str, Any],
            description: list[str]) -> str:
    """The package documentation: what the model does, how to feed it, and its card."""
    scale = "×".join(map(str, card["scale"]))
    axes = ", ".join(AXIS_IDS[card["spatial_dims"]])
    feed = ("The input must already be normalised as sciSR does it "
            f"({json.dumps(card['normalisation'])}); bioimage.io has no such preprocessing step."
            if normalised_input else
            "The rdf preprocessing applies the card's normalisation; the output stays in those normalised "
            "units (sciSR's `upscale` maps them back to the input's intensities).")
    return "\n".join([
        f"# sciSR {name}",
        "",
        card.get("description", f"{card['arch']} super-resolution ×{scale}."),
        "",
        "## Use",
        "",
        f"A {card['spatial_dims']}D network: the output is ×{scale} along ({axes}) on the input's field of view "
        "(each output pixel covers 1/factor of an input pixel). " + feed,
        "Outside bioimage.io, `scisr upscale in out --model "
        f"{name}` keeps the file's geometry (affine, WCS, DICOM tags) and tiles large inputs.",
        "",
        "## Validation",
        "",
        *_validation_lines(summary),
        "",
        "## Model card",
        "",
        "```",
        *description,
        "```",
        "",
        f"Exported by sciSR {__version__}.",
        "",
    ])


def _rdf(card: dict[str, Any], name: str, steps: list[dict[str, Any]], sha: dict[str, str]) -> dict[str, Any]:
    """The rdf.yaml content; ``sha`` maps each package file name to its sha256."""
    from sciSR import models

    dims = card["spatial_dims"]
    ids = AXIS_IDS[dims]
    unit = DOMAIN_UNIT.get(card["domain"])
    window = int(card["spec"].get("window_multiple") or 1)
    channels = [f"c{i}" for i in range(card["in_channels"])]
    out_channels = [f"c{i}" for i in range(card["out_channels"])]

    def source(file: str) -> dict[str, str]:
        return {"source": file, "sha256": sha[file]}

    def space(axis: str, size: Any, scale: float) -> dict[str, Any]:
        return {"type": "space", "id": axis, "size": size, "scale": scale, **({"unit": unit} if unit else {})}

    in_axes = [{"type": "batch"}, {"type": "channel", "channel_names": channels},
               *(space(a, {"min": max(8, window), "step": window}, 1.0) for a in ids)]
    out_axes = [{"type": "batch"}, {"type": "channel", "channel_names": out_channels},
                *(space(a, {"tensor_id": "input", "axis_id": a}, 1.0 / f)
                  for a, f in zip(ids, card["scale"], strict=True))]
    paper = next((m["paper"] for m in models.list_architectures() if m["name"] == card["arch"]), None)
    if card["arch"] not in PAPER_DOI:
        raise SciSRError(f"no DOI known for the {card['arch']} paper ({paper}); bioimage.io needs one "
                         "(add it to sciSR.export_bioimageio.PAPER_DOI)")
    scale = "x".join(map(str, card["scale"]))
    return {
        "type": "model",
        "format_version": FORMAT_VERSION,
        "name": f"sciSR {name}",
        "description": f"{card['domain']} super-resolution x{scale} ({card['arch']}, {dims}D), exported by sciSR",
        "authors": AUTHORS,
        "cite": [{"text": paper, "doi": PAPER_DOI[card["arch"]]}],
        "license": LICENCE,
        "documentation": source("README.md"),
        "covers": [source("cover.png")],
        "tags": ["super-resolution", f"{dims}d", card["domain"], card["arch"], "pytorch"],
        "version": __version__,
        "inputs": [{"id": "input", "axes": in_axes, "test_tensor": source("test_input.npy"),
                    "sample_tensor": source("sample_input.tif"),
                    "data": {"type": "float32"}, "preprocessing": steps}],
        "outputs": [{"id": "output", "axes": out_axes, "test_tensor": source("test_output.npy"),
                     "sample_tensor": source("sample_output.tif"),
                     "data": {"type": "float32"}}],
        "weights": {"torchscript": {**source("weights.torchscript.pt"),
                                    "pytorch_version": torch.__version__.split("+")[0]}},
        "config": {"scisr": {"card": json.loads(json.dumps(card, default=str))}},
    }


def export_bioimageio(model: nn.Module, card: dict[str, Any], path: str | os.PathLike, *,
                      summary: dict[str, Any], description: list[str], overwrite: bool = False) -> Path:
    """Write a bioimage.io model package of ``model`` to a folder, or to a ``.zip`` file.

    Parameters
    ----------
    model : nn.Module
        A network with a card, on the CPU in eval mode.
    card : dict
        Its validated card (:func:`sciSR.hub.card_of`).
    path : str or os.PathLike
        Output folder, or a file ending in ``.zip``.
    summary, description
        :func:`sciSR.hub.model_summary` and :func:`sciSR.hub.describe_card` of the card (for the README;
        passed in so this module never imports the hub that calls it).
    overwrite : bool
        Replace an existing output.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    SciSRError
        A multi-input model (the package describes one input tensor), a network that expects an input
        already on the output grid, an architecture whose paper has no known DOI, or an existing output
        without ``overwrite``.
    """
    from sciSR.intensity import fit_normalization, normalize

    if card["spec"].get("inputs", "image") != "image":
        raise SciSRError(f"bioimage.io export takes single-image models; this one takes {card['spec']['inputs']}",
                         path)
    if card["spec"].get("input_on_output_grid"):
        # Its rdf would need an interpolation step before the network, which bioimage.io does not have.
        raise SciSRError("bioimage.io export takes networks that upscale themselves; this one expects its input "
                         "interpolated onto the output grid", path)
    name = str(card.get("name") or card["arch"])
    steps, params = _preprocessing(card, AXIS_IDS[card["spatial_dims"]])
    raw = _test_image(card)
    if not steps:
        # No bioimage.io step matches the normalisation: the package's input is the normalised image.
        norm = dict(card["normalisation"])
        raw = normalize(raw, fit_normalization(raw, norm.pop("method"), **norm)).astype(np.float32)
    test_in = np.repeat(raw[None, None], card["in_channels"], axis=1)
    with torch.no_grad():
        net_in = torch.from_numpy(_normalise(test_in, params))
        traced = torch.jit.trace(model, net_in)
        test_out = traced(net_in).numpy().astype(np.float32)
    weights = io.BytesIO()
    torch.jit.save(traced, weights)
    files = {"weights.torchscript.pt": weights.getvalue(), "test_input.npy": _npy(test_in),
             "test_output.npy": _npy(test_out), "sample_input.tif": _tif(test_in),
             "sample_output.tif": _tif(test_out), "cover.png": _cover(test_in, test_out),
             "README.md": _readme(card, name, not steps, summary, description).encode()}
    sha = {file: hashlib.sha256(data).hexdigest() for file, data in files.items()}
    rdf = _rdf(card, name, steps, sha)
    files["rdf.yaml"] = yaml.safe_dump(rdf, sort_keys=False, allow_unicode=True).encode()
    zipped = Path(path).suffix == ".zip"
    with atomic_output(path, overwrite=overwrite, folder=not zipped) as tmp:
        if zipped:
            with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
                for file, data in files.items():
                    archive.writestr(file, data)
        else:
            for file, data in files.items():
                (tmp / file).write_bytes(data)
    return Path(path)


def _tif(array: np.ndarray) -> bytes:
    """A float32 TIFF of the tensor without its batch axis (the sample images people open in a viewer)."""
    import tifffile

    buffer = io.BytesIO()
    tifffile.imwrite(buffer, array[0])
    return buffer.getvalue()


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def validate_package(path: str | os.PathLike) -> list[str]:
    """Validate a bioimage.io package with bioimageio.spec, offline.

    Parameters
    ----------
    path : str or os.PathLike
        A package folder (with ``rdf.yaml``), its ``rdf.yaml``, or a ``.zip`` package.

    Returns
    -------
    list of str
        The validator's errors, one line each; empty when the package is valid. File checks (hashes,
        test tensor shapes against the axes) run on the package's own files; nothing is downloaded.

    Raises
    ------
    SciSRError
        bioimageio.spec is not installed (``pip install 'scisr[export]'``).
    """
    try:
        from bioimageio.spec import load_description
    except ImportError:
        raise SciSRError("validating a bioimage.io package needs bioimageio.spec "
                         "(pip install 'scisr[export]')", path) from None
    source = Path(path)
    if source.is_dir():
        source = source / "rdf.yaml"
    if not source.is_file():
        # bioimageio.spec would take a missing path for a zoo id and look it up online.
        raise SciSRError("no bioimage.io package here (expected a .zip, rdf.yaml or a folder holding one)", path)
    descr = load_description(source, perform_io_checks=True)
    summary = descr.validation_summary
    return [f"{'.'.join(map(str, e.loc))}: {e.msg}".splitlines()[0] for e in summary.errors] if \
        summary.status == "failed" else []
