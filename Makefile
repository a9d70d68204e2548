# linkshaper: everything a fresh machine needs, as root. `make demo` and `make test` set up first.
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SYSTEM_TOOLS := ip ethtool iperf3 ping tmux chromium tcpdump zsh fish
APT_PACKAGES := iproute2 ethtool iperf3 iputils-ping tmux chromium tcpdump zsh fish

.PHONY: install system-tools demo demo-headless screenshots test test-fast test-container lint format bench bench-tui docs wheel wheel-check clean

install: system-tools $(STAMP)

system-tools:
	@missing=""; for tool in $(SYSTEM_TOOLS); do command -v $$tool >/dev/null 2>&1 || missing="$$missing $$tool"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing system tools (missing:$$missing)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES) >/dev/null; \
	fi

$(STAMP): pyproject.toml uv.lock
	@command -v uv >/dev/null 2>&1 || python3 -m pip install --quiet --disable-pip-version-check uv
	uv sync --frozen --extra testcontainers
	@touch $(STAMP)

# The main job: the lab, an engine between client and server, traffic both ways, the TUI on it.
demo: install
	$(BIN)/tui --demo

demo-headless: install
	$(BIN)/linkshaper lab demo --seconds 30

# PNGs of the real app on the demo lab (needs root, like the demo).
screenshots: install
	uv sync --frozen --extra testcontainers --group screenshots
	$(BIN)/python -m screenshots.make

# Every test but the container ones: tests/unit and tests/lab (root: network namespaces).
test: install
	$(BIN)/pytest -q

# The image and two containers for real (Docker engine, debootstrap base); removes what it made.
BASE_IMAGE := linkshaper-base:bookworm
test-container: install
	@command -v dockerd >/dev/null 2>&1 && command -v debootstrap >/dev/null 2>&1 && command -v docker-compose >/dev/null 2>&1 || \
		{ echo "installing docker.io, docker-compose and debootstrap"; apt-get update -qq && \
		  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io docker-compose debootstrap >/dev/null; }
	@started=0; \
	if ! docker info >/dev/null 2>&1; then \
		logdir=$$(mktemp -d) || exit 1; \
		echo "starting dockerd (default bridge in 198.19.255.0/24), its log in $$logdir/dockerd.log"; \
		nohup dockerd --bip 198.19.255.1/24 >"$$logdir/dockerd.log" 2>&1 & started=$$!; \
		for i in $$(seq 120); do docker info >/dev/null 2>&1 && break; sleep 0.5; done; \
	fi; \
	fresh=0; docker image inspect $(BASE_IMAGE) >/dev/null 2>&1 || fresh=1; \
	sh docker/build-base.sh $(BASE_IMAGE) && \
	LINKSHAPER_BASE_IMAGE=$(BASE_IMAGE) $(BIN)/pytest -q -m container tests/container; \
	status=$$?; \
	if [ $$fresh = 1 ] && [ -z "$$KEEP_BASE" ]; then docker image rm -f $(BASE_IMAGE) >/dev/null; fi; \
	if [ $$started != 0 ]; then kill $$started; wait $$started 2>/dev/null; [ $$status != 0 ] || rm -rf "$$logdir"; fi; \
	exit $$status

# The tests that need no root (tests/unit): no network namespaces, no Docker.
test-fast: install
	$(BIN)/pytest -q tests/unit

lint: install
	$(BIN)/ruff format --check engine shaper_tui tests bench screenshots
	$(BIN)/ruff check engine shaper_tui tests bench screenshots
	$(BIN)/mypy engine shaper_tui tests bench screenshots
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff format engine shaper_tui tests bench screenshots
	$(BIN)/ruff check --fix engine shaper_tui tests bench screenshots

bench: install
	$(BIN)/python -m bench.speed --runs 3 --profile

# What the TUI costs in a real terminal at 200x60: CPU steady and after a burst of keys, keys
# lost, RSS over 30 minutes of scripted use (root: the demo lab).
bench-tui: install
	$(BIN)/python -m bench.tui_cost --minutes 30

# docs/ as a site (mkdocs, material theme) into site/, git-ignored; --strict fails on any warning.
docs:
	@command -v uv >/dev/null 2>&1 || python3 -m pip install --quiet --disable-pip-version-check uv
	uv sync --frozen --extra testcontainers --group docs
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

# The package as users install it: an sdist and a wheel in dist/ (git-ignored).
wheel: install
	rm -rf dist
	$(BIN)/python -m build --outdir dist

# The wheel in a fresh venv of its own, no checkout and no uv: its commands must work there.
wheel-check: wheel
	bash .ci/wheel-check dist

# Build and tool leftovers only. Labs are named machine-wide (the default prefix `ls` may be
# another user's lab), so none is removed unless named: `make clean PREFIX=P` also runs
# `linkshaper lab down --prefix P`.
clean:
	$(if $(PREFIX),-$(BIN)/linkshaper lab down --prefix '$(PREFIX)',@echo "clean: no lab removed (PREFIX=P removes lab P)")
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache site dist
