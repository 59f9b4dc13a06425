# Mizuchi Uploadr. `make help` lists the targets.
SHELL := /bin/bash
TOOLS_DIR ?= $(HOME)/.cache/mizuchi/tools
export MIZUCHI_TOOLS_DIR := $(TOOLS_DIR)
export PATH := $(TOOLS_DIR)/bin:$(PATH)

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
BIN     := bin/mizuchi
ARGS    ?=
FUZZTIME ?= 5s

.DEFAULT_GOAL := help

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: run
run: build ## Run the proxy (config from --config, $$MIZUCHI_CONFIG, ./config.yaml or the built-in default). ARGS="--config x.yaml"
	./$(BIN) serve $(ARGS)

.PHONY: build
build: ## Build bin/mizuchi.
	CGO_ENABLED=0 go build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/mizuchi

.PHONY: tools
tools: ## Install the pinned test tools (S3 server, OPA, OpenFGA, Jaeger, clients) into the cache.
	./scripts/install-tools.sh

.PHONY: test
test: tools lint build ## Run the whole test suite: lint, unit, end-to-end against real servers, short fuzzing.
	go test -race -count=1 -timeout 25m ./...
	go test -count=1 -run SixGiB -timeout 30m ./internal/backend/s3/ -long
	$(MAKE) --no-print-directory fuzz FUZZTIME=3s

.PHONY: lint
lint: ## gofmt, go vet and staticcheck.
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	go vet ./...
	staticcheck ./...

.PHONY: fuzz
fuzz: ## Run every fuzz target for FUZZTIME each (default 5s; e.g. make fuzz FUZZTIME=10m).
	@set -e; for pkg in $$(go list ./...); do \
		for f in $$(go test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "fuzz $$pkg $$f"; go test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 1x $$pkg; \
		done; \
	done

.PHONY: bench
bench: ## Run the Go benchmarks.
	go test -run '^$$' -bench . -benchmem ./...

.PHONY: clean
clean: ## Remove build output.
	rm -rf bin
