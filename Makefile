# nfsimap — run `make help` for the targets.

GO          ?= go
GOBIN       := $(shell $(GO) env GOPATH)/bin
STATICCHECK := $(GOBIN)/staticcheck
BIN         := bin/nfsimap
PKGS        := ./...
FUZZTIME    ?= 10s
TESTFLAGS   ?=

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets.
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*## "}; {printf "  %-14s %s\n", $$1, $$2}'

.PHONY: build
build: ## Build bin/nfsimap.
	$(GO) build -o $(BIN) ./node

.PHONY: run
run: build ## Start one node on 127.0.0.1:1143 with a demo user (demo/demo) and spool in ./var.
	./$(BIN) demo --dir var

.PHONY: deps
deps: ## Install what the tests need (Debian packages, staticcheck).
	bash .ci/deps

.PHONY: lint
lint: deps ## go vet, staticcheck, gofmt and go mod tidy checks.
	$(GO) vet $(PKGS)
	$(STATICCHECK) $(PKGS)
	@out="$$(gofmt -l $$(find . -name '*.go' -not -path './var/*'))"; \
		if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) mod tidy -diff

.PHONY: test
test: lint ## Everything CI runs: lint, then all tests with the race detector.
	$(GO) test -race -shuffle=on -timeout 20m $(TESTFLAGS) $(PKGS)

.PHONY: bench
bench: ## Go benchmarks once each, then nfsimap vs Dovecot side by side (root; installs Dovecot if missing; about 10 min).
	$(GO) test -run '^$$' -bench . -benchmem -count 1 $(PKGS)
	bash .ci/bench full

.PHONY: bench-quick
bench-quick: ## nfsimap vs Dovecot, small (about 2 min), for development.
	bash .ci/bench quick

.PHONY: fuzz
fuzz: ## Run every fuzz target for FUZZTIME (default 10s) each.
	FUZZTIME=$(FUZZTIME) bash .ci/fuzz

.PHONY: torture
TORTURE_DURATION ?= 3m
torture: ## The spool torture test, TORTURE_DURATION (default 3m) per fault variant (10 variants).
	NFSIMAP_TORTURE_DURATION=$(TORTURE_DURATION) $(GO) test -race -run TestTorture -timeout 6h -v ./internal/torture/

.PHONY: clean
clean: ## Remove build output and the demo spool.
	rm -rf bin var
