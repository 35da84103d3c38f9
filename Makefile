# MCP integration service. `make run` serves everything in one process with
# embedded NATS and FerretDB; `make test` is what CI runs.
GO            ?= go
BIN           := bin/mcp-service
GOLANGCI_VER  := v2.15.0
GOLANGCI      := .bin/golangci-lint
# make run PORT=9000 serves on another port (default: MCP_SERVICE_PORT, else 8001).
PORT          ?= $(or $(MCP_SERVICE_PORT),8001)

.PHONY: all build run test unit race lint vet bench soak fuzz cluster-test clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) ./cmd/mcp-service

run: build
	MCP_SERVICE_PORT=$(PORT) ./$(BIN) serve

$(GOLANGCI):
	GOBIN=$(CURDIR)/.bin $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_VER)

lint: $(GOLANGCI)
	$(GOLANGCI) run ./...

vet:
	$(GO) vet ./...

unit:
	$(GO) test -count=1 -timeout 8m ./...

# race: the packages of the job path's concurrency (dispatcher, worker,
# budget, tools service, messages) again under the race detector.
RACE_PKGS := ./queue ./worker ./budget ./tools ./messages
race:
	$(GO) test -race -count=1 -timeout 4m $(RACE_PKGS)

# test: vet, lint, then every test (real servers; see README), then the race pass.
test: vet lint unit race

# bench: load figures of `serve` in its default configuration next to the
# peer MCP Toolbox (npm @toolbox-sdk/server-linux-x64, pinned, cached in
# .cache/toolbox/) and a direct pgx floor: req/s, p50, p99, ratios, server
# CPU per request, RSS idle and loaded, split-mode scale-out, the queue's own
# round trip (in-process, no HTTP, no database), then the goals.
# Opt-out figures: go run ./cmd/mcpbench -sync 1s -scale=false
bench: build
	$(GO) run ./cmd/mcpbench -bin $(BIN)

# soak: a steady 100-row select on a default `serve`, reporting data dir
# size, RSS, goroutines and open fds; e.g. make soak SOAK_DURATION=1h SOAK_C=64
SOAK_DURATION ?= 10m
SOAK_C        ?= 32
SOAK_EVERY    ?= 30s
soak: build
	$(GO) run ./cmd/mcpbench -bin $(BIN) -soak $(SOAK_DURATION) -soak-c $(SOAK_C) -soak-every $(SOAK_EVERY)

# fuzz: each fuzz target for FUZZTIME (default 30s); make test runs their seeds.
fuzz:
	scripts/fuzz.sh

# cluster-test: the service on simulated hosts (network namespaces, root):
# 3 NATS at R3, FerretDB, 2 API nodes behind haproxy, 4-6 workers, under load
# and faults. CLUSTER_REDUCED=1 is the ~1 minute CI variant. See
# scripts/cluster/README.md.
cluster-test:
	scripts/cluster-test.sh

clean:
	rm -rf bin .bin
