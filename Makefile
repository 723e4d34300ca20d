# davmail developer tasks. `make help` lists them. The test logic lives in
# scripts/test.sh (what CI runs); these targets call its steps.

GO      ?= go
BIN     ?= bin/davmail
# Arguments for `make run`, e.g. make run ARGS='serve -config davmail.yaml'.
ARGS    ?=

.DEFAULT_GOAL := help
.PHONY: help build test test-race check fuzz bench run peers clean

help: ## list the targets
	@awk 'BEGIN { FS = ":.*## " } /^[a-zA-Z_-]+:.*## / { printf "  %-10s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

build: ## build every package and the davmail binary into bin/
	$(GO) build ./...
	$(GO) build -o $(BIN) ./cmd/davmail

test: ## the full test run, as CI does it (scripts/test.sh)
	scripts/test.sh

test-race: ## go test -race -shuffle=on ./... only
	scripts/test.sh test

check: ## go vet and the gofmt check
	scripts/test.sh check

fuzz: ## run every fuzz target (FUZZTIME each, default 10s within FUZZ_BUDGET=180 s)
	scripts/test.sh fuzz

bench: ## every benchmark once (-benchtime 1x, short mode)
	scripts/test.sh bench

peers: ## install the test peers (litmus, cadaver, rclone, apache2, dovecot) if missing
	scripts/test.sh peers

run: ## run davmail from source with ARGS
	$(GO) run ./cmd/davmail $(ARGS)

clean: ## remove build output
	rm -rf bin
