# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Debian packages the integration tests drive as real peers.
DEBS   := postfix kannel kannel-extras smstools gammu-smsd socat swaks chromium chromium-driver miltertest sasl2-bin libsasl2-modules systemd postgresql
PACKAGES := mailsms transports replylog ndr milter

.PHONY: run test lint typecheck pytest debs bench clean

# Runtime install (no dev tools) for `make run`.
$(BIN)/.run-stamp: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip >/dev/null
	$(BIN)/python -m pip install -q -e .
	touch $@

# Everything the tests need.
$(BIN)/.dev-stamp: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip >/dev/null
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(BIN)/.run-stamp $@

run: $(BIN)/.run-stamp
	$(BIN)/mailsms serve $(ARGS)

debs:
	./scripts/install-debs $(DEBS)

lint: $(BIN)/.dev-stamp
	$(BIN)/ruff check $(PACKAGES) tests bench
	$(BIN)/ruff format --check $(PACKAGES) tests bench

typecheck: $(BIN)/.dev-stamp
	$(BIN)/mypy

pytest: $(BIN)/.dev-stamp debs
	$(BIN)/pytest

test: lint typecheck pytest

# Every benchmark, each against its baseline; the table goes to stdout and build/bench/.
# BENCH_ARGS=--quick for a short smoke run, BENCH_ARGS="--only ingest growth" for some of them.
bench: $(BIN)/.dev-stamp debs
	$(BIN)/python -m pip install -q -e '.[bench]'
	$(BIN)/python -m bench --json build/bench/latest.json --markdown build/bench/latest.md $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache .hypothesis
