"""Fuzzing in the suite: 200 seeded mutants per format, each read sanely or refused with SciSRError.

The counts (read OK / refused) are printed (``pytest -s``) and attached as user properties; the
longer run is benchmarks/fuzz_nightly.py.
"""

import pytest
from mutate import SEEDS, fuzz

MUTANTS = 200


@pytest.mark.parametrize("fmt", sorted(SEEDS))
def test_mutants_are_read_sanely_or_refused(fmt, tmp_path, record_property):
    counts, failures = fuzz(fmt, MUTANTS, seed=20261205, folder=tmp_path)
    print(f"\nfuzz {fmt}: {MUTANTS} mutants, {counts['ok']} read OK, {counts['refused']} refused, "
          f"{len(failures)} failures")
    record_property(f"fuzz_{fmt}", dict(counts))
    assert sum(counts.values()) == MUTANTS
    assert failures == []
    # The mutator must damage enough to matter: a run where nothing is refused tests nothing.
    assert counts["refused"] >= MUTANTS // 10
