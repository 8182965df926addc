"""Nightly reader fuzzing: many more seeded mutants than the test suite's 200 per format.

Usage: ``python benchmarks/fuzz_nightly.py [--mutants 5000] [--seed 1] [--keep DIR]``. Prints one row
per format (read OK / refused / failures) and the failing mutants, which stay in ``--keep`` for replay;
exits 1 when any mutant raised something other than SciSRError, hung or read insanely.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from pathlib import Path

_spec = importlib.util.spec_from_file_location("mutate", Path(__file__).parents[1] / "tests" / "fuzz" / "mutate.py")
mutate = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mutate)


def main() -> int:
    """Run the fuzzer on every format and print the table; 1 when there were failures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mutants", type=int, default=5000, help="mutants per format")
    parser.add_argument("--seed", type=int, default=int(time.time()) % 100000, help="random seed")
    parser.add_argument("--keep", type=Path, default=None, help="folder for the failing mutants")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="scisr-fuzz-"))
    print(f"seed {args.seed}, {args.mutants} mutants per format, files in {folder}")
    print(f"{'format':8} {'ok':>7} {'refused':>8} {'failures':>9} {'seconds':>8}")
    all_failures = []
    for fmt in sorted(mutate.SEEDS):
        start = time.perf_counter()
        counts, failures = mutate.fuzz(fmt, args.mutants, args.seed, folder / fmt)
        print(f"{fmt:8} {counts['ok']:7d} {counts['refused']:8d} {len(failures):9d} {time.perf_counter() - start:8.1f}")
        all_failures += failures
    for line in all_failures:
        print(line)
    return 1 if all_failures else 0


if __name__ == "__main__":
    sys.exit(main())
