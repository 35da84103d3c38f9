# MCP integration service. `make run` serves everything in one process with
# embedded NATS and FerretDB; `make test` is what CI runs.
GO            ?= go
BIN           := bin/mcp-service
GOLANGCI_VER  := v2.15.0
GOLANGCI      := .bin/golangci-lint
PORT          ?= 8001

.PHONY: all build run test unit lint vet bench fuzz cluster-test clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) ./cmd/mcp-service

run: build
	./$(BIN) serve

$(GOLANGCI):
	GOBIN=$(CURDIR)/.bin $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_VER)

lint: $(GOLANGCI)
	$(GOLANGCI) run ./...

vet:
	$(GO) vet ./...

unit:
	$(GO) test -count=1 -timeout 8m ./...

# test: vet, lint, then every test (real servers; see README).
test: vet lint unit

# bench: load figures (p50, p99, throughput, ratio to a direct pgx floor, CPU
# per request, RSS, scale-out), first with the default fsync-always job
# stream, then the opt-out MCP_JOB_STREAM_SYNC=1s for comparison.
bench: build
	$(GO) run ./cmd/mcpbench -bin $(BIN)
	$(GO) run ./cmd/mcpbench -bin $(BIN) -sync 1s -scale=false

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
