# Two commands matter: `make serve` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: serve test typecheck unit fuzz bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

serve: $(STAMP)
	$(BIN)/kiro2api serve

# The end-to-end tests need real peers: a redis-server and the pinned Claude Code CLI. The
# scripts install them when missing (idempotent, quick when present).
test: $(STAMP)
	scripts/ensure-redis-server
	$(BIN)/mypy
	CLAUDE_CODE_BIN="$$(scripts/ensure-claude-code)" $(BIN)/pytest
	$(BIN)/pytest fuzz -p no:cacheprovider --hypothesis-profile=ci

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	scripts/ensure-redis-server
	CLAUDE_CODE_BIN="$$(scripts/ensure-claude-code)" $(BIN)/pytest

fuzz: $(STAMP)
	$(BIN)/pytest fuzz -p no:cacheprovider --hypothesis-profile=nightly

bench: $(STAMP)
	@for f in bench/bench_*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .hypothesis
