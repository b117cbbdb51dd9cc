# Two commands matter: `make serve` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The development set (tests, mypy, SDKs, the other servers) and, apart, what serving needs.
STAMP := $(VENV)/.installed-stamp
SERVE_STAMP := $(VENV)/.installed-serve-stamp
# The extras `make serve` installs (fast: orjson, the faster JSON codec of KIRO_JSON_CODEC): add
# redis (a redis:// KIRO_STATE) or images (BMP/TIFF, downscaling) when you use them, e.g.
# `make serve SERVE_EXTRAS=server,fast,redis,images`.
SERVE_EXTRAS ?= server,fast

.PHONY: serve test test-core test-runtime test-e2e typecheck unit fuzz bench bench-gateway bench-soak clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP) $(SERVE_STAMP)

# Serving needs only the server extras; a development install (newer than pyproject.toml) has them already.
$(SERVE_STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@if [ $(STAMP) -nt pyproject.toml ]; then :; else \
		$(BIN)/python -m pip install -q --upgrade pip && \
		$(BIN)/python -m pip install -q -e '.[$(SERVE_EXTRAS)]'; fi
	@touch $(SERVE_STAMP)

serve: $(SERVE_STAMP)
	$(BIN)/kiro2api serve

# Everything: mypy, the three test tiers (the pure one under coverage), the bounded fuzz
# targets, and the main conformance suites once more with the standard library's json in the gateways
# (KIRO_JSON_CODEC=stdlib; the first run has the optional orjson codec). The end-to-end tests need
# real peers: a redis-server, Debian's Chromium and the pinned Claude Code and
# Codex CLIs; the scripts install them when missing (idempotent, quick when present). Any test
# file not yet sorted into a tier (tests/*.py) runs with the runtime and end-to-end tiers.
test: $(STAMP)
	scripts/ensure-redis-server
	scripts/ensure-chromium >/dev/null
	$(BIN)/mypy
	$(MAKE) --no-print-directory test-core
	CLAUDE_CODE_BIN="$$(scripts/ensure-claude-code)" CODEX_BIN="$$(scripts/ensure-codex-cli)" $(BIN)/pytest tests --ignore=tests/core
	KIRO_JSON_CODEC=stdlib $(BIN)/pytest -q -p no:cacheprovider tests/e2e/conformance/test_anthropic.py \
		tests/e2e/conformance/test_openai.py tests/e2e/conformance/test_responses.py
	$(BIN)/pytest fuzz -p no:cacheprovider --hypothesis-profile=ci

# Tier (a), the pure core (no socket, no process; tests/core/conftest.py enforces it), under
# coverage: prints the TOTAL line of kiro_protocol's branch coverage, fails under 95 %. Then once
# more with the optional orjson codec installed (KIRO_JSON_CODEC): the same tests pass with both.
test-core: $(STAMP)
	$(BIN)/coverage erase
	$(BIN)/coverage run -m pytest tests/core -p no:cacheprovider
	KIRO_JSON_CODEC=orjson $(BIN)/pytest tests/core -p no:cacheprovider
	@$(BIN)/coverage report > $(VENV)/coverage-core.txt; status=$$?; \
	grep -E '^(Name|TOTAL|Coverage failure)' $(VENV)/coverage-core.txt; exit $$status

# Tier (b), the runtime: stores, the upstream client and streams against loopback fakes.
test-runtime: $(STAMP)
	$(BIN)/pytest tests/runtime

# Tier (c), end to end: servers, SDKs, the Claude Code and Codex CLIs, redis, the conformance suite.
test-e2e: $(STAMP)
	scripts/ensure-redis-server
	scripts/ensure-chromium >/dev/null
	CLAUDE_CODE_BIN="$$(scripts/ensure-claude-code)" CODEX_BIN="$$(scripts/ensure-codex-cli)" $(BIN)/pytest tests/e2e

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	scripts/ensure-redis-server
	scripts/ensure-chromium >/dev/null
	CLAUDE_CODE_BIN="$$(scripts/ensure-claude-code)" CODEX_BIN="$$(scripts/ensure-codex-cli)" $(BIN)/pytest

fuzz: $(STAMP)
	$(BIN)/pytest fuzz -p no:cacheprovider --hypothesis-profile=nightly

bench: $(STAMP)
	@for f in bench/bench_*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

# The CPU per request of each way of serving, the figures of docs/performance.md (about 3 min).
bench-gateway: $(STAMP)
	$(BIN)/python bench/bench_gateway.py

# 1,000 slow streams at once, three rounds, on serve and uvicorn: memory and fds (docs/performance.md).
bench-soak: $(STAMP)
	$(BIN)/python bench/bench_soak.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .hypothesis .coverage
