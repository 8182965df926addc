"""Sphinx directives of the sciSR documentation, computed at build time from the package itself.

``.. scisr-model-zoo::`` renders a table of the shipped models from their JSON cards
(``sciSR/weights/*.json``, docs/architecture.md §6.3), so the page can never disagree with the files
that ship: name, domain, scale, degradation family, the held-out gain that ``scisr models`` prints
(:func:`sciSR.hub.model_summary`), held-out PSNR/SSIM against cubic, parameters and size.

``.. scisr-cli-examples::`` shows the examples of every ``scisr`` subcommand (the epilogs of
``sciSR.cli.build_parser``) as literal blocks: they are preformatted text, which sphinx-argparse would
parse as reStructuredText.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

WEIGHTS = Path(__file__).resolve().parents[2] / "sciSR" / "weights"


def safetensors_parameters(path: Path) -> int:
    """Number of parameters stored in a ``.safetensors`` file, read from its JSON header only.

    Parameters
    ----------
    path : pathlib.Path
        The weights file.

    Returns
    -------
    int
        Sum over tensors of the product of their shapes (no tensor data is read, torch is not needed).
    """
    with path.open("rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(length))
    total = 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        count = 1
        for size in entry["shape"]:
            count *= size
        total += count
    return total


def _scale_text(scale: list[int]) -> str:
    return "×(" + ", ".join(str(s) for s in scale) + ")" if len(set(scale)) > 1 else f"×{scale[0]}"


def model_zoo_rows(weights: Path = WEIGHTS) -> list[dict[str, Any]]:
    """One row per shipped model card: what the zoo table shows.

    Parameters
    ----------
    weights : pathlib.Path
        The folder holding ``NAME.json`` cards beside ``NAME.safetensors`` weights.

    Returns
    -------
    list of dict
        Keys ``name``, ``domain``, ``scale``, ``degradation``, ``arch``, ``gain`` (the mean held-out PSNR
        gain over the baseline, as ``scisr models`` prints it), ``held_out`` (text, one line per held-out
        image), ``parameters`` and ``size_mb``, sorted by name.
    """
    from sciSR.hub import model_summary  # the same summary as `scisr models` and the napari picker

    rows = []
    for card_path in sorted(weights.glob("*.json")):
        card = json.loads(card_path.read_text())
        weights_path = card_path.with_suffix(".safetensors")
        held_out = []
        for m in card.get("held_out_metrics", []):
            held_out.append(f"{m['image']}: PSNR {m['psnr']:.2f} dB (cubic {m['psnr_cubic']:.2f}), "
                            f"SSIM {m['ssim']:.3f} (cubic {m['ssim_cubic']:.3f})")
        summary = model_summary(card)
        gain = "—" if summary["gain_db"] is None else f"{summary['gain_db']:+.2f} dB vs {summary['baseline']}"
        rows.append({
            "name": card["name"],
            "domain": card["domain"],
            "scale": _scale_text(card["scale"]),
            "degradation": card.get("spec", {}).get("degradation") or "—",
            "arch": card["arch"],
            "gain": gain,
            "held_out": held_out or ["—"],
            "parameters": safetensors_parameters(weights_path),
            "size_mb": weights_path.stat().st_size / 1e6,
            "description": card.get("description", ""),
        })
    return rows


class ModelZooDirective(SphinxDirective):
    """``.. scisr-model-zoo::``: a list-table of the shipped models, from their cards."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        rows = model_zoo_rows()
        for card_path in sorted(WEIGHTS.glob("*.json")):
            self.env.note_dependency(str(card_path))  # a retrained model rebuilds the page
        lines = [".. list-table::", "   :header-rows: 1", "   :widths: 11 7 7 10 11 10 34 10", "",
                 "   * - Name", "     - Domain", "     - Scale", "     - Degradation", "     - Architecture",
                 "     - Held-out gain", "     - Held-out images (model vs cubic B-spline)", "     - Size"]
        for row in rows:
            lines += [f"   * - ``{row['name']}``", f"     - {row['domain']}", f"     - {row['scale']}",
                      f"     - {row['degradation']}", f"     - {row['arch']}", f"     - {row['gain']}",
                      "     - " + "; ".join(row["held_out"]),
                      f"     - {row['parameters'] / 1e3:.0f} k parameters, {row['size_mb']:.2f} MB"]
        container = nodes.container()
        self.state.nested_parse(StringList(lines, source="sciSR/weights/*.json"), self.content_offset, container)
        # The cards' descriptions are plain text (they may hold backticks or asterisks): never parsed as markup.
        for row in rows:
            container += nodes.paragraph("", "", nodes.literal(row["name"], row["name"]),
                                         nodes.Text(": " + row["description"]))
        return container.children


def _subparsers(parser: Any) -> dict[str, Any]:
    """The subcommand parsers of an ``argparse.ArgumentParser``, by name."""
    import argparse

    found: dict[str, Any] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found.update(action.choices)
    return found


def cli_parser() -> Any:
    """``sciSR.cli.build_parser()`` without the subcommands' epilogs, for sphinx-argparse.

    The epilogs are preformatted examples (``RawDescriptionHelpFormatter``) that sphinx-argparse would
    parse as reStructuredText; ``.. scisr-cli-examples::`` shows them as literal blocks instead.

    Returns
    -------
    argparse.ArgumentParser
        The parser of ``scisr``.
    """
    from sciSR.cli import build_parser

    parser = build_parser()
    for sub in _subparsers(parser).values():
        sub.epilog = None
    return parser


class CliExamplesDirective(SphinxDirective):
    """``.. scisr-cli-examples::``: one rubric and literal block per subcommand that has examples."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        from sciSR.cli import build_parser

        out: list[nodes.Node] = []
        for name, sub in _subparsers(build_parser()).items():
            if sub.epilog:
                out.append(nodes.rubric(text=f"scisr {name}"))
                out.append(nodes.literal_block(sub.epilog.strip(), sub.epilog.strip(), language="text"))
        return out


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("scisr-model-zoo", ModelZooDirective)
    app.add_directive("scisr-cli-examples", CliExamplesDirective)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
