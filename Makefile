SHELL := /bin/bash
GO    ?= go
BIN   := $(CURDIR)/.tmp/bin
PROTO := proto/vda/v1/resources.proto proto/vda/v1/portal.proto proto/vda/v1/agent.proto
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build every daemon into .tmp/bin
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/vda-portal ./daemons/portal
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/vda-dnagent ./daemons/dnagent
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/vda-cnagent ./daemons/cnagent
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/vda-dataplane ./daemons/dataplane
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/vda-monitor ./daemons/monitor
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/vdactl ./daemons/vdactl
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/vdabench ./daemons/vdabench
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/vda-cluster ./daemons/cluster

.PHONY: run
run: build ## Run a whole cluster on this machine with vda-cluster (the README's first command; flags: make run ARGS='--dns 3')
	$(BIN)/vda-cluster $(ARGS)

.PHONY: demo
demo: run ## The same as run

.PHONY: test
test: ## Run every test with -race (SQLite always; PostgreSQL/MySQL when VDA_TEST_*_DSN are set)
	@if [ -z "$$VDA_TEST_POSTGRES_DSN$$VDA_TEST_MYSQL_DSN" ]; then \
		echo "NOTE: VDA_TEST_POSTGRES_DSN and VDA_TEST_MYSQL_DSN are unset: the store and portal suites run on SQLite only"; \
	else \
		echo "store and portal suites run on SQLite$${VDA_TEST_POSTGRES_DSN:+, PostgreSQL}$${VDA_TEST_MYSQL_DSN:+, MySQL}"; \
	fi
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...
	$(MAKE) fuzz-short

.PHONY: fuzz-short
fuzz-short: ## A short run of each fuzz target, by count so that a loaded machine cannot trip fuzzing's deadline (longer runs by hand: go test -fuzz=FuzzReader -fuzztime=10m ./nvmetcp)
	$(GO) test -run '^$$' -fuzz '^FuzzReader$$' -fuzztime 50000x ./nvmetcp
	$(GO) test -run '^$$' -fuzz '^FuzzSQE$$' -fuzztime 50000x ./nvmetcp
	$(GO) test -run '^$$' -fuzz '^FuzzCommands$$' -fuzztime 3000x ./nvmetcp/target
	$(GO) test -run '^$$' -fuzz '^FuzzOpen$$' -fuzztime 20000x -fuzzminimizetime 5s ./lvs
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime 20000x ./auth
	$(GO) test -run '^$$' -fuzz '^FuzzValidate$$' -fuzztime 5000x ./portal
	$(GO) test -run '^$$' -fuzz '^FuzzDesired$$' -fuzztime 20000x ./agent

.PHONY: test-db
test-db: ## Run the store and portal suites against local PostgreSQL and MariaDB
	VDA_TEST_POSTGRES_DSN=$${VDA_TEST_POSTGRES_DSN:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable} \
	VDA_TEST_MYSQL_DSN=$${VDA_TEST_MYSQL_DSN:-root@tcp(127.0.0.1:3306)/test} \
	$(GO) test -race -count=1 ./store/... ./portal/...

.PHONY: bench
bench: ## Run the API benchmarks (see docs/benchmarks.md)
	$(GO) run ./daemons/vdabench

.PHONY: tools
tools: $(BIN)/protoc-gen-go $(BIN)/protoc-gen-connect-go

$(BIN)/protoc-gen-go: go.mod
	$(GO) build -o $@ google.golang.org/protobuf/cmd/protoc-gen-go
$(BIN)/protoc-gen-connect-go: go.mod
	$(GO) build -o $@ connectrpc.com/connect/cmd/protoc-gen-connect-go

.PHONY: generate
generate: tools ## Regenerate the protobuf and Connect code (needs protoc: apt-get install protobuf-compiler)
	@command -v protoc >/dev/null || { echo "protoc not found: apt-get install protobuf-compiler"; exit 1; }
	protoc -I proto \
		--plugin=protoc-gen-go=$(BIN)/protoc-gen-go \
		--plugin=protoc-gen-connect-go=$(BIN)/protoc-gen-connect-go \
		--go_out=proto --go_opt=paths=source_relative \
		--connect-go_out=proto --connect-go_opt=paths=source_relative \
		$(PROTO)

.PHONY: checkgenerate
checkgenerate: generate ## Fail if the generated code differs from the committed code
	@git diff --exit-code -- proto || { echo "generated code is stale: run make generate"; exit 1; }

.PHONY: lint
lint: ## go vet and gofmt
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt:"; echo "$$out"; exit 1; fi

.PHONY: fmt
fmt: ## gofmt every file
	gofmt -w $$(git ls-files '*.go')

.PHONY: clean
clean: ## Remove build output
	rm -rf .tmp
