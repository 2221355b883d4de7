# Each target bootstraps .venv itself: a fresh machine needs only Python 3.11+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# The browser tests drive Debian's Chromium (Playwright's own browser download is not used).
CHROMIUM_STAMP := $(VENV)/.chromium
POSTGRES_STAMP := $(VENV)/.postgresql
# The official Restate server, from the npm registry, for the interoperability tests and bench-compare.
RESTATE_VERSION := 1.7.12
RESTATE_STAMP := .tools/restate/.installed-$(RESTATE_VERSION)

.PHONY: run test lint import-graph soak-disk conformance-restate bench bench-scale bench-compare bench-workers bench-remote bench-cluster clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/durio serve examples/tour/app.py

$(CHROMIUM_STAMP): | $(STAMP)
	@command -v chromium >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q chromium \
		|| { $(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q chromium; }
	touch $@

# The cluster tests start a throwaway PostgreSQL from Debian's package (durio.cluster's source of truth).
$(POSTGRES_STAMP): | $(STAMP)
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q postgresql \
		|| { $(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q postgresql; }
	touch $@

$(RESTATE_STAMP):
	@command -v npm >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q nodejs npm \
		|| { $(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q nodejs npm; }
	mkdir -p .tools/restate
	cd .tools/restate && npm install --no-audit --no-fund --ignore-scripts @restatedev/restate-server@$(RESTATE_VERSION)
	ls .tools/restate/node_modules/@restatedev/restate-server-*/bin/restate-server
	touch $@

# The whole suite on Trio (the default backend), then on asyncio the first 4 tests of every file but the disk
# soak and the several-node cluster (each file opens with its core cases; the servers the tests start run on
# asyncio too, and test_cluster.py's nodes cover a cluster node on asyncio): the whole suite twice would not
# fit in 15 minutes on 2 shared cores. DURIO_TEST_BACKENDS=asyncio alone runs all of it on asyncio.
test: $(STAMP) $(CHROMIUM_STAMP) $(POSTGRES_STAMP) $(RESTATE_STAMP)
	$(BIN)/python -m pytest -q
	DURIO_TEST_BACKENDS=asyncio DURIO_BACKEND=asyncio DURIO_TEST_SUBSET=4 $(BIN)/python -m pytest -q -m "not disk_soak" \
		--deselect tests/test_cluster_nodes.py

# Only the soak under a disk that fills and empties (a tmpfs; needs root); `make test` runs it too.
soak-disk: $(STAMP)
	$(BIN)/python -m pytest -q -m disk_soak tests/test_soak.py

# Restate's SDK test suite as ported in tests/conformance (which `make test` runs on durio, remote and
# embedded), here against the official Restate server: it shows each test asks for what Restate does.
conformance-restate: $(STAMP) $(RESTATE_STAMP)
	DURIO_CONFORMANCE_TARGETS=restate,restate-default $(BIN)/python -m pytest -q tests/conformance

# Mistakes (ruff: undefined names, unused imports), types (mypy over durio/) and the import contracts
# in pyproject.toml (import-linter: the journal and the protocol codec are sans-IO; storage, the SDK and the
# protocol never import upward, TYPE_CHECKING imports included), and no import cycle (scripts/import_graph.py).
lint: $(STAMP)
	$(BIN)/ruff format --check durio tests benchmarks examples scripts
	$(BIN)/ruff check durio tests benchmarks examples scripts
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python scripts/import_graph.py

# The import cycles among durio's modules, TYPE_CHECKING and function-level imports counted, with the edges
# that make them (file:line); exits 1 if there is one. Not part of `lint` yet (issue 15's redesign removed the
# last cycles; `lint` may call it from now on). `$(BIN)/python scripts/import_graph.py --ignore-type-checking`
# shows the runtime-only graph.
import-graph: $(STAMP)
	$(BIN)/python scripts/import_graph.py

# Options go through BENCH_ARGS, e.g. make bench BENCH_ARGS='--duration 3 --workloads noop,steps'
bench: $(STAMP)
	$(BIN)/python benchmarks/run.py $(BENCH_ARGS)

# How costs grow: sleepers' memory, time per step and replay, recovery after kill -9, LMDB bytes per key.
# Options go through BENCH_ARGS, e.g. make bench-scale BENCH_ARGS='--sleepers 1000 --steps 10,100 --recover 500 --keys 5000'
bench-scale: $(STAMP)
	$(BIN)/python benchmarks/scale.py $(BENCH_ARGS)

# The same workloads on durio and on the official Restate server (restate-sdk on hypercorn), row by row.
# Same BENCH_ARGS, plus --sdk-workers N and --skip-smoke, e.g. make bench-compare BENCH_ARGS='--duration 3'
bench-compare: $(STAMP) $(RESTATE_STAMP)
	$(BIN)/python benchmarks/compare.py $(BENCH_ARGS)

# durio --workers 2 against --workers 1, alternating, medians over rounds (benchmarks/README.md).
# e.g. make bench-workers BENCH_ARGS='--rounds 5 --workloads noop,steps'
bench-workers: $(STAMP)
	$(BIN)/python benchmarks/workers.py $(BENCH_ARGS)

# A remote durio.app deployment over bidi streaming (HTTP/2) against request/response (HTTP/1.1), same run.
# Options go through BENCH_ARGS, e.g. make bench-remote BENCH_ARGS='--duration 3 --rounds 2 --concurrency 16'
bench-remote: $(STAMP)
	$(BIN)/python benchmarks/remote_modes.py $(BENCH_ARGS)

# durio on PostgreSQL (a `--cluster` node, on a throwaway PostgreSQL it starts) against durio on LMDB alone,
# same run, medians over rounds; PostgreSQL's round trip for one fenced batch; --nodes 1,2,3 and --takeover.
# e.g. make bench-cluster BENCH_ARGS='--nodes 1,2,3 --takeover --rounds 3'
bench-cluster: $(STAMP) $(POSTGRES_STAMP)
	$(BIN)/python benchmarks/cluster.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .durio .pytest_cache
