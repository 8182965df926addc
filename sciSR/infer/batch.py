"""Run one job per input file, on a Dask cluster when one is given, else in a plain loop.

The job itself (read → upscale → write) is composed by :mod:`sciSR.api`; this module only decides
where each job runs and collects one result per input, failures included, so one bad file never stops
the batch.
"""

from __future__ import annotations

import dataclasses
import functools
import glob
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sciSR.errors import SciSRError


@dataclass
class JobResult:
    """Outcome of one input: ``output`` on success, else ``error`` (one line)."""

    input: str
    output: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def expand_inputs(patterns: Iterable[str | os.PathLike], suffixes: Sequence[str],
                  dicom_suffixes: Sequence[str] = (".dcm", ".dicom")) -> list[Path]:
    """Files, folders and globs → a sorted, de-duplicated list of inputs.

    Parameters
    ----------
    patterns : iterable of str or os.PathLike
        Files; globs (``"frames/*.fits"``); folders. A folder contributes its image files (known suffixes
        other than DICOM's); a folder with DICOM files (``dicom_suffixes``), or with no known image file at
        all (a DICOM series without suffixes, a study of series in sub-folders), is itself one input: a
        DICOM study whose slices are never upscaled one by one.
    suffixes : sequence of str
        Known image suffixes (lower case, e.g. ``".nii.gz"``).
    dicom_suffixes : sequence of str
        Suffixes of DICOM slice files.

    Returns
    -------
    list of pathlib.Path
    """
    def has(p: Path, known: Sequence[str]) -> bool:
        return any(p.name.lower().endswith(s) for s in known)

    found: list[Path] = []
    for pattern in patterns:
        text = os.fspath(pattern)
        matches = [Path(p) for p in sorted(glob.glob(text))] if glob.has_magic(text) else [Path(text)]
        if not matches:
            raise SciSRError("glob matches no file", text)
        for path in matches:
            if path.is_dir():
                files = [p for p in sorted(path.iterdir()) if p.is_file()]
                images = [p for p in files if has(p, suffixes) and not has(p, dicom_suffixes)]
                found.extend(images)
                if not images or any(has(p, dicom_suffixes) for p in files):
                    found.append(path)
            else:
                found.append(path)
    unique: dict[Path, None] = dict.fromkeys(found)
    return list(unique)


_WORKER_MODELS: dict[tuple[str, float], Any] = {}
_WORKER_LOCK = threading.Lock()  # a Dask worker runs several tasks in threads of one process


def worker_model(model: Any) -> Any:
    """``model`` loaded once per process when it is a model name or file path; anything else as given.

    A Dask task that received a model name would otherwise load the file and measure the network's
    receptive field for every file it upscales. Here the first task of a worker process loads it, records
    the receptive field in the model's card (``card["spec"]["receptive_field"]``, see
    :func:`sciSR.infer.receptive_field.receptive_field_radius`) and later tasks reuse the loaded model.
    A file changed on disk (new modification time) is loaded again.

    Parameters
    ----------
    model : str or os.PathLike or Any
        A shipped model name or a model file path; an interpolation name or an ``nn.Module`` passes through.

    Returns
    -------
    Any
        The loaded ``nn.Module``, or ``model`` itself.
    """
    from sciSR.infer.interpolate import INTERPOLATORS

    if not isinstance(model, str | os.PathLike) or model in INTERPOLATORS:
        return model
    path = Path(model)
    key = (os.fspath(path.resolve()), path.stat().st_mtime) if path.is_file() else (os.fspath(model), 0.0)
    with _WORKER_LOCK:
        if key not in _WORKER_MODELS:
            from sciSR.hub import load_model
            from sciSR.infer.receptive_field import receptive_field_radius

            net = load_model(model)
            receptive_field_radius(net, net.spatial_dims, net.scale, net.in_channels)
            _WORKER_MODELS[key] = net
        return _WORKER_MODELS[key]


def _with_worker_model(job: Callable[[Path], Path]) -> Callable[[Path], Path]:
    """``job`` with its model (a name or path: the ``model=`` keyword of a ``functools.partial``, or the
    ``model`` field of a dataclass job) replaced by the per-process loaded model."""
    if isinstance(job, functools.partial):
        model = job.keywords.get("model")
        if isinstance(model, str | os.PathLike):
            return functools.partial(job.func, *job.args, **{**job.keywords, "model": worker_model(model)})
    elif dataclasses.is_dataclass(job) and isinstance(getattr(job, "model", None), str | os.PathLike):
        return dataclasses.replace(job, model=worker_model(job.model))
    return job


def _run_one(job: Callable[[Path], Path], path: Path) -> JobResult:
    try:
        return JobResult(str(path), output=str(_with_worker_model(job)(path)))
    except SciSRError as err:
        message = str(err) if err.path else f"{path}: {err}"
        return JobResult(str(path), error=message)
    except Exception as err:
        return JobResult(str(path), error=f"{path}: {type(err).__name__}: {err}".replace("\n", " "))


def run_batch(
    inputs: Sequence[Path],
    job: Callable[[Path], Path],
    *,
    scheduler: Any = None,
    on_done: Callable[[JobResult, int, int], None] | None = None,
) -> list[JobResult]:
    """Run ``job(path) -> output path`` for every input.

    Parameters
    ----------
    inputs : sequence of pathlib.Path
        One job per entry.
    job : callable
        Must be picklable (a module-level function or ``functools.partial``) when a cluster is used. A
        ``functools.partial`` whose ``model=`` keyword is a model name or path gets the model loaded once
        per worker process instead (:func:`worker_model`).
    scheduler : str or distributed.Client, optional
        Address of a Dask distributed scheduler (``"tcp://host:8786"``) or a ``Client``; None runs a
        loop in this process.
    on_done : callable, optional
        ``on_done(result, n_done, n_total)`` after each job, in completion order.

    Returns
    -------
    list of JobResult
        In the order of ``inputs``.
    """
    total = len(inputs)
    results: dict[int, JobResult] = {}
    if scheduler is None:
        for i, path in enumerate(inputs):
            results[i] = _run_one(job, path)
            if on_done:
                on_done(results[i], i + 1, total)
        return [results[i] for i in range(total)]

    from distributed import Client, as_completed

    client = scheduler if isinstance(scheduler, Client) else Client(scheduler)
    try:
        futures = {client.submit(_run_one, job, path, pure=False): i for i, path in enumerate(inputs)}
        for n, future in enumerate(as_completed(futures), start=1):
            results[futures[future]] = future.result()
            if on_done:
                on_done(results[futures[future]], n, total)
    finally:
        if client is not scheduler:
            client.close()
    return [results[i] for i in range(total)]
