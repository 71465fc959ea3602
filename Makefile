# Two commands do all the set-up on a fresh machine (see README):
#   make run    installs into .venv and runs the default job (small CPU suite, installed frameworks)
#   make test   installs into .venv and runs the test suite
#   make test-plugins  installs each plugin of plugins/ into .venv, runs its tests, uninstalls it again
PYTHON ?= python3
VENV ?= .venv
EXTRAS ?= all,test
BIN := $(VENV)/bin
ARGS ?=

.PHONY: setup run test test-plugins lint clean

setup: $(VENV)/.installed

# The example workload plugin is installed too (no dependencies of its own: it uses what dlbench installed), so
# that the smoke suite and the tests exercise the plugin door end to end.
$(VENV)/.installed: pyproject.toml constraints.txt examples/resnet_plugin/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[$(EXTRAS)]'
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e examples/resnet_plugin
	touch $@

run: setup
	$(BIN)/dlbench run $(ARGS)

test: setup
	bash scripts/setup-browser.sh
	bash scripts/test.sh

test-plugins: setup
	bash scripts/test-plugins.sh

lint: setup
	$(BIN)/ruff check dlbench tests
	$(BIN)/mypy dlbench

clean:
	rm -rf $(VENV) build *.egg-info
