# Two commands on a fresh machine: `make demo` and `make test`. Everything comes from PyPI.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test bench lint typecheck check samples clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/narrator run pipelines/demo.yaml

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python bench/run.py

lint: $(STAMP)
	$(BIN)/ruff check narrator tests bench samples
	$(BIN)/ruff format --check narrator tests bench samples

typecheck: $(STAMP)
	$(BIN)/mypy

# What CI runs (.ci/run): lint, types, then the tests.
check: lint typecheck test

# Rebuild the sample EPUB and cover from their script (the built files are committed).
samples: $(STAMP)
	$(BIN)/python samples/build_samples.py

clean:
	rm -rf out .narrator-cache
