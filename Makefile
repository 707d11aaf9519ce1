# kmetrics — see README.md.
SHELL := /bin/bash
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null)
# The image's timestamps: the commit's time, so a rebuild is bit for bit.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
LDFLAGS  := -s -w -X main.version=$(VERSION)
# Fuzzing budgets in executions, not time: Go 1.26's fuzz coordinator can
# report "context deadline exceeded" as a failure when a duration -fuzztime
# ends while a worker is busy on a loaded machine (go.dev/issue/75804, fixed
# in 1.27); a count has no deadline to race. 7–15 s each on 2 idle cores
# (measured here: ~1,000, 500, 1,100–2,300, 700, 1,500 execs/s); make fuzz runs 15×.
FUZZSCALE ?= 1
# Every Go command here builds as the image does (static, path-free): vet,
# the unit, fuzz and e2e tests, bin/kmetrics and the image then share one
# compile of the dependencies instead of two (a cold `make test` is one
# full compile shorter).
export CGO_ENABLED := 0
export GOFLAGS := $(strip $(GOFLAGS) -trimpath)

# Where hack/build-peers.sh tells the suite each peer's path as it is built.
PEERS_DIR := $(CURDIR)/.state/peers

.PHONY: all build test peers unit fuzz-short fuzz e2e e2e-compat bench bench-adapter bench-query bench-remote-write bench-load bench-sizing bench-cluster-state image bench-startup bench-scoped-query bench-scope-load bench-footprint lint demo demo-down cluster-bins clean

all: build

# Static and path-free (CGO_ENABLED, GOFLAGS above), as in the image:
# `make image` then only relinks what this compiled.
build:
	$(GO) build -buildvcs=false -ldflags "$(LDFLAGS)" -o bin/kmetrics ./cmd/kmetrics

# Everything CI runs. The end-to-end suite's peers and clients start
# building first, in the background at the lowest priority
# (hack/build-peers.sh): cold, they take the CPU lint, unit and the control
# plane's build leave idle, and the suite's waiting; warm, nothing.
test: peers lint unit fuzz-short e2e

peers:
	bash hack/build-peers.sh $(PEERS_DIR)

lint:
	@out=$$(gofmt -l cmd pkg test); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags e2e ./test/e2e ./test/equivalence
	$(GO) vet -tags bench ./test/bench ./test/querybench ./test/loadbench ./test/rwbench ./test/scopeload ./test/footprint

# Test data from other projects (the community dashboards) stays outside the
# repository, beside it, with its licence; tests that read it skip without it.
KMETRICS_FIXTURES ?= $(abspath $(wildcard ../shared/fixtures))
export KMETRICS_FIXTURES

unit:
	$(GO) test -count=1 ./cmd/... ./pkg/... ./test/internal/...

# The fuzz targets, briefly: the scrape decoder against an in-memory appender
# (fast: parsing and index feeding) and through the guard into a real TSDB
# (slow), the custom metrics config, the monitors and the cluster-state
# label allowlist.
# Minimisation is capped: the default 60s stalls fuzzing on a binary this large.
fuzz-short:
	$(GO) test -run='^$$' -fuzz='^FuzzAppendBody$$' -fuzztime=$$((20000*$(FUZZSCALE)))x -fuzzminimizetime=2s -timeout=60m ./pkg/scraper
	$(GO) test -run='^$$' -fuzz='^FuzzAppendBodyTSDB$$' -fuzztime=$$((10000*$(FUZZSCALE)))x -fuzzminimizetime=2s -timeout=60m ./pkg/scraper
	$(GO) test -run='^$$' -fuzz=FuzzConfig -fuzztime=$$((25000*$(FUZZSCALE)))x -fuzzminimizetime=2s -timeout=60m ./pkg/rules/naming
	$(GO) test -run='^$$' -fuzz=FuzzMonitorObjects -fuzztime=$$((15000*$(FUZZSCALE)))x -fuzzminimizetime=2s -timeout=60m ./pkg/promoperator
	$(GO) test -run='^$$' -fuzz=FuzzParseAllowlist -fuzztime=$$((30000*$(FUZZSCALE)))x -fuzzminimizetime=2s -timeout=60m ./pkg/kubestate

fuzz:
	$(MAKE) fuzz-short FUZZSCALE=15

# End-to-end tests on a real control plane (built once into ~/.cache/kmetrics),
# the query API's answers against Debian's Prometheus on the same data, and
# a prometheus.yml's scrapes against Prometheus 3.15 (built from the proxy,
# cached beside the control plane).
# TestInstalledInCluster installs that image with the chart as a pod on the
# real node and runs metrics-server v0.8.0's own e2e suite against it (built
# from the module cache by test/metricsserver). TestRealKubelet runs the
# VPA's recommender (test/vpa, built by hack/build-vpa.sh, cached) live and
# on kmetrics' PromQL history, and dotdc's community dashboards against
# node_exporter (hack/build-node-exporter.sh) on the real node; TestK9s runs k9s (hack/build-k9s.sh) in tmux;
# TestKEDAPrometheusScaler runs KEDA's Prometheus scaler (test/keda,
# hack/build-keda.sh, cached).
# The image test runs the amd64 image (a relink of what build compiled),
# built twice (here and in a copy of the tree elsewhere): same digest; and
# the archive pushed with skopeo keeps its digest (hack/image's test).
# Six parallel tests (or subtests) at once on two cores (-parallel): they
# mostly wait on clocks (scrape intervals, controllers' syncs, rules'
# windows), not CPU — measured, the machine is half idle once the serial
# tests are done. The real-node test's two side-by-side parts count against
# the limit too: at four they waited 4 minutes for a slot.
# The peers and clients (VPA, k9s, node_exporter, KEDA, helm, Prometheus,
# VictoriaMetrics) come from hack/build-peers.sh, started by `peers`: a test
# that needs one still building waits for it (test/internal/peers).
# On a failure, hack/test-failures.sh prints what each failed test wrote at
# the end: streamed among the parallel tests' output, it is easy to miss.
e2e: peers build cluster-bins
	IMAGE_ARCHS=amd64 bash hack/image-reproducible.sh
	cd hack/image && $(GO) test -count=1 ./...
	cd test/metricsserver && $(GO) test -c -o ../../_output/metrics-server-e2e.test sigs.k8s.io/metrics-server/test
	METRICS_SERVER_E2E=$(CURDIR)/_output/metrics-server-e2e.test KMETRICS_IMAGE=$(CURDIR)/_output/image.tar KMETRICS_PEERS=$(PEERS_DIR) $(GO) test -tags e2e -count=1 -parallel 6 -timeout 70m -v ./test/e2e ./test/equivalence 2>&1 | tee .e2e.log | grep --line-buffered -E '^(=== RUN|--- |PASS|FAIL|ok|panic)|_test.go' ; \
	  rc=$${PIPESTATUS[0]}; [ $$rc = 0 ] || bash hack/test-failures.sh .e2e.log; exit $$rc

cluster-bins:
	bash hack/build-cluster-bins.sh

# The metrics API, kubectl top, HPA and real-kubelet tests on another
# Kubernetes release (not part of make test: it builds a second control
# plane), e.g. the oldest minor upstream supports:
#   K8S_VERSION=v1.35.4 make e2e-compat
E2E_COMPAT_TESTS ?= TestMetricsAPIVersions|TestKubectlTop|TestHPAScalesOnCPU|TestRealKubelet
# The real-kubelet test runs the VPA's recommender and node_exporter: the
# peers, as for e2e.
e2e-compat: peers build cluster-bins
	KMETRICS_PEERS=$(PEERS_DIR) $(GO) test -tags e2e -count=1 -parallel 6 -timeout 30m -v -run '^($(E2E_COMPAT_TESTS))$$' ./test/e2e 2>&1 | tee .e2e-compat.log | grep --line-buffered -E '^(=== RUN|--- |PASS|FAIL|ok|panic)|_test.go' ; \
	  rc=$${PIPESTATUS[0]}; [ $$rc = 0 ] || bash hack/test-failures.sh .e2e-compat.log; exit $$rc

# The container image, without a Docker daemon (hack/image): static
# linux/amd64 and linux/arm64 binaries on no base, non-root, as an OCI layout
# (_output/image) and OCI archive (_output/image.tar); prints the index
# digest. Reproducible: the same commit gives the same digest.
#   podman load -i _output/image.tar
#   skopeo copy --all oci-archive:_output/image.tar docker://REGISTRY/kmetrics:TAG
IMAGE_ARCHS ?= amd64 arm64
image:
	@mkdir -p _output
	@for arch in $(IMAGE_ARCHS); do \
	  GOOS=linux GOARCH=$$arch $(GO) build -buildvcs=false -ldflags "-s -w -buildid= -X main.version=$(VERSION)" \
	    -o _output/kmetrics-linux-$$arch ./cmd/kmetrics || exit 1; done
	@cd hack/image && SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) $(GO) run . -out ../../_output/image \
	  -version $(VERSION) -revision "$(REVISION)" $(foreach a,$(IMAGE_ARCHS),linux/$(a)=../../_output/kmetrics-linux-$(a))

# Benchmarks; writes the report to bench.out (figures go to docs/benchmarks.md).
# The scrape-cycle comparison runs 3 cycles per count: one cycle of 5,000
# nodes takes seconds.
bench:
	{ $(GO) test -run='^$$' -bench='AppendBody|ListPodMetrics' -benchmem -count=5 ./pkg/... && \
	  $(GO) test -run='^$$' -bench=ScrapeCycle -benchtime=3x -count=3 -timeout=60m ./pkg/scraper; } 2>/dev/null | grep -E '^(Benchmark|goos|goarch|pkg|cpu|ok|PASS|FAIL)' | tee bench.out

# An HPA Pods request and custom metrics discovery, kmetrics against
# prometheus-adapter's path over Debian's Prometheus, same data, same real
# control plane (test/bench). Appends to bench-adapter.out.
bench-adapter: cluster-bins
	$(GO) test -tags bench -run='^$$' -bench=. -benchtime=20x -count=5 -timeout=30m ./test/bench 2>/dev/null | grep -E '^(Benchmark|goos|goarch|pkg|cpu|ok|PASS|FAIL)' | tee bench-adapter.out

# The dashboards' main queries over a day of 1,000 nodes × 30 pods: kmetrics'
# query server beside Prometheus and VictoriaMetrics with the same samples,
# their RSS per series and disk bytes per sample (test/querybench). Writes
# bench-query.out. Against Prometheus 3.15 (the engine kmetrics embeds,
# built from the proxy) with VictoriaMetrics v1.151.0, then against
# Debian's Prometheus 2.42.
bench-query: cluster-bins
	{ PROMETHEUS_BIN=$$(bash hack/build-prometheus.sh) VICTORIAMETRICS_BIN=$$(bash hack/build-victoriametrics.sh) $(GO) test -tags bench -run='^$$' -bench=. -benchtime=3x -count=3 -timeout=90m ./test/querybench && \
	  $(GO) test -tags bench -run='^$$' -bench=. -benchtime=3x -count=3 -timeout=60m ./test/querybench; } 2>/dev/null | grep -E '^(Benchmark|goos|goarch|pkg|cpu|ok|PASS|FAIL)' | tee bench-query.out

# A team's dashboard queries through the namespace-scoped query API beside
# the same answers unscoped, over bench-query's day (kmetrics' TSDB only,
# the pairs interleaved). Writes bench-scoped-query.out.
bench-scoped-query:
	QUERYBENCH_PEERS=none $(GO) test -tags bench -run='^$$' -bench=ScopedQueries -benchtime=10x -count=3 -timeout=60m ./test/querybench 2>/dev/null | grep -E '^(Benchmark|goos|goarch|pkg|cpu|ok|PASS|FAIL)' | tee bench-scoped-query.out

# What per-team query scopes cost the API server: 50 teams × 1,000
# namespaces, a dashboard each refreshing every 30 s through bin/kmetrics on
# a real control plane; SubjectAccessReviews served and the API server's
# latency, with RoleBinding candidates and with every namespace reviewed.
bench-scope-load: build cluster-bins
	SCOPELOAD_DURATION=$${SCOPELOAD_DURATION:-10m} SCOPELOAD_ALL_DURATION=$${SCOPELOAD_ALL_DURATION:-2m} $(GO) test -tags bench -count=1 -run TestScopeLoad -v -timeout 40m ./test/scopeload 2>&1 | grep -E 'RESULT|^(--- |ok|FAIL|PASS)|scope_load_test.go' | tee bench-scope-load.out

# kmetrics beside the stack it replaces (metrics-server v0.8.0,
# kube-state-metrics v2.20.0 and Prometheus 3.15 holding the same series and
# rules) against the same kwok kubelets: RSS median and CPU over the same
# minutes. FOOTPRINT_NODES/FOOTPRINT_PODS size the
# cluster (make demo's by default). Writes bench-footprint.out.
bench-footprint: build cluster-bins
	METRICS_SERVER_BIN=$$(bash hack/build-metrics-server.sh) PROMETHEUS_BIN=$$(bash hack/build-prometheus.sh) KUBE_STATE_METRICS_BIN=$$(bash hack/build-kube-state-metrics.sh) $(GO) test -tags bench -count=1 -run TestFootprint -v -timeout 40m ./test/footprint 2>&1 | grep -E 'RESULT|^(--- |ok|FAIL|PASS)|footprint_test.go' | tee bench-footprint.out

# The whole serving path in one process under load: 1,000 TLS kubelets × 30
# pods and 50 applications scraped, kubectl top, the HPA's PodMetrics and
# custom metrics and a dashboard query issued concurrently, steady, with a
# 200,000-series bomb and after it (test/loadbench). Writes bench-load.out.
# What remote write costs: the kubelet scrape path over 1,000 TLS kubelets ×
# 30 pods without and with remote write to VictoriaMetrics, each in a fresh
# process, and the samples/s the queues sustain (test/rwbench). Writes
# bench-remote-write.out.
bench-remote-write:
	VICTORIAMETRICS_BIN=$$(bash hack/build-victoriametrics.sh) $(GO) test -tags bench -count=1 -run TestRemoteWriteCost -v -timeout 30m ./test/rwbench 2>/dev/null | grep -E 'rw_test.go|^(--- |ok|FAIL|PASS)' | tee bench-remote-write.out

# Memory by cluster size (the chart's resources rule, docs/benchmarks.md):
# the kubelet scrape path alone (test/rwbench's "without" child, a fresh
# process each) at nodes:pods-per-node. Writes bench-sizing.out.
SIZING ?= 500:30 1000:10 1000:30
bench-sizing:
	@for s in $(SIZING); do \
	  RWBENCH_MODE=without RWBENCH_NODES=$${s%%:*} RWBENCH_PODS=$${s##*:} $(GO) test -tags bench -count=1 -run '^TestRemoteWriteChild$$' -v -timeout 30m ./test/rwbench 2>/dev/null | grep '^RESULT' || exit 1; \
	done | tee bench-sizing.out

# Cluster state at 1,000 nodes × 30 pods: one write's rendering (time,
# allocations, series) with the default families and with all, and the heap
# of the informer caches kmetrics adds for it (docs/benchmarks.md).
bench-cluster-state:
	$(GO) test -run='^$$' -bench='Render|CacheBytes' -benchtime=3x -count=3 -timeout=30m ./pkg/kubestate 2>/dev/null | grep -E '^(Benchmark|goos|goarch|pkg|cpu|ok|PASS|FAIL)' | tee bench-cluster-state.out

bench-load:
	LOAD_NODES=$${LOAD_NODES:-1000} LOAD_PHASE=$${LOAD_PHASE:-60s} $(GO) test -tags bench -count=1 -run TestLoad -v -timeout 30m ./test/loadbench 2>/dev/null | grep -E 'load_test.go|^(--- |ok|FAIL|PASS)' | tee bench-load.out

# Start-up with a full two-hour head of 1,000 nodes: TSDB open after a kill
# and after a shutdown, and the index snapshot kubectl top is served from.
bench-startup:
	$(GO) test -run '^$$' -bench Startup -benchtime 1x -count 3 -timeout 30m ./pkg/storage | grep -E '^(Benchmark|ok|FAIL)' | tee bench-startup.out

demo:
	bash hack/demo.sh up

demo-down:
	bash hack/demo.sh down

clean:
	rm -rf bin .state .e2e.log .e2e-compat.log bench.out bench-adapter.out bench-query.out bench-load.out bench-sizing.out bench-startup.out
