# wrapi — run `make help` for the targets.
SHELL := /bin/bash
MODULES := pkg cmd/wrapi functions infra integration
GO ?= go
export GOFLAGS ?= -buildvcs=false
FUZZTIME ?= 10s

.PHONY: help run test test-unit test-fuzz integration-test build build-verify deploy preview bench lint check tidy clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  %-18s %s\n", $$1, $$2}'

run: ## run the local proxy on the embedded store (OPENAI_API_KEY from the environment)
	@scripts/ensure-go.sh
	cd cmd/wrapi && $(GO) run . serve $(ARGS)

test: ## the whole test suite: unit tests (race detector) in every module + a short fuzz run
	@scripts/ensure-go.sh
	scripts/test.sh

test-unit: ## unit tests only, every module
	scripts/test.sh unit

test-fuzz: ## fuzz every target for FUZZTIME (default 10s)
	FUZZTIME=$(FUZZTIME) scripts/test.sh fuzz

integration-test: ## end-to-end tests: containers (Docker, or podman) if available, else local processes (WRAPI_IT_ENV=auto|containers|processes)
	@scripts/ensure-go.sh
	scripts/integration-test.sh

build: ## build bin/wrapi and the Lambda zips dist/{proxy,admin,reaper}.zip (reproducible)
	@scripts/ensure-go.sh
	scripts/build.sh

build-verify: ## build the Lambda zips twice (second from an empty cache) and compare bytes
	scripts/build.sh --verify

deploy: ## deploy a stage: make deploy STAGE=dev (builds the Lambda zips, then pulumi up)
	@test -n "$(STAGE)" || { echo "usage: make deploy STAGE=<stack>"; exit 2; }
	@scripts/ensure-go.sh
	scripts/build.sh --functions
	pulumi up --stack $(STAGE)

preview: ## what make deploy STAGE=… would change (builds the Lambda zips, then pulumi preview)
	@test -n "$(STAGE)" || { echo "usage: make preview STAGE=<stack>"; exit 2; }
	@scripts/ensure-go.sh
	scripts/build.sh --functions
	pulumi preview --stack $(STAGE) --diff

bench: ## benchmarks (proxy overhead vs a bare reverse proxy, parsers, metering)
	scripts/bench.sh

lint: ## go vet + staticcheck in every module
	scripts/lint.sh

check: lint test ## lint + test, then fail if the tree is dirty (generated files out of date)
	@git diff --exit-code --stat || (echo "check: the tree changed; commit or fix the generated files" && exit 1)

tidy: ## go mod tidy in every module
	for m in $(MODULES); do (cd $$m && GOWORK=off $(GO) mod tidy) || exit 1; done

clean: ## remove build output
	rm -rf bin dist
