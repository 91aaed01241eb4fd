# snaparc developer entry points. Needs only Python 3.11+ on a fresh machine.
# Prefer 3.11: the CPU build of the pinned torch is available for it here.
PYTHON ?= $(shell for p in python3.11 python3 python3.12 python3.13; do command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' && echo $$p && break; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.snaparc-installed
EXTRAS ?= hf,s3,dev
# Stock tools the interop tests run, as Debian packages.
TOOLS_PKGS := zstd tar libarchive-tools b3sum minisign coreutils openssl docker-registry apache2-utils

.PHONY: demo test tools lint typecheck imports bench fuzz vectors clean

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "need Python 3.11 or newer"; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[$(EXTRAS)]'
	@touch $@

# Installs missing stock tools with apt-get when running as root (as CI does);
# elsewhere the interop tests skip and say which tool is missing.
tools:
	@missing=""; \
	for t in zstd:zstd tar:tar bsdtar:libarchive-tools b3sum:b3sum minisign:minisign sha256sum:coreutils setpriv:util-linux openssl:openssl docker-registry:docker-registry htpasswd:apache2-utils; do \
	  command -v $${t%%:*} >/dev/null 2>&1 || missing="$$missing $${t#*:}"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "not root: interop tests needing$$missing will skip"; \
	  fi; \
	fi

demo: $(STAMP)
	$(BIN)/python -m snaparc.demo

# The standards are part of the suite: lint, strict typing and the layering
# contract first, then every test.
test: $(STAMP) tools lint typecheck imports
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check snaparc tests benchmarks
	$(BIN)/ruff format --check snaparc tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

# The import contracts in pyproject.toml ([tool.importlinter]): the layers.
imports: $(STAMP)
	$(BIN)/lint-imports --no-cache

bench: $(STAMP) tools
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

fuzz: $(STAMP)
	SNAPARC_FUZZ_SECONDS=$${SECONDS_TO_FUZZ:-600} $(BIN)/python -m pytest -q tests/test_fuzz.py

vectors: $(STAMP)
	$(BIN)/python -m spec.vectors.generate

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
