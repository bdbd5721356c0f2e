# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The demo needs only the core package (jax, flax, ...); the tests also install the extras
# whose code they test (torch + transformers for the hf backend, ray, the sb3 bench peer).
CORE := $(VENV)/.installed-core
FULL := $(VENV)/.installed-full

.PHONY: demo test test-slow install install-core browser bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Re-install when the dependency declaration or the pinned set changes.
$(CORE): $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/pip install -q -c constraints.txt -e .
	touch $(CORE)

$(FULL): $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/pip install -q -c constraints.txt -e '.[test,lm,ray,bench,track]'
	touch $(FULL) $(CORE)

install-core: $(CORE)

install: $(FULL)

demo: $(CORE)
	$(BIN)/innerlab run side-channels --preset quick --out runs/demo --resume

# tests/test_report_browser.py looks at a report in headless Chromium (Debian's `chromium`).
# Install it where we can (root or passwordless sudo, with apt-get); elsewhere say why in one
# line and go on: that test then skips, saying so.
BROWSER_SKIP := the report browser test will skip
browser:
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then exit 0; fi; \
	if ! command -v apt-get >/dev/null 2>&1; then \
	  echo "chromium not installed: no apt-get here ($(BROWSER_SKIP))"; exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then sudo=""; \
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo -n"; \
	else echo "chromium not installed: not root and no passwordless sudo ($(BROWSER_SKIP))"; exit 0; fi; \
	echo "installing Debian's chromium (apt-get) for the report browser test"; \
	log=$$(mktemp); \
	if $$sudo apt-get -qq update >"$$log" 2>&1 && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get -qq -y \
	     -o DPkg::Lock::Timeout=300 install --no-install-recommends chromium >>"$$log" 2>&1; then rm -f "$$log"; \
	else tail -n 5 "$$log"; rm -f "$$log"; echo "chromium not installed: apt-get install failed ($(BROWSER_SKIP))"; fi

test: $(FULL) browser
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup

test-slow: $(FULL)
	$(BIN)/python -m pytest -q -m slow

bench: $(FULL)
	$(BIN)/innerlab bench

clean:
	rm -rf $(VENV) runs
