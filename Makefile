# break-glass: `make demo` runs one whole cycle locally, `make test` runs every test.
# Everything the targets need is installed on first use: a Python venv (.venv) with the
# pinned moto server and cargo-lambda from PyPI, and the npm packages of cdk/.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
BIN    := target/debug/break-glass
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: help test test-rust test-testbed test-cdk lint browser demo dev bench load scale fuzz build synth deploy clean-dev policy-check leases-check

help: ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 14

$(VENV)/.installed: testbed/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r testbed/requirements.txt
	touch $@

cdk/node_modules/.installed: cdk/package.json cdk/package-lock.json
	cd cdk && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# checkov gets a venv of its own: its boto3 pin conflicts with moto's.
.venv-checkov/.installed: cdk/requirements-checkov.txt
	$(PYTHON) -m venv .venv-checkov
	.venv-checkov/bin/pip install --quiet --disable-pip-version-check -r cdk/requirements-checkov.txt
	touch $@

target/debug/break-glass: FORCE
	cargo build --quiet --bin break-glass
FORCE:

# The policy file the CDK app ships: -c policyFile=… in CDK_ARGS (relative to cdk/, where the
# app runs), else config/policy.toml, else the example.
POLICY_ARG := $(patsubst policyFile=%,%,$(filter policyFile=%,$(CDK_ARGS)))
SHIPPED_POLICY := $(if $(POLICY_ARG),$(if $(filter /%,$(POLICY_ARG)),$(POLICY_ARG),cdk/$(POLICY_ARG)),$(if $(wildcard config/policy.toml),config/policy.toml,config/policy.example.toml))

test: lint test-testbed test-rust test-cdk ## Run every test (Rust, local stack, ASL, CDK)
	@echo "make test: all passed"

lint: ## cargo fmt --check and clippy with warnings as errors
	cargo fmt --check
	cargo clippy --quiet --all-targets -- -D warnings

test-testbed: $(VENV)/.installed ## Self-tests of the local test bed (moto extension, Slack fake)
	$(PY) -m unittest discover -s testbed -p 'test_*.py'

browser: ## Debian's chromium, for the test that looks at the HTML report in a real browser
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium (needs root)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# The fault suite spends minutes nearly idle, waiting out the production Revoke retry schedule:
# it runs alongside the other suites instead of after them, and its output follows theirs.
SUITES := $(filter-out faults,$(basename $(notdir $(wildcard tests/*.rs))))
test-rust: $(VENV)/.installed browser ## Unit tests, and integration tests against the local stack
	cargo test --quiet --no-run
	@mkdir -p target; \
	cargo test --quiet --test faults > target/faults.log 2>&1 & faults=$$!; \
	rest=0; { cargo test --quiet --lib --bins $(addprefix --test ,$(SUITES)) && cargo test --quiet --doc; } || rest=$$?; \
	f=0; wait $$faults || f=$$?; \
	echo "tests/faults.rs (ran alongside the others):"; cat target/faults.log; \
	[ $$rest -eq 0 ] && [ $$f -eq 0 ]

test-cdk: $(VENV)/.installed .venv-checkov/.installed cdk/node_modules/.installed $(BIN) ## ASL validation, CDK assertions (the CDK app reads the policy through the binary), cdk-nag, cfn-lint, checkov
	cd cdk && npm test

demo: $(VENV)/.installed $(BIN) ## One whole break-glass cycle locally; the report lands in target/demo/
	$(PY) testbed/demo.py --binary $(BIN)

CLOUDTRAIL_DELAY_SECONDS ?= 900
dev: $(VENV)/.installed $(BIN) ## Start the local stack in the foreground; writes target/dev/env (CLOUDTRAIL_DELAY_SECONDS=5 for a quick cycle)
	$(PY) testbed/stack.py --env-file target/dev/env --binary $(BIN) --cloudtrail-delay-seconds $(CLOUDTRAIL_DELAY_SECONDS)

scale: $(VENV)/.installed $(BIN) ## Break glass at organization scale: seeds its own local stack, prints the reconciler's and the type-ahead's figures (docs/scale.md); not part of make test
	$(PY) testbed/scale.py --binary $(BIN)

LAMBDA_TARGET := target/lambda-build
bench: $(VENV)/.installed ## Build the release binaries (x86_64, arm64), run the benchmarks, print their figures
	@for arch in x86-64 arm64; do \
	  dir=target/lambda-$${arch/-/_}; \
	  CARGO_TARGET_DIR=$(LAMBDA_TARGET) cargo lambda build --quiet --release --$$arch --bin break-glass --lambda-dir $$dir \
	    && $(PY) -c 'import sys,zipfile; z=zipfile.ZipFile(sys.argv[1]+"/bootstrap.zip","w",zipfile.ZIP_DEFLATED); z.write(sys.argv[1]+"/bootstrap","bootstrap"); z.close()' $$dir/break-glass \
	    || echo "the $$arch release build failed here; its size is not measured" >&2; \
	done
	cargo bench --quiet

FUZZ_SECONDS ?= 60
fuzz: ## Run each cargo fuzz target for FUZZ_SECONDS (default 60); not part of make test
	@command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
	cd fuzz && for t in slack_request policy; do \
	  RUSTC_BOOTSTRAP=1 cargo fuzz run $$t -- -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 || exit 1; \
	done

load: $(VENV)/.installed ## The bounded load test (loopback only, stops by itself), with its latency figures
	cargo test --quiet --test load -- --nocapture

build: $(VENV)/.installed ## Release build for Lambda (arm64, falls back to x86_64) into target/lambda/
	cargo lambda build --release --arm64 --bin break-glass || \
	  { echo "arm64 build failed; building x86_64 instead" >&2; cargo lambda build --release --x86-64 --bin break-glass; }

policy-check: $(BIN) ## Check the policy file the CDK app would ship (-c policyFile=… in CDK_ARGS, else config/policy.toml)
	$(BIN) policy check $(SHIPPED_POLICY)

leases-check: $(BIN) ## Name the live leases the policy about to be deployed would no longer allow (AWS credentials needed)
	@table="$${TABLE_NAME:-$$(aws cloudformation describe-stacks --stack-name BreakGlassStack \
	    --query "Stacks[0].Outputs[?OutputKey=='TableName'].OutputValue" --output text 2>/dev/null || true)}"; \
	if [ -z "$$table" ] || [ "$$table" = "None" ]; then \
	  echo "leases-check: no deployed break-glass table found (a first deploy?): no live lease to check"; \
	else $(BIN) leases check --policy $(SHIPPED_POLICY) --table "$$table"; fi

synth: policy-check cdk/node_modules/.installed ## Synthesize the templates into cdk/cdk.out (offline; example values fill what CDK_ARGS lacks)
	cd cdk && npx cdk synth -c example=true --quiet $(CDK_ARGS)

deploy: policy-check leases-check build cdk/node_modules/.installed ## Deploy: make deploy CDK_ARGS="-c ssoInstanceArn=... -c identityStoreId=..."
	cd cdk && npx cdk deploy BreakGlassStack $(CDK_ARGS)
