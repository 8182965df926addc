"""Interrupted, terminated or killed runs leave no temporaries behind; inputs that would hang are refused.

Issue 15 item 4: SIGINT/SIGTERM remove the live temporaries (:func:`sciSR.tempfiles.cleanup_on_signals`,
which ``scisr`` runs under); a SIGKILLed run's temporaries are removed by the next write into the folder;
a named pipe (or any non-regular file) as input is refused at once instead of blocking the reader.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import sciSR
from sciSR import tempfiles
from sciSR.cli import main
from sciSR.errors import SciSRError
from sciSR.io.atomic import MARKER, atomic_output, check_input
from sciSR.paging import disk_array
from sciSR.tempfiles import cleanup_on_signals, live_temps, new_temp, remove_stale_temps

ROOT = Path(__file__).resolve().parents[2]
HOST = tempfiles._HOST
OLD = time.time() - 3600  # an mtime well past STALE_AFTER_S


def dead_pid() -> int:
    """The PID of a process that has exited (and been reaped) just now."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def temps(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".scisr-") and p.name != MARKER)


def fake_temp(folder: Path, pid: int, what: str, *, host: str = HOST, directory: bool = False,
              mtime: float = OLD) -> Path:
    path = folder / f".scisr-{pid}-{host}-abc123xy.{what}"
    if directory:
        path.mkdir()
        (path / "IM0001.dcm").write_bytes(b"half a series")
    else:
        path.write_bytes(b"half a file")
    os.utime(path, (mtime, mtime))
    return path


# --- names and the registry -------------------------------------------------------------------------------


def test_temporaries_carry_pid_and_host_and_are_registered_while_they_live(tmp_path):
    out = tmp_path / "scan.nii.gz"
    with atomic_output(out) as tmp:
        assert re.fullmatch(rf"\.scisr-{os.getpid()}-{HOST}-[0-9a-z_]+\.scan\.nii\.part\.nii\.gz", tmp.name)
        assert tmp.parent == tmp_path and tmp in live_temps()
        tmp.write_bytes(b"data")
    assert out.read_bytes() == b"data" and tmp not in live_temps()
    with pytest.raises(RuntimeError), atomic_output(tmp_path / "series", folder=True) as tmp:
        assert tmp.is_dir() and tmp.name.endswith(".series.part") and tmp in live_temps()
        raise RuntimeError("writer failed")
    assert not tmp.exists() and tmp not in live_temps()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scan.nii.gz"]


def test_disk_array_scratch_is_a_registered_temporary_removed_after_the_block(tmp_path):
    with disk_array((4, 5), folder=tmp_path) as arr:
        (scratch,) = tmp_path.iterdir()
        assert scratch.name.startswith(f".scisr-{os.getpid()}-{HOST}-") and scratch.name.endswith(".scratch")
        assert scratch in live_temps() and arr.shape == (4, 5) and not arr.any()
    assert list(tmp_path.iterdir()) == [] and scratch not in live_temps()


def test_replacing_a_folder_output_sets_the_old_one_aside_under_a_temporary_name(tmp_path, monkeypatch):
    with atomic_output(tmp_path / "series", folder=True) as tmp:
        (tmp / "IM0001.dcm").write_bytes(b"old")
    seen = []
    real_rmtree = shutil.rmtree

    def spy(path, *args, **kwargs):
        seen.append((Path(path).name, Path(path) in live_temps()))
        return real_rmtree(path, *args, **kwargs)

    monkeypatch.setattr(shutil, "rmtree", spy)
    with atomic_output(tmp_path / "series", folder=True, overwrite=True) as tmp:
        (tmp / "IM0001.dcm").write_bytes(b"new")
    (name, registered), = seen
    assert re.fullmatch(rf"\.scisr-{os.getpid()}-{HOST}-[0-9a-z_]+\.series\.old", name) and registered
    assert (tmp_path / "series" / "IM0001.dcm").read_bytes() == b"new" and temps(tmp_path) == []
    assert live_temps() == []


# --- SIGINT / SIGTERM ---------------------------------------------------------------------------------------


def test_sigterm_in_process_removes_the_live_temporaries_and_exits_143(tmp_path):
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit) as info, cleanup_on_signals():
        assert signal.getsignal(signal.SIGTERM) is not before
        with atomic_output(tmp_path / "out.tif") as tmp, disk_array((64, 64), folder=tmp_path) as arr:
            tmp.write_bytes(b"partial")
            arr[:] = 1.0
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(1000):  # the handler runs at the next bytecode boundary of the main thread
                time.sleep(0.01)
    assert info.value.code == 128 + signal.SIGTERM
    assert list(tmp_path.iterdir()) == [] and live_temps() == []
    assert signal.getsignal(signal.SIGTERM) is before


def test_handlers_are_restored_and_left_alone_outside_the_main_thread_or_when_ignored():
    term, intr = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        with cleanup_on_signals():
            assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN  # nohup's ignored SIGINT stays ignored
            assert signal.getsignal(signal.SIGTERM) is not term
        assert signal.getsignal(signal.SIGTERM) is term
    finally:
        signal.signal(signal.SIGINT, intr)
    seen = []

    def worker():
        with cleanup_on_signals():
            seen.append(signal.getsignal(signal.SIGTERM))

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen == [term]


# A `scisr info` whose command writes an output and a scratch array, says where, then waits for a signal.
CHILD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import sciSR.cli as cli
    from sciSR.io.atomic import atomic_output
    from sciSR.paging import disk_array
    from sciSR.tempfiles import live_temps

    folder = Path(sys.argv[1])

    def long_write(args):
        with atomic_output(folder / "out.fits") as tmp, disk_array((512, 512), folder=folder) as arr:
            tmp.write_bytes(b"partial output")
            arr[:] = 1.0
            (folder / "ready.txt").write_text("\\n".join(map(str, live_temps())))
            while True:
                time.sleep(0.05)

    cli._cmd_info = long_write
    sys.exit(cli.main(["info", "whatever.fits"]))
""")


@pytest.mark.parametrize(("signum", "code", "message"), [
    (signal.SIGTERM, 143, "error: terminated (SIGTERM); temporary files removed"),
    (signal.SIGINT, 130, "error: interrupted (SIGINT); temporary files removed")])
def test_scisr_interrupted_or_terminated_mid_write_leaves_nothing(tmp_path, signum, code, message):
    folder = tmp_path / "work"
    folder.mkdir()
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    child = subprocess.Popen([sys.executable, str(script), str(folder)], cwd=ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready = folder / "ready.txt"
        while not ready.exists() and child.poll() is None:
            time.sleep(0.05)
        assert child.poll() is None, child.communicate()[1]
        live = [Path(p) for p in ready.read_text().splitlines()]
        assert len(live) == 2 and all(p.exists() and p.parent == folder for p in live)
        child.send_signal(signum)
        _, err = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == code, err
    assert err.strip() == message
    assert sorted(p.name for p in folder.iterdir()) == ["ready.txt"]  # no output, no temporary, no scratch


# --- SIGKILL: stale temporaries removed by the next run -----------------------------------------------------


def test_next_write_removes_only_stale_temporaries_of_dead_processes_on_this_host(tmp_path):
    dead = dead_pid()
    stale_file = fake_temp(tmp_path, dead, "out.part.fits")
    stale_folder = fake_temp(tmp_path, dead, "series.part", directory=True)
    stale_scratch = fake_temp(tmp_path, dead, "scratch")
    keep = [
        fake_temp(tmp_path, os.getpid(), "mine.part.fits"),  # a live process (this one)
        fake_temp(tmp_path, 1, "init.part.fits"),  # PID 1 always runs
        fake_temp(tmp_path, dead, "recent.part.fits", mtime=time.time()),  # younger than STALE_AFTER_S
        fake_temp(tmp_path, dead, "far.part.fits", host="0123abcd" if HOST != "0123abcd" else "0123abce"),
        fake_temp(tmp_path, dead, "gone.old", directory=True),  # its replacement "gone" never arrived
        tmp_path / ".scisr-notes.txt",  # not a name sciSR makes
        tmp_path / MARKER,
        tmp_path / "data.fits",
    ]
    for path in keep[-3:]:
        path.write_text("user data")
    with atomic_output(tmp_path / "next.fits") as tmp:
        tmp.write_bytes(b"ok")
    for path in (stale_file, stale_folder, stale_scratch):
        assert not os.path.lexists(path)
    assert all(path.exists() for path in keep)
    assert (tmp_path / "next.fits").read_bytes() == b"ok"


def test_a_set_aside_old_output_is_removed_once_its_replacement_is_in_place(tmp_path):
    (tmp_path / "series").mkdir()
    old = fake_temp(tmp_path, dead_pid(), "series.old", directory=True)
    assert remove_stale_temps(tmp_path) == [old] and not old.exists()


def test_a_link_named_like_a_stale_temporary_is_removed_not_followed(tmp_path):
    target = tmp_path / "precious"
    target.mkdir()
    (target / "data.fits").write_text("keep me")
    link = tmp_path / f".scisr-{dead_pid()}-{HOST}-abc123xy.x.part"
    link.symlink_to(target)
    os.utime(link, (OLD, OLD), follow_symlinks=False)
    assert remove_stale_temps(tmp_path) == [link]
    assert not os.path.lexists(link) and (target / "data.fits").read_text() == "keep me"


def test_writers_clean_a_folder_once_per_process(tmp_path):
    dead = dead_pid()
    first = fake_temp(tmp_path, dead, "a.part.png")
    assert remove_stale_temps(tmp_path, once=True) == [first]
    second = fake_temp(tmp_path, dead, "b.part.png")
    assert remove_stale_temps(tmp_path, once=True) == [] and second.exists()  # a batch lists its folder once
    assert remove_stale_temps(tmp_path) == [second]


def test_disk_array_removes_stale_scratch_in_its_folder(tmp_path):
    stale = fake_temp(tmp_path, dead_pid(), "scratch")
    with disk_array((2, 2), folder=tmp_path):
        assert not stale.exists()


def test_a_sigkilled_writer_leaves_a_temporary_the_next_run_removes(tmp_path):
    folder = tmp_path / "work"
    folder.mkdir()
    code = ("import sys, time; from pathlib import Path; from sciSR.io.atomic import atomic_output\n"
            "with atomic_output(Path(sys.argv[1]) / 'out.png') as tmp:\n"
            "    tmp.write_bytes(b'partial'); print(tmp.name, flush=True); time.sleep(600)\n")
    child = subprocess.Popen([sys.executable, "-c", code, str(folder)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    name = child.stdout.readline().strip()
    child.kill()
    child.wait()
    child.stdout.close()
    left = folder / name
    assert left.exists() and name.startswith(f".scisr-{child.pid}-{HOST}-")
    assert remove_stale_temps(folder) == []  # too fresh: it might be another process with a reused PID
    os.utime(left, (OLD, OLD))
    sciSR.write(sciSR.SciImage.from_array(np.zeros((4, 4), np.float32)), folder / "next.png")
    assert sorted(p.name for p in folder.iterdir()) == ["next.png"]


def test_new_temp_cuts_a_long_name_at_the_front_and_keeps_the_suffix(tmp_path):
    tmp = new_temp(tmp_path, "x" * 300 + ".part.nii.gz")
    try:
        assert len(tmp.name) < 255 and tmp.name.endswith("x.part.nii.gz") and tmp.exists()
    finally:
        tempfiles.discard_temp(tmp)
    assert not tmp.exists() and tmp not in live_temps()


# --- inputs that would block --------------------------------------------------------------------------------


def read_in_thread(path: Path) -> BaseException | None:
    """``sciSR.read(path)`` in a daemon thread: a reader blocked on a pipe fails the test instead of hanging it."""
    result: list[BaseException | None] = []

    def target():
        try:
            sciSR.read(path)
            result.append(None)
        except BaseException as err:  # handed to the test, which asserts on it
            result.append(err)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout=60)
    assert result, f"sciSR.read({path}) blocked"
    return result[0]


def test_a_named_pipe_as_input_is_refused_at_once(tmp_path):
    fifo = tmp_path / "frame.fits"
    os.mkfifo(fifo)
    err = read_in_thread(fifo)
    assert isinstance(err, SciSRError) and err.path == str(fifo)
    assert str(err) == f"{fifo}: is a named pipe (FIFO), not a file or folder; sciSR reads image files and " \
                       "DICOM folders only"


def test_the_cli_refuses_a_named_pipe_with_one_line(tmp_path, capsys):
    fifo = tmp_path / "scan.nii.gz"
    os.mkfifo(fifo)
    codes = []
    thread = threading.Thread(target=lambda: codes.append(main(["info", str(fifo)])), daemon=True)
    thread.start()
    thread.join(timeout=60)
    assert codes == [1]
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {fifo}: is a named pipe (FIFO)")


def test_check_input_names_sockets_devices_and_missing_paths(tmp_path):
    assert check_input(tmp_path) == tmp_path
    (tmp_path / "a.png").write_bytes(b"")
    assert check_input(str(tmp_path / "a.png")) == tmp_path / "a.png"
    with pytest.raises(SciSRError, match="is a character device"):
        check_input("/dev/null")
    with pytest.raises(SciSRError, match=r"no such file or folder"):
        check_input(tmp_path / "missing.fits")
    (tmp_path / "dangling").symlink_to(tmp_path / "missing.fits")
    with pytest.raises(SciSRError, match=r"no such file or folder"):
        check_input(tmp_path / "dangling")
    server = socket.socket(socket.AF_UNIX)
    short = Path(f"/tmp/scisr-test-{os.getpid()}.sock")  # AF_UNIX paths are limited to about 100 bytes
    try:
        server.bind(str(short))
        with pytest.raises(SciSRError, match="is a socket"):
            check_input(short)
    finally:
        server.close()
        short.unlink(missing_ok=True)


def test_a_fifo_inside_a_dicom_folder_is_skipped(tmp_path):
    from pydicom.data import get_testdata_file

    folder = tmp_path / "series"
    folder.mkdir()
    shutil.copy(get_testdata_file("CT_small.dcm"), folder / "a.dcm")
    os.mkfifo(folder / "pipe")
    assert sciSR.read(folder).array.shape[:2] == (128, 128)
