"""The optional compiled path of tiled inference: when it is tried, kept, dropped, and where its cache lives.

``torch.compile`` is mocked throughout (a real compile takes tens of seconds on a small CPU).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from sciSR.infer import tiled
from sciSR.infer.tiled import compile_cache_dir, predict_tiled
from sciSR.models import create_model


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model("edsr-baseline", scale=2, features=8, n_blocks=1).eval()


def _image(shape: tuple[int, int] = (60, 60)) -> np.ndarray:
    return np.random.default_rng(0).random((1, *shape), dtype=np.float32)


class FakeCompile:
    """Stands in for torch.compile: counts compiles and calls, optionally fails or runs slowly."""

    def __init__(self, fail: bool = False, delay_s: float = 0.0) -> None:
        self.compiles, self.calls, self.fail, self.delay_s = 0, 0, fail, delay_s

    def __call__(self, fn, **kwargs):
        self.compiles += 1

        def compiled(x):
            self.calls += 1
            if self.fail:
                raise RuntimeError("inductor backend failed")
            time.sleep(self.delay_s)
            return fn(x)

        return compiled


@pytest.fixture
def fake(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    return lambda **kw: monkeypatch.setattr(torch, "compile", FakeCompile(**kw)) or torch.compile


def test_forced_compile_is_used_and_exact(fake):
    compile_ = fake()
    model = _model()
    eager = predict_tiled(model, _image(), 2, tile=20, batch_size=1, device="cpu", compile_model=False)
    result = predict_tiled(model, _image(), 2, tile=20, batch_size=1, device="cpu", compile_model=True)
    assert compile_.compiles == 1 and compile_.calls > 1
    assert np.array_equal(result, eager)


def test_failing_compile_falls_back_silently(fake, recwarn):
    compile_ = fake(fail=True)
    model = _model()
    eager = predict_tiled(model, _image(), 2, tile=20, batch_size=1, device="cpu", compile_model=False)
    result = predict_tiled(model, _image(), 2, tile=20, batch_size=1, device="cpu", compile_model=True)
    assert np.array_equal(result, eager)
    assert compile_.calls == 1  # tried once, then eager for good
    assert not [w for w in recwarn if "compile" in str(w.message).lower()]


def test_one_shot_job_never_compiles(fake):
    compile_ = fake()
    predict_tiled(_model(), _image(), 2, tile=20, batch_size=1, device="cpu")
    assert compile_.compiles == 0


def test_long_job_compiles_and_keeps_a_faster_network(fake, monkeypatch):
    compile_ = fake()
    monkeypatch.setitem(tiled.COMPILE_PAYS_AFTER_S, "cpu", 0.0)
    # The mock is as fast as eager, so keeping it needs a generous ratio here.
    monkeypatch.setattr(tiled, "COMPILE_KEEP_RATIO", 100.0)
    model = _model()
    eager = predict_tiled(model, _image(), 2, tile=20, batch_size=1, device="cpu", compile_model=False)
    result = predict_tiled(model, _image(), 2, tile=20, batch_size=1, device="cpu", expected_calls=50)
    assert compile_.compiles == 1 and compile_.calls >= 2
    assert np.array_equal(result, eager)
    assert model._scisr_engine[("cpu", None, 2)]["verdict"] == "compiled"


def test_long_job_drops_a_slower_compiled_network(fake, monkeypatch):
    compile_ = fake(delay_s=0.2)
    monkeypatch.setitem(tiled.COMPILE_PAYS_AFTER_S, "cpu", 0.0)
    model = _model()
    predict_tiled(model, _image(), 2, tile=20, batch_size=1, device="cpu", expected_calls=50)
    state = model._scisr_engine[("cpu", None, 2)]
    assert state["verdict"] == "eager" and state["compiled"] is None
    calls = compile_.calls
    predict_tiled(model, _image(), 2, tile=20, batch_size=1, device="cpu", expected_calls=50)
    assert compile_.calls == calls  # the verdict holds for later calls


def test_compile_cache_dir_is_user_settable_and_outside_the_repo(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path))
    assert compile_cache_dir() == str(tmp_path)
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert compile_cache_dir() == os.path.join(str(tmp_path / "xdg"), "scisr", "inductor")
    repo = Path(__file__).resolve().parents[2]
    assert not Path(compile_cache_dir()).resolve().is_relative_to(repo)
