# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The demo needs only the core package (jax, flax, ...); the tests also install the extras
# whose code they test (torch + transformers for the hf backend, ray, the sb3 bench peer).
CORE := $(VENV)/.installed-core
FULL := $(VENV)/.installed-full

.PHONY: demo test test-slow install install-core bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Re-install when the dependency declaration or the pinned set changes.
$(CORE): $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/pip install -q -c constraints.txt -e .
	touch $(CORE)

$(FULL): $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/pip install -q -c constraints.txt -e '.[test,lm,ray,bench]'
	touch $(FULL) $(CORE)

install-core: $(CORE)

install: $(FULL)

demo: $(CORE)
	$(BIN)/innerlab run side-channels --preset quick --out runs/demo --resume

test: $(FULL)
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup

test-slow: $(FULL)
	$(BIN)/python -m pytest -q -m slow

bench: $(FULL)
	$(BIN)/innerlab bench

clean:
	rm -rf $(VENV) runs
