# The two commands of the README, and a few more. Everything runs from a local virtualenv (.venv)
# that the first command creates; the broker's jars go to ~/.cache/bosai (outside the repo).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test unit integration lint format docs clean lock audit

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)          ## set up, start the embedded broker, apply topics, run the hub on real data
	$(BIN)/bosai demo

test: $(STAMP)          ## set up and run every test (starts and stops its own Kafka broker)
	$(BIN)/pytest

unit: $(STAMP)          ## only the fast tests that need no broker
	$(BIN)/pytest -m "not integration"

integration: $(STAMP)   ## only the tests against the real broker
	$(BIN)/pytest -m integration

lint: $(STAMP)          ## ruff (lint rules, formatting), then mypy on streams/ ([tool.mypy]); CI runs this before the tests
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy streams

format: $(STAMP)        ## ruff: fix what can be fixed and reformat
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

docs: $(STAMP)          ## the documentation site (docs/, mkdocs.yml), built strictly into a temporary folder, then removed
	@site=$$(mktemp -d) && trap 'rm -rf "$$site"' EXIT && $(BIN)/mkdocs build --strict --quiet --site-dir "$$site" \
		&& echo "docs: built $$(find "$$site" -name '*.html' | wc -l) pages (mkdocs build --strict)"

lock: $(STAMP)          ## regenerate requirements/deploy.lock (pinned, hashed) from pyproject.toml's dependencies
	CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
		--no-emit-find-links --no-emit-index-url --build-deps-for wheel --output-file requirements/deploy.lock pyproject.toml

audit: $(STAMP)         ## known vulnerabilities of requirements/deploy.lock (pip-audit), against the dated allowlist
	$(BIN)/bosai audit

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
