# Concord's front door: `make help` lists the targets.
GO      ?= go
PORT    ?= 6379
REGIONS ?= 3
NODES   ?= 1
FUZZTIME ?= 30s
SIMSEEDS ?= 200

.PHONY: help build run test verify compat sim bench bench-region bench-repl fuzz proto clean demo demo-image demo-down

help: ## list targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-13s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## build bin/concord
	$(GO) build -o bin/concord ./cmd/concord

run: ## start a local deployment: REGIONS=3 (default) replicating regions of NODES=1 (or 3, 5) nodes, RESP on 127.0.0.1:PORT (6379) and up, data in .concord/
	$(GO) run ./cmd/concord local --regions $(REGIONS) --nodes $(NODES) --port $(PORT)

test: ## unit, property, server and Redis-compatibility tests
	$(GO) test -count=1 -timeout 20m ./...

verify: ## gofmt check, go vet, tests with -race
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) test -count=1 -race -timeout 30m ./...

compat: ## respdiff against redis-server: 10 seeds x 20000 ops, RESP2 and RESP3
	CONCORD_COMPAT=require CONCORD_COMPAT_SEEDS=10 $(GO) test -count=1 -timeout 60m -run TestCompat -v ./cmd/concord

sim: build ## long simulation sweep: every deterministic scenario x SIMSEEDS (200) seeds, report in sim-report/, then 5 real-process runs of 3 regions x 3 nodes (docs/simulations.md)
	$(GO) run ./cmd/concord-sim -scenario all -seeds $(SIMSEEDS) -report sim-report
	$(GO) run ./cmd/concord-sim -proc -binary bin/concord -regions 3 -nodes 3 -seeds 5

bench: build ## redis-benchmark beside redis-server: single node and memory per key, 1- and 3-node regions, failover times, replication lag and catch-up (about 20-25 min)
	$(GO) run ./cmd/benchcmp -concord bin/concord

bench-region: build ## only the region part of bench: regions beside redis-server with appendfsync, and failover times (about 10 min)
	$(GO) run ./cmd/benchcmp -concord bin/concord -single=false -repl=false

bench-repl: build ## only the replication part of bench: lag between two regions, rate steps, catch-up of 1M keys (about 5 min)
	$(GO) run ./cmd/benchcmp -concord bin/concord -single=false -region=false -failover 0

fuzz: ## run every fuzzer for FUZZTIME each (default 30s)
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list 'Fuzz.*' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run XXX -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

demo-image: ## build the static binary and the FROM scratch image concord-demo:latest
	CGO_ENABLED=0 $(GO) build -o deploy/docker/concord ./cmd/concord
	docker build -q -t concord-demo:latest deploy/docker

demo: demo-image ## docker-compose demo: 3 regions x 3 nodes, partition, leader kill, heal, convergence (docs/demo.md); DEMO_SHORT=1 for a bounded run that cleans up
	@if [ -n "$(DEMO_SHORT)" ]; then GO=$(GO) deploy/docker/demo.sh short; \
	else GO=$(GO) deploy/docker/demo.sh up && GO=$(GO) deploy/docker/demo.sh story; fi

demo-down: ## remove the demo's containers, networks and volumes
	deploy/docker/demo.sh down

proto: ## regenerate proto/*.pb.go (needs protoc, protoc-gen-go and protoc-gen-go-grpc; the generated code is committed)
	cd proto && protoc --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative *.proto

clean: ## remove build output and the local deployment's data
	rm -rf bin .concord deploy/docker/concord sim-report
