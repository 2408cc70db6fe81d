# chute: `make demo` and `make test` work on a fresh machine (they install what they need).
VENV   ?= .venv
IAC_VENV ?= .venv-iac
PYTHON ?= python3
BIN     = $(VENV)/bin
DEMO   ?= demo

.PHONY: install iac postgres mariadb chromium demo test bench screenshots clean

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

install: $(BIN)/.installed

# cfn-lint, sam, checkov and python-hcl2 for `chute deploy aws --check`, apart from chute's own packages.
$(IAC_VENV)/.installed: scripts/iac-requirements.txt
	test -x $(IAC_VENV)/bin/python || $(PYTHON) -m venv $(IAC_VENV)
	$(IAC_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r scripts/iac-requirements.txt
	touch $@

iac: $(IAC_VENV)/.installed

# PostgreSQL server binaries for the embedded cluster (Debian/Ubuntu: apt-get).
postgres:
	@bash scripts/ensure-postgres.sh

# MariaDB's server for the database-extraction tests (they skip, saying why, without it).
mariadb:
	@bash scripts/ensure-mariadb.sh

# Debian's Chromium for the dashboard's browser tests (Playwright drives it; it never downloads one).
chromium:
	@bash scripts/ensure-chromium.sh

# Create the stocks example (first time), load it into the embedded PostgreSQL, show the ledger.
demo: install postgres
	@test -f $(DEMO)/chute.toml || $(BIN)/chute init $(DEMO) --example stocks --files 300
	$(BIN)/chute run --project $(DEMO)
	$(BIN)/chute status --project $(DEMO)
	@echo
	@echo "Rows are in PostgreSQL: psql \"\$$($(BIN)/chute db url -p $(DEMO))\" -c 'select count(*) from historical_stocks_data'"

test: install postgres mariadb chromium iac
	$(BIN)/pytest

# The dashboard's pages, at desktop and phone width, into docs/screenshots/ (docs/dashboard.md shows them).
screenshots: install postgres chromium
	$(BIN)/python scripts/screenshots.py

bench: install postgres
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[bench]'
	$(BIN)/python benchmarks/bench_load.py
	$(BIN)/python benchmarks/bench_peers.py
	$(BIN)/python benchmarks/bench_stocks.py

clean:
	-test -d $(DEMO) && $(BIN)/chute db stop --project $(DEMO)
	rm -rf $(DEMO) bench-data .pytest_cache
	-test -x $(BIN)/chute && $(BIN)/chute db prune  # the demo's cluster data kept outside the project, if any
