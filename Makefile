# Two commands on a fresh machine: `make synth` and `make test`. Both install what they need.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CDK := node_modules/.bin/cdk
INSTALLED := $(VENV)/.installed
LAMBDA_REQUIREMENTS := $(wildcard lambda/*/requirements.txt)

.PHONY: install synth lint test local clean

install: $(INSTALLED) $(CDK)

$(INSTALLED): requirements.txt requirements-dev.txt $(LAMBDA_REQUIREMENTS)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

$(CDK): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

## synth: synthesize every region with the cdk-nag review, then write the review summaries
synth: install
	$(CDK) synth --quiet
	$(PY) tools/review_summary.py cdk.out
	@echo "Templates: cdk.out/GemmaBatch-<region>.template.json"
	@echo "Review summaries: cdk.out/review/GemmaBatch-<region>.md"

## lint: cfn-lint on the synthesized templates (rules it ignores are listed in .cfnlintrc.yaml)
lint: synth
	$(VENV)/bin/cfn-lint cdk.out/*.template.json

## test: the whole test suite (synthesizes once, with bundling, into its own folder)
test: install
	$(PY) -m pytest

clean:
	rm -rf cdk.out build .pytest_cache
