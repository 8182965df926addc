"""Seeded mutation fuzzing of the readers: damaged copies of small valid files must be read sanely or
refused with SciSRError — never another exception, a hang or an insane image.

Used by test_fuzz_readers.py (200 mutants per format) and benchmarks/fuzz_nightly.py (many more).
"""

from __future__ import annotations

import importlib.util
import logging
import math
import signal
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np

import sciSR
from sciSR.errors import SciSRError
from sciSR.io.validate import MEDICAL_SPACING_MM, SKY_SPACING_DEG

_BUILDERS = Path(__file__).parents[1] / "bad_inputs" / "builders.py"
_spec = importlib.util.spec_from_file_location("fuzz_builders", _BUILDERS)
builders = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(builders)

# Seed files and the span of leading bytes that holds their header (most mutations land there).
SEEDS: dict[str, tuple[Callable[[Path], Path], int]] = {
    "dicom": (lambda d: builders.dicom_file(d, "seed.dcm"), 600),
    "nifti": (lambda d: builders.nifti_file(d, "seed.nii"), 352),
    "fits": (lambda d: builders.fits_file(d, "seed.fits"), 2880),
    "png": (lambda d: builders.png_file(d, "seed.png", mode="RGB"), 64),
    "tiff": (lambda d: builders.tiff_file(d, "seed.tif"), 512),
}
# Values that break parsers most often: zero, all ones, sign bits, ASCII digits and separators.
_SPECIAL = [b"\x00", b"\xff", b"\x80", b"\x7f", b"-", b"9", b"0", b",", b".", b"n", b"'", b"\\", b" "]
TIME_LIMIT_S = 5.0
# tifffile logs every damaged tag it skips: thousands of lines per run that say nothing about the outcome.
logging.getLogger("tifffile").setLevel(logging.CRITICAL)


class HangError(Exception):
    """A read ran past the per-case time limit."""


def mutate(data: bytes, header: int, rng: np.random.Generator) -> bytes:
    """One random damage: byte flips, special bytes, a random run, truncation, insertion or deletion."""
    buf = bytearray(data)
    span = min(header, len(buf))
    kind = rng.integers(6)
    if kind == 0:  # flip a few bits in the header
        for _ in range(rng.integers(1, 6)):
            buf[rng.integers(span)] ^= 1 << int(rng.integers(8))
    elif kind == 1:  # special bytes in the header
        for _ in range(rng.integers(1, 4)):
            i = int(rng.integers(span))
            value = _SPECIAL[rng.integers(len(_SPECIAL))]
            buf[i:i + 1] = value
    elif kind == 2:  # a run of random bytes anywhere
        i = int(rng.integers(len(buf)))
        n = int(rng.integers(1, 16))
        buf[i:i + n] = rng.integers(0, 256, size=min(n, len(buf) - i), dtype=np.uint8).tobytes()
    elif kind == 3:  # truncation
        del buf[int(rng.integers(1, len(buf))):]
    elif kind == 4:  # insert bytes (shifts everything after)
        i = int(rng.integers(len(buf)))
        buf[i:i] = rng.integers(0, 256, size=int(rng.integers(1, 9)), dtype=np.uint8).tobytes()
    else:  # delete bytes
        i = int(rng.integers(len(buf)))
        del buf[i:i + int(rng.integers(1, 9))]
    return bytes(buf)


def insanity(img: sciSR.SciImage) -> str | None:
    """Why a read image is not sane, or None."""
    if img.array.size == 0:
        return f"empty array {img.array.shape}"
    if len(img.spacing) != img.spatial_ndim or img.spatial_ndim < 2:
        return f"spacing {img.spacing} for shape {img.array.shape} (channel axis {img.channel_axis})"
    if img.array.dtype.kind == "f" and not np.isfinite(img.array).any():
        return "no finite value"
    if not all(math.isfinite(s) and s > 0 for s in img.spacing):
        return f"spacing {img.spacing}"
    if img.affine is not None:
        if not np.all(np.isfinite(img.affine)):
            return "non-finite affine"
        columns = img.affine[:3, : img.spatial_ndim]
        singular = np.linalg.svd(columns, compute_uv=False)
        if not singular[-1] > 1e-9 * singular[0]:
            return "singular affine"
        lo, hi = MEDICAL_SPACING_MM
        if not all(lo <= s <= hi for s in img.spacing):
            return f"spacing {img.spacing} mm out of range"
    if img.wcs is not None:
        lo, hi = SKY_SPACING_DEG
        if not all(lo <= s <= hi for s in img.spacing):
            return f"spacing {img.spacing} deg out of range"
    return None


def _alarm(signum, frame):
    raise HangError


def read_one(path: Path) -> tuple[str, str]:
    """("ok" | "refused" | "hang" | "insane" | "crash", detail) for one read under the time limit."""
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, TIME_LIMIT_S)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img = sciSR.read(path)
    except SciSRError as err:
        return ("refused", "") if "\n" not in str(err) else ("crash", f"multi-line message: {err!r}")
    except HangError:
        return "hang", f"over {TIME_LIMIT_S} s"
    except Exception as err:  # the point of fuzzing: anything but SciSRError is a bug
        return "crash", f"{type(err).__name__}: {err}"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    why = insanity(img)
    return ("insane", why) if why else ("ok", "")


def fuzz(fmt: str, n: int, seed: int, folder: Path) -> tuple[Counter, list[str]]:
    """Read ``n`` mutants of the ``fmt`` seed file; outcome counts and descriptions of the failures."""
    build, header = SEEDS[fmt]
    folder.mkdir(parents=True, exist_ok=True)
    original = build(folder).read_bytes()
    rng = np.random.default_rng(seed)
    counts: Counter = Counter()
    failures = []
    suffix = SEEDS_SUFFIX[fmt]
    for i in range(n):
        data = original
        for _ in range(int(rng.integers(1, 4))):  # up to three damages stacked
            data = mutate(data, header, rng) if len(data) > 1 else data
        path = folder / f"mutant{i}{suffix}"
        path.write_bytes(data)
        outcome, detail = read_one(path)
        counts[outcome] += 1
        if outcome not in ("ok", "refused"):
            kept = folder / f"failure{i}{suffix}"
            path.rename(kept)
            failures.append(f"{fmt} seed {seed} mutant {i} ({kept}): {outcome}: {detail}")
        else:
            path.unlink()
    return counts, failures


SEEDS_SUFFIX = {"dicom": ".dcm", "nifti": ".nii", "fits": ".fits", "png": ".png", "tiff": ".tif"}
