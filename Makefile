# The whole set-up is two commands: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test coverage lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/ocindex tui $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check indexer tui tests
	$(BIN)/ruff format --check indexer tui tests
	$(BIN)/mypy
	$(BIN)/lint-imports

# One pytest-xdist worker per core (PYTEST_WORKERS=0: one process).
PYTEST_WORKERS ?= auto

test: lint
	$(BIN)/pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

# The same suite under coverage, with a 90% floor: indexer/ and tui/ ([tool.coverage.run]), the
# commands the tests run as subprocesses included. Not part of `make test`: tracing makes the
# suite a third slower (2 cores, 2026-12-02: 9 min 19 s against 6 min 43 s).
coverage: lint
	$(BIN)/pytest -n $(PYTEST_WORKERS) --cov --cov-report=term:skip-covered --cov-fail-under=90 \
		$(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/ocindex bench --quick

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage
