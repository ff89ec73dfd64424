# Leva: `make run` starts the demo platform, `make test` runs the whole test suite.
# Both start with `make install`, which is safe to run again: it only redoes what changed.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install run run-isolated test check clean

install: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c requirements.lock -e '.[test]'
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

run: install
	$(BIN)/jupyterhub -f jupyterhub_config.py

# Production on one machine: each member's server as their own system account (README, SECURITY.md).
# As root: sudo make run-isolated
run-isolated: install
	LEVA_ISOLATION=users $(BIN)/jupyterhub -f jupyterhub_config.py

test: install
	tests/start-services.sh
	$(BIN)/python -m pytest $(PYTEST_ARGS)

check: install
	$(BIN)/leva check

clean:
	rm -rf $(VENV) node_modules
