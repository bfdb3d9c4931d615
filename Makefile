# The whole set-up is two commands: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The tree walk's folder lister and the batch file reader in C (indexer/listing.py,
# indexer/pipeline/batch_read.py); without a C compiler both run in Python.
NATIVE := indexer/native/_list_folder.so indexer/native/_read_files.so
CC ?= cc

.PHONY: demo test coverage lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

indexer/native/_%.so: indexer/native/%.c indexer/native/mtime_ns.h
	$(CC) -O2 -shared -fPIC -pthread -Wall -Wextra -Werror -o $@ $< \
		|| echo "no C library built from $<: that part runs in Python (slower, the same results)"

demo: $(STAMP) $(NATIVE)
	$(BIN)/ocindex tui $(ARGS)

lint: $(STAMP) $(NATIVE)
	$(BIN)/ruff check indexer tui tests hatch_build.py
	$(BIN)/ruff format --check indexer tui tests hatch_build.py
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

bench: $(STAMP) $(NATIVE)
	$(BIN)/ocindex bench --quick

clean:
	rm -rf $(VENV) $(NATIVE) .pytest_cache .mypy_cache .ruff_cache .coverage
