# Two entry points for a fresh clone: `make demo` and `make test`. Everything else is set up on demand.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Debian packages napari's Qt6 window needs under Xvfb (GUIDE §8).
X_PACKAGES := xvfb xauth libxcb-icccm4 libxcb-cursor0 libxkbcommon-x11-0 libxcb-keysyms1 libxcb-image0 \
	libxcb-render-util0 libxcb-xinerama0 libxcb-shape0 libxcb-randr0 libxcb-xfixes0 libxcb-xkb1 libgl1 \
	libegl1 libfontconfig1 libdbus-1-3

.PHONY: demo test lint xdeps clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# The CPU wheel of torch 2.13.0 when this machine has it; otherwise pip resolves torch from the package.
	$(PY) -m pip install -q torch==2.13.0 || echo "torch 2.13.0 CPU wheel not available; using the package's torch requirement"
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

demo: $(VENV)/.installed
	$(PY) examples/demo.py --out demo_output

xdeps:
	@if ! command -v xvfb-run >/dev/null || ! ldconfig -p | grep -q libxcb-cursor.so.0; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(X_PACKAGES) >/dev/null; \
		else echo "install these Debian packages for the napari tests: $(X_PACKAGES)"; fi; \
	fi

test: $(VENV)/.installed xdeps
	xvfb-run -a $(PY) -m pytest -q

lint: $(VENV)/.installed
	$(PY) -m ruff check sciSR napari_plugin tests examples benchmarks

clean:
	rm -rf $(VENV) demo_output .pytest_cache
