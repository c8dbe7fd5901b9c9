# The two commands: `make demo` runs the main job on the bundled sample, `make test` passes the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint format bench browser prometheus clean

$(STAMP): pyproject.toml setup.py src/segue/_kernels.c
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev,ray]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/segue demo

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

# Debian's chromium for the Playwright page test (Playwright's own browser download cannot work here).
browser:
	@command -v chromium >/dev/null 2>&1 || (apt-get install -y -qq chromium >/dev/null 2>&1 || \
	  (apt-get update -qq && apt-get install -y -qq chromium) || \
	  echo "chromium could not be installed; the browser test will skip")

# Debian's prometheus for `promtool`, which checks and unit-tests the rules in deploy/prometheus/.
prometheus:
	@command -v promtool >/dev/null 2>&1 || \
	  (apt-get install -y -qq --no-install-recommends prometheus >/dev/null 2>&1 || \
	  (apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus) >/dev/null 2>&1 || \
	  echo "prometheus could not be installed; the promtool rule tests will skip")

test: $(STAMP) browser prometheus lint
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/ingest.py
	$(BIN)/python benchmarks/matching.py
	$(BIN)/python benchmarks/quality.py
	$(BIN)/python benchmarks/ranking.py
	$(BIN)/python benchmarks/ease_requests.py
	$(BIN)/python benchmarks/serve.py
	$(BIN)/python benchmarks/scale.py --quick

clean:
	rm -rf .segue .pytest_cache .ruff_cache
