# Greenwave — run `make help` for the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

MOD       := github.com/greenwave-city/greenwave
MODULES   := proto pkg services/collector services/cleaner services/trainer services/predictor services/signalcontrol cmd/greenwave deploy/check
SERVICES  := collector cleaner trainer predictor signalcontrol
TOOLS     := $(CURDIR)/.tools/bin
GOTEST    := go test -race -shuffle=on -count=1 -timeout 30m
# How long `make fuzz` runs each fuzz target (the CI's fuzz pass sets a shorter one).
FUZZTIME  ?= 10s
# Pinned tool versions: `make proto` and `make lint` install exactly these.
BUF_VERSION                := v1.75.0
PROTOC_GEN_GO_VERSION      := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.0
STATICCHECK_VERSION        := v0.8.2
# Packages that talk to Kafka: `make test-kafka` runs them against a real broker.
KAFKA_PKGS := $(MOD)/pkg/stream/... $(MOD)/services/... $(MOD)/cmd/greenwave/...

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-13s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: run
run: ## Run the whole system on an embedded Kafka with the gateway simulator (Ctrl-C stops)
	go run ./cmd/greenwave dev

.PHONY: build
build: ## Build the five services and the greenwave CLI into bin/
	@mkdir -p bin
	@for s in $(SERVICES); do echo "go build ./services/$$s"; go build -o bin/$$s ./services/$$s || exit 1; done
	go build -o bin/greenwave ./cmd/greenwave

.PHONY: test
test: ## Run every test (embedded kfake broker, race detector, shuffled)
	$(GOTEST) work

.PHONY: test-kafka
test-kafka: ## Run the Kafka integration suite against a real Apache Kafka 4.1 broker (fetched from Maven Central)
	bash deploy/kafka/kafka.sh test -- $(GOTEST) $(KAFKA_PKGS)

.PHONY: test-chaos
test-chaos: ## Replay a real data slice through the five services on Apache Kafka while killing them, restarting the broker and rebalancing; print the accounting table
	bash deploy/kafka/kafka.sh test -- env GREENWAVE_CHAOS=1 GREENWAVE_CHAOS_BROKER_RESTART="bash $(CURDIR)/deploy/kafka/kafka.sh restart 5" \
	  $(GOTEST) -v -run '^TestChaos$$' $(MOD)/cmd/greenwave/internal/e2e

.PHONY: test-rules
test-rules: ## Check the Prometheus config and rules and unit-test every alert with promtool (needs prometheus)
	promtool check config --syntax-only deploy/prometheus/prometheus.yml
	promtool check rules deploy/prometheus/rules.yml
	cd deploy/prometheus && promtool test rules rules_test.yml

.PHONY: test-prometheus
test-prometheus: test-rules ## Evaluate every dashboard query and rule with prometheus against a running stack (needs prometheus)
	GREENWAVE_REQUIRE_PROMETHEUS=1 $(GOTEST) -v -run '^TestPrometheusEvaluatesDashboardAndRules$$' $(MOD)/cmd/greenwave/internal/e2e

.PHONY: bench
bench: build ## Run every benchmark (real Kafka for the services) and write bench/report.json and report.md; PROFILE=1 writes pprof profiles
	bash bench/run.sh

.PHONY: loadtest
loadtest: build ## Load-test the whole stack on real Kafka (10 000 detectors); merge its rows into bench/report.*; ARGS=... passes flags
	bash bench/loadtest.sh $(ARGS)

.PHONY: fuzz
fuzz: ## Run every fuzz target for FUZZTIME each (default 10s; one instrumented test binary per package)
	@set -e; bin=$$(mktemp -d); trap 'rm -rf "$$bin"' EXIT; cache=$$(go env GOCACHE)/fuzz; start=$$SECONDS; \
	for line in $$(go list -f '{{.ImportPath}}={{.Dir}}' work); do \
	  pkg=$${line%%=*}; dir=$${line#*=}; \
	  grep -qs '^func Fuzz' "$$dir"/*_test.go || continue; \
	  go test -c -fuzz . -o "$$bin/t.test" "$$pkg"; \
	  for f in $$(cd "$$dir" && "$$bin/t.test" -test.list '^Fuzz'); do \
	    echo "fuzz $$pkg $$f"; \
	    found=$$(ls "$$dir/testdata/fuzz/$$f" 2>/dev/null | wc -l); \
	    if (cd "$$dir" && "$$bin/t.test" -test.run '^$$' -test.fuzz "^$$f\$$" -test.fuzztime $(FUZZTIME) \
	      -test.fuzzminimizetime 30s -test.fuzzcachedir "$$cache/$$pkg") >"$$bin/out" 2>&1; then cat "$$bin/out"; \
	    else cat "$$bin/out"; \
	      if [ "$$(ls "$$dir/testdata/fuzz/$$f" 2>/dev/null | wc -l)" = "$$found" ] && \
	        grep -qx '    context deadline exceeded' "$$bin/out"; then \
	        echo "fuzz: $$f: 'context deadline exceeded' as FUZZTIME ended and no failing input written: the race in Go's fuzzing coordinator (go.dev/issue/75804, fixed in Go 1.27), not a finding"; \
	      else exit 1; fi; \
	    fi; \
	  done; rm -f "$$bin/t.test"; \
	done; echo "fuzz: every target passed $(FUZZTIME) each in $$((SECONDS - start)) s"

.PHONY: tools
tools: $(TOOLS)/buf $(TOOLS)/protoc-gen-go $(TOOLS)/protoc-gen-go-grpc $(TOOLS)/staticcheck ## Install the pinned developer tools into .tools/bin

$(TOOLS)/buf:
	GOBIN=$(TOOLS) go install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
$(TOOLS)/protoc-gen-go:
	GOBIN=$(TOOLS) go install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
$(TOOLS)/protoc-gen-go-grpc:
	GOBIN=$(TOOLS) go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
$(TOOLS)/staticcheck:
	GOBIN=$(TOOLS) go install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

.PHONY: proto
proto: $(TOOLS)/buf $(TOOLS)/protoc-gen-go $(TOOLS)/protoc-gen-go-grpc ## Lint the .proto files and regenerate the Go code
	cd proto && PATH=$(TOOLS):$$PATH buf lint && PATH=$(TOOLS):$$PATH buf generate

.PHONY: proto-check
proto-check: $(TOOLS)/buf $(TOOLS)/protoc-gen-go $(TOOLS)/protoc-gen-go-grpc ## Fail if generated code drifted from the .proto files, or lint/breaking checks fail
	@tmp=$$(mktemp -d) && trap 'rm -rf $$tmp' EXIT && cp -r proto $$tmp/ && \
	  (cd $$tmp/proto && PATH=$(TOOLS):$$PATH buf lint && PATH=$(TOOLS):$$PATH buf generate) && \
	  if ! diff -r -q proto $$tmp/proto; then echo "generated code is stale: run 'make proto' and commit" >&2; exit 1; fi
	@if git rev-parse -q --verify HEAD~1 >/dev/null; then \
	  cd proto && PATH=$(TOOLS):$$PATH buf breaking --against "../.git#ref=HEAD~1,subdir=proto"; fi
	@echo "proto-check: generated code up to date, lint and breaking (WIRE) checks pass"

.PHONY: lint
lint: $(TOOLS)/staticcheck ## gofmt, go vet and staticcheck over every module
	@bad=$$(gofmt -l $(MODULES)); if [ -n "$$bad" ]; then echo "gofmt needed:"; echo "$$bad"; exit 1; fi
	go vet work
	$(TOOLS)/staticcheck work

.PHONY: images
images: ## Build the container images (needs a Docker engine)
	@command -v docker >/dev/null || { echo "images: docker not found" >&2; exit 1; }
	@for s in $(SERVICES); do docker build -f services/Dockerfile --build-arg SERVICE=$$s -t greenwave/$$s . || exit 1; done
	docker build -f cmd/greenwave/Dockerfile -t greenwave/greenwave .

.PHONY: docs
docs: ## Regenerate docs/configuration.md and the demo readings deploy/demo/sample.csv
	go run ./deploy/check/cmd/gendocs
	go run ./deploy/check/cmd/gensample

.PHONY: sumo-bench
sumo-bench: build ## Run every controller on every SUMO scenario; write docs/sumo-bench/ (needs sumo)
	go run ./cmd/greenwave/sumobench --greenwave bin/greenwave --scenarios deploy/sumo --out docs/sumo-bench

.PHONY: sumo-scenarios
sumo-scenarios: ## Regenerate the SUMO scenarios in deploy/sumo/ (needs sumo and sumo-tools; CHECK=1 only verifies)
	bash deploy/sumo/generate.sh $(if $(CHECK),--check)

.PHONY: tidy
tidy: ## go mod tidy every module
	@for m in $(MODULES); do (cd $$m && go mod tidy) || exit 1; done

.PHONY: clean
clean: ## Remove build output and the real-Kafka cache
	rm -rf bin deploy/kafka/.cache deploy/kafka/.run
