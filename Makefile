# Two commands a new user needs: `make run` and `make test`. Everything else is for developers.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: run tools-install test test-rust fmt lint

# Builds the UI (when web/ has one), then the stack, and serves everything on one port.
# Flags go after ARGS=, e.g. `make run ARGS="--listen 0.0.0.0:8080"`.
run:
	@if [ -f web/package.json ]; then \
		echo "==> building the web UI (web/dist)"; \
		(cd web && npm ci --no-audit --no-fund && npm run build) || exit 1; \
	else \
		echo "==> no web UI to build yet: the gateway serves a page saying so"; \
	fi
	@echo "==> building and starting Parley; open http://127.0.0.1:8080 once it says it is running (Ctrl-C stops it)"
	$(CARGO) run --release -p parley -- $(ARGS)

# Command-line tools the tests use (buf, for `buf curl` against the gateway).
tools-install:
	npm ci --prefix tools --no-audit --no-fund

test: test-rust

test-rust:
	$(CARGO) test --workspace --no-fail-fast

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) clippy --workspace --all-targets
