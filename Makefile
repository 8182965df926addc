# Two entry points for a fresh clone: `make demo` and `make test`. Everything else is set up on demand.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Debian packages napari's Qt6 window needs under Xvfb (docs/architecture.md §8).
X_PACKAGES := xvfb xauth libxcb-icccm4 libxcb-cursor0 libxkbcommon-x11-0 libxcb-keysyms1 libxcb-image0 \
	libxcb-render-util0 libxcb-xinerama0 libxcb-shape0 libxcb-randr0 libxcb-xfixes0 libxcb-xkb1 libgl1 \
	libegl1 libfontconfig1 libdbus-1-3
# Qt's xcb platform plugin inside the venv: `ldd` on it names every shared library the window would lack.
QT_XCB_GLOB := $(VENV)/lib/python3*/site-packages/PyQt6/Qt6/plugins/platforms/libqxcb.so
LINT_PATHS := sciSR napari_plugin tests examples benchmarks

.PHONY: demo test lint xdeps docs clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# The CPU wheel of torch 2.13.0 when this machine has it; otherwise pip resolves torch from the package.
	$(PY) -m pip install -q torch==2.13.0 || echo "torch 2.13.0 CPU wheel not available; using the package's torch requirement"
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

demo: $(VENV)/.installed
	$(PY) examples/demo.py --out demo_output

# Prints what the napari tests lack (nothing when complete): the tools Xvfb needs, every Debian package of
# X_PACKAGES (when dpkg is there) and every shared library of Qt's xcb plugin that `ldd` reports "not found".
define X_MISSING
missing=""; \
for tool in xvfb-run xauth; do command -v $$tool >/dev/null 2>&1 || missing="$$missing $$tool"; done; \
if command -v dpkg-query >/dev/null 2>&1; then \
	for pkg in $(X_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$pkg 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$pkg"; \
	done; \
fi; \
for plugin in $(QT_XCB_GLOB); do \
	[ -e "$$plugin" ] || continue; \
	missing="$$missing $$(ldd "$$plugin" 2>/dev/null | awk '/not found/ {print $$1}' | sort -u | tr '\n' ' ')"; \
done; \
echo $$missing
endef

xdeps: $(VENV)/.installed
	@missing=$$($(X_MISSING)); \
	if [ -z "$$missing" ]; then echo "xdeps: Xvfb and every library of Qt's xcb plugin are present"; exit 0; fi; \
	echo "xdeps: missing for the napari tests: $$missing"; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "xdeps: installing $(X_PACKAGES)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(X_PACKAGES) >/dev/null \
			|| { echo "xdeps: apt-get install failed" >&2; exit 1; }; \
		missing=$$($(X_MISSING)); \
		if [ -n "$$missing" ]; then echo "xdeps: still missing after apt-get install: $$missing" >&2; exit 1; fi; \
		echo "xdeps: installed"; \
	else \
		echo "xdeps: the napari tests need these Debian packages (run as root, e.g. sudo make xdeps):" >&2; \
		echo "  apt-get install -y $(X_PACKAGES)" >&2; \
		exit 1; \
	fi

# Lint first: CI (.ci/run) runs `make test`, so a lint error fails it before the suite starts.
test: $(VENV)/.installed lint xdeps
	xvfb-run -a $(PY) -m pytest -q

lint: $(VENV)/.installed
	$(PY) -m ruff check $(LINT_PATHS)

# The documentation site (docs/_build/html); warnings are errors. The gallery runs under Xvfb so its napari
# example takes a real screenshot; SPHINXOPTS="-D plot_gallery=0" skips running the examples.
SPHINXOPTS ?=
docs: $(VENV)/.installed
	@$(MAKE) --no-print-directory xdeps >/dev/null 2>&1 || echo "docs: no Xvfb/Qt libraries; the napari example will say so"
	$$(command -v xvfb-run >/dev/null 2>&1 && echo xvfb-run -a) $(PY) -m sphinx -W --keep-going -b html \
		$(SPHINXOPTS) docs docs/_build/html

clean:
	rm -rf $(VENV) demo_output .pytest_cache docs/_build docs/auto_examples docs/generated
