"""The bad-input catalogue (tests/bad_inputs/) as a markdown table: case → message → exit code.

Usage: ``python benchmarks/bad_input_table.py [--out FILE]``. Every case is actually run: the damaged files
of ``cases_readers.py`` through ``scisr info FILE``, the command lines of ``cases_cli.py`` through ``scisr``
in this process (under their patches: an environment variable, a writer filling the disk), and the signal
cases by killing a real ``scisr upscale`` in a child process while it writes. The last column says whether
the case met its contract: the expected exit code, one ``error:`` line holding the expected words (argparse's
usage text for exit 2), nothing written or left behind, inputs unchanged. Exits 1 when any case did not.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "bad_inputs"))

# Found through the path set just above.
import cases_cli
import cases_readers


def _cell(text: str, folder: Path) -> str:
    """``text`` for a table cell: the case's temporary folder shortened, pipes escaped."""
    return text.replace(str(folder), "…").replace("|", "\\|")


def _usage_line(stderr: str) -> str:
    """argparse's last line (``scisr upscale: error: …``), the one that says what is wrong."""
    lines = stderr.strip().splitlines()
    return lines[-1] if lines else ""


def reader_rows() -> list[tuple[str, str, str, str, bool]]:
    """``(group, case, message, exit code, met)`` for each damaged file, read by ``scisr info``."""
    rows = []
    for case in cases_readers.CASES:
        with tempfile.TemporaryDirectory() as name:
            folder = Path(name)
            path = case.build(folder)
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            before = cases_cli.snapshot(folder)
            code, stderr = cases_cli.run_main(["info", str(path)])
            errors = [ln for ln in stderr.splitlines() if ln.startswith("error:")]
            met = (code == 1 and len(errors) == 1 and case.expect in errors[0] and path.name in errors[0]
                   and hashlib.sha256(path.read_bytes()).hexdigest() == digest
                   and cases_cli.snapshot(folder) == before)
            rows.append(("reader", case.id, _cell(errors[0] if errors else stderr.strip(), folder), str(code), met))
    return rows


def cli_rows() -> list[tuple[str, str, str, str, bool]]:
    """``(group, case, message, exit code, met)`` for each command line of the CLI catalogue."""
    rows = []
    for case in cases_cli.CASES:
        with tempfile.TemporaryDirectory() as name:
            folder = Path(name)
            outcome = cases_cli.run_case(case, folder)
            if case.code == 2:
                line = _usage_line(outcome.stderr)
                met = outcome.code == 2 and case.expect in outcome.stderr
            else:
                line = outcome.lines[0] if outcome.lines else ""
                met = outcome.code == case.code and len(outcome.lines) == 1 and case.expect in line
            met = met and "Traceback" not in outcome.stderr and not outcome.changed
            rows.append(("cli", case.id, _cell(line, folder), str(outcome.code), met))
    for case in cases_cli.SIGNAL_CASES:
        with tempfile.TemporaryDirectory() as name:
            folder = Path(name)
            outcome, signalled = cases_cli.run_signal_case(case, folder)
            met = (signalled and outcome.code == case.code and outcome.stderr.splitlines() == [case.expect]
                   and not outcome.changed)
            rows.append(("signal", case.id, _cell(outcome.stderr.strip(), folder), str(outcome.code), met))
    return rows


def main() -> int:
    """Run every case, print the table (and write it to ``--out``); 1 when a case missed its contract."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="also write the table to this file")
    args = parser.parse_args()
    start = time.perf_counter()
    rows = reader_rows() + cli_rows()
    lines = ["| # | group | case | message | exit | contract met |", "| --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {i} | {group} | `{case}` | {message} | {code} | {'yes' if met else '**no**'} |"
              for i, (group, case, message, code, met) in enumerate(rows, 1)]
    counts = {group: sum(r[0] == group for r in rows) for group in ("reader", "cli", "signal")}
    missed = [r[1] for r in rows if not r[4]]
    lines += ["", f"{len(rows)} cases ({counts['reader']} reader, {counts['cli']} command line, {counts['signal']} "
              f"signal); {len(rows) - len(missed)} met their contract"
              + (f"; missed: {', '.join(missed)}" if missed else "")
              + f" ({time.perf_counter() - start:.0f} s)."]
    table = "\n".join(lines)
    print(table)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(table + "\n")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
