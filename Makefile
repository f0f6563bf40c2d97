# lale: `make demo` runs the main job, `make test` runs lint, types, the docs build and tests.
# Both create or refresh the virtual environment in .venv first (idempotent).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXTRAS := train,edge,baselines,onnx,federated,dev,docs
# MkDocs 1.x plugins print a banner about MkDocs 2 on every build; the build itself is unaffected.
DOCS_ENV := NO_MKDOCS_2_WARNING=1 DISABLE_MKDOCS_2_WARNING=true

.PHONY: install demo test lint typecheck docs clean

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
	$(BIN)/ruff check src tests benchmarks docs/scripts
	$(BIN)/ruff format --check src tests benchmarks docs/scripts

typecheck: install
	$(BIN)/mypy src

# The documentation site, built strict: a broken link, a missing page or a failing API page
# stops it. The pages it generates (commands, API, results) come from docs/scripts/gen_pages.py.
docs: install
	$(DOCS_ENV) $(BIN)/mkdocs build --strict --quiet
	@echo "docs: site/index.html"

test: lint typecheck docs
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) build site src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
