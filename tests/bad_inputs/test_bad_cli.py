"""Bad options, model files, recipes, checkpoints and outputs given to ``scisr``, a full disk, and SIGTERM /
SIGINT mid-write (the catalogue is cases_cli.py): each ends with one line (``error: …`` exit 1, argparse
usage exit 2, a signal 128 + its number), nothing is written or left behind and every input is untouched."""

from __future__ import annotations

import pytest
from cases_cli import CASES, SIGNAL_CASES, run_case, run_signal_case


def test_catalogue_size():
    assert len(CASES) >= 30 and len({c.id for c in CASES}) == len(CASES)
    assert not {c.id for c in CASES} & {c.id for c in SIGNAL_CASES}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_cli_refuses(case, tmp_path):
    outcome = run_case(case, tmp_path)
    text = outcome.stderr
    assert outcome.code == case.code, text
    if case.code == 1:
        # The folder's name is left out: pytest names it after the case, whose id often holds the words.
        lines = [line.replace(str(tmp_path), "…") for line in outcome.lines]
        assert len(lines) == 1 and lines[0].startswith("error: ") and case.expect in lines[0], text
        assert "Traceback" not in text
    else:
        assert case.expect in text and "Traceback" not in text, text
    assert not outcome.changed  # nothing written, nothing left behind, nothing changed


@pytest.mark.parametrize("case", SIGNAL_CASES, ids=[c.id for c in SIGNAL_CASES])
def test_a_signal_mid_write_leaves_nothing(case, tmp_path):
    outcome, signalled = run_signal_case(case, tmp_path)
    assert signalled, f"the upscale ended before its temporary was seen: {outcome.stderr}"
    assert outcome.code == case.code, outcome.stderr
    assert outcome.stderr.splitlines() == [case.expect]
    assert not outcome.changed  # no output, no temporary; the input's hash unchanged
