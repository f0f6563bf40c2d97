# lale: `make demo` runs the main job, `make test` runs lint, types and tests.
# Both create or refresh the virtual environment in .venv first (idempotent).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXTRAS := train,edge,baselines,onnx,dev

.PHONY: install demo test lint typecheck clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first, exactly pinned: a looser requirement would pull a multi-GB CUDA build.
	$(BIN)/python -m pip install --quiet -c constraints.txt torch
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[$(EXTRAS)]"
	# Only where torchvision's compiled extension cannot load (see lale/_torchvision_compat.py):
	# a .pth hook so every interpreter of this venv (pytest, DDP workers) gets the fix.
	$(BIN)/python -c "import lale._torchvision_compat as c; c.write_pth()"
	touch $(STAMP)

demo: install
	$(BIN)/lale demo

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: install
	$(BIN)/mypy src

test: lint typecheck
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
