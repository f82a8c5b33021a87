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

## review: the security review as a reviewer runs it: synth with every cdk-nag pack on, cfn-lint,
## checkov, the stale-acknowledgement audit, then one report per region in cdk.out/review/
REVIEW_VENV := .venv-review
CHECKOV := $(REVIEW_VENV)/bin/checkov
ALL_NAG_PACKS := NIST80053R5,HIPAASecurity

# checkov gets its own virtualenv: its pinned dependencies conflict with requirements-dev.txt.
$(CHECKOV): requirements-review.txt
	$(PYTHON) -m venv $(REVIEW_VENV)
	$(REVIEW_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-review.txt
	touch $@

.PHONY: review
review: install $(CHECKOV)
	$(CDK) synth --quiet -c nag_packs=$(ALL_NAG_PACKS)
	mkdir -p cdk.out/review
	@status=0; \
	$(VENV)/bin/cfn-lint cdk.out/*.template.json || status=1; \
	$(PY) tools/run_checkov.py cdk.out --json cdk.out/review/checkov.json || status=1; \
	$(PY) tools/stale_acknowledgements.py -c nag_packs=$(ALL_NAG_PACKS) \
		--json cdk.out/review/stale-acknowledgements.json || status=1; \
	$(PY) tools/review_summary.py cdk.out --checkov cdk.out/review/checkov.json \
		--stale cdk.out/review/stale-acknowledgements.json || status=1; \
	echo "Review reports: cdk.out/review/GemmaBatch-<region>.md"; \
	exit $$status

## test: the whole test suite (synthesizes once, with bundling, into its own folder)
test: install $(CHECKOV)
	$(PY) -m pytest

## local: the sample jobs end to end against moto server and the Mantle emulator on 127.0.0.1
## (options go in LOCAL_ARGS, e.g. make local LOCAL_ARGS="--fault-rate 0.3 --keep-running")
local: install
	$(PY) -m gemma_batch local $(LOCAL_ARGS)

## bench: run the benchmarks in bench/ and rewrite the results in BENCHMARKS.md (includes a `make test` run)
.PHONY: bench
bench: install
	$(PY) bench/run_all.py

clean:
	rm -rf cdk.out build .pytest_cache
