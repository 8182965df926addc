"""Scratch files in one place the user sets (``SCISR_SCRATCH``) and the output size guard (issue 15 item 3)."""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest

from sciSR import paging
from sciSR.errors import SciSRError
from sciSR.paging import MAX_OUTPUT_BYTES, SCRATCH_ENV, check_output_size, disk_array, scratch_folder

GiB = 2**30


@pytest.fixture
def no_scratch_env(monkeypatch):
    monkeypatch.delenv(SCRATCH_ENV, raising=False)


def test_scratch_folder_is_the_variable_else_the_callers_folder_else_the_system_temp(tmp_path, monkeypatch,
                                                                                      no_scratch_env):
    import tempfile

    beside = tmp_path / "out"
    beside.mkdir()
    assert scratch_folder(beside) == beside
    assert scratch_folder() == Path(tempfile.gettempdir())
    chosen = tmp_path / "scratch"
    chosen.mkdir()
    monkeypatch.setenv(SCRATCH_ENV, str(chosen))
    assert scratch_folder(beside) == chosen and scratch_folder() == chosen
    monkeypatch.setenv(SCRATCH_ENV, "")  # set but empty: as if unset
    assert scratch_folder(beside) == beside


def test_disk_array_puts_its_file_in_scisr_scratch(tmp_path, monkeypatch):
    monkeypatch.setenv(SCRATCH_ENV, str(tmp_path))
    with disk_array((3, 7), np.float32) as arr:
        (scratch,) = tmp_path.iterdir()
        arr[:] = 2.0
        arr.flush()
        assert scratch.stat().st_size == 3 * 7 * 4
    assert list(tmp_path.iterdir()) == []
    elsewhere = tmp_path / "explicit"
    elsewhere.mkdir()
    with disk_array((2,), folder=elsewhere):  # an explicit folder is used as given
        assert len(list(elsewhere.iterdir())) == 1 and sorted(p.name for p in tmp_path.iterdir()) == ["explicit"]


def test_a_missing_or_unusable_scratch_folder_is_one_line_naming_it(tmp_path, monkeypatch):
    missing = tmp_path / "nope"
    monkeypatch.setenv(SCRATCH_ENV, str(missing))
    with pytest.raises(SciSRError) as info:
        scratch_folder(tmp_path)
    assert str(info.value) == f"{missing}: scratch folder (set by {SCRATCH_ENV}) does not exist or is not a folder"
    with pytest.raises(SciSRError, match="does not exist"), disk_array((2, 2)):
        pass
    (tmp_path / "file").write_text("x")
    monkeypatch.setenv(SCRATCH_ENV, str(tmp_path / "file"))
    with pytest.raises(SciSRError, match="not a folder"):
        scratch_folder()
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        monkeypatch.setenv(SCRATCH_ENV, str(locked))
        with pytest.raises(SciSRError, match="is not writable"):
            scratch_folder()


def test_check_output_size_refuses_above_the_cap_unless_forced(tmp_path):
    out = tmp_path / "big.fits"
    nbytes = 96_000 * 96_000 * 4  # float32 96² × 1000
    check_output_size(10 * 2**20, force=False, path=out)
    check_output_size(nbytes, force=True, path=out)
    with pytest.raises(SciSRError) as info:
        check_output_size(nbytes, force=False, path=out, limit=nbytes - 1)
    message = str(info.value)
    assert message.startswith(f"{out}: the result would take 34.3 GiB, more than sciSR's limit without --force")
    assert "force=True (CLI: --force)" in message and "\n" not in message
    with pytest.raises(SciSRError, match=r"limit without --force \(64\.0 GiB\)"):
        check_output_size(MAX_OUTPUT_BYTES + 1, force=False, path=out)


def test_check_output_size_refuses_what_the_output_folder_cannot_hold(tmp_path, monkeypatch):
    usage = namedtuple("usage", "total used free")
    asked = []

    def disk_usage(folder):
        asked.append(Path(folder))
        return usage(100 * GiB, 99 * GiB, GiB)

    monkeypatch.setattr(shutil, "disk_usage", disk_usage)
    series = tmp_path / "new" / "series"  # a DICOM folder not made yet: the nearest existing folder counts
    with pytest.raises(SciSRError) as info:
        check_output_size(2 * GiB, force=False, path=series)
    assert str(info.value) == (f"{series}: the result would take 2.0 GiB, more than the free space in {tmp_path} "
                               "(1.0 GiB); check the scale, or pass force=True (CLI: --force) to go ahead anyway")
    assert asked == [tmp_path]
    check_output_size(GiB // 2, force=False, path=series)
    check_output_size(2 * GiB, force=True, path=series)


def test_check_output_size_in_memory_is_bounded_by_the_available_ram(monkeypatch):
    monkeypatch.setattr(paging, "available_ram", lambda: 3 * GiB)
    check_output_size(2 * GiB, force=False)
    with pytest.raises(SciSRError, match=r"^the result would take 4\.0 GiB, more than the available RAM \(3\.0 GiB\)"):
        check_output_size(4 * GiB, force=False)


def test_unscaled_slabs_cover_the_longest_unscaled_axis():
    slabs = list(paging.unscaled_slabs((4, 6, 5), (2, 1, 1), bytes_per_output_voxel=8, budget=1))
    assert slabs == [(slice(None), slice(i, i + 1)) for i in range(6)]
    assert list(paging.unscaled_slabs((4, 6), (2, 2), 8)) == [()]
    assert len(list(paging.unscaled_slabs((4, 6, 5), (2, 2, 1), 8))) == 1  # small enough for one slab


def test_projection_in_slabs_of_a_memory_mapped_result_is_the_whole_projection(tmp_path, monkeypatch):
    import functools

    from sciSR import pipeline
    from sciSR.consistency import ForwardModel, degrade, project

    op = ForwardModel("kspace", (2, 2, 1), window="hamming", noise_sigma=None)
    truth = np.abs(np.random.default_rng(1).normal(10, 3, (16, 12, 5)))
    lr = degrade(truth, dataclasses.replace(op, noise_sigma=0.0)).astype(np.float32)
    estimate = np.repeat(np.repeat(lr, 2, axis=0), 2, axis=1)
    mask = np.zeros(lr.shape, dtype=bool)
    mask[0, 0, 2] = True
    applied = dataclasses.replace(op, noise_sigma=pipeline.estimate_noise_sigma(lr, 3))
    expected = project(estimate, lr, applied, mask=mask).astype(np.float32)
    expected[0:2, 0:2, 2] = np.nan
    monkeypatch.setattr(pipeline, "unscaled_slabs", functools.partial(paging.unscaled_slabs, budget=1))
    out = np.lib.format.open_memmap(tmp_path / "out.npy", mode="w+", dtype=np.float32, shape=estimate.shape)
    out[...] = estimate
    assert pipeline.project_in_place(out, lr, op, mask) == applied
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-4, equal_nan=True)


def test_keeping_a_share_of_the_detail_in_slabs_is_the_whole_blend(monkeypatch):
    import functools
    from types import SimpleNamespace

    from sciSR import pipeline
    from sciSR.infer.interpolate import interpolate

    rng = np.random.default_rng(2)
    values = rng.normal(10, 2, (8, 6, 4)).astype(np.float32)
    result = rng.normal(10, 2, (16, 12, 4)).astype(np.float32)
    request = SimpleNamespace(factors=(2, 2, 1), flux="none")
    base = interpolate(values, request.factors, "zerofill")
    expected = base + 0.25 * (result - base)
    monkeypatch.setattr(pipeline, "unscaled_slabs", functools.partial(paging.unscaled_slabs, budget=1))
    pipeline.keep_detail(result, values, request, 0.25)
    np.testing.assert_allclose(result, expected, rtol=0, atol=1e-4)
