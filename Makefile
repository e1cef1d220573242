# l402kit build and test entry points. `make test` is what CI runs.

GO            ?= go
STATICCHECK   := honnef.co/go/tools/cmd/staticcheck@v0.8.2
# gotestsum runs go test and closes with a count of tests run and skipped,
# listing every skip with its reason.
GOTESTSUM     := gotest.tools/gotestsum@v1.13.0
# Go packages' tests get this long in all; the regtest suites are the slow part.
TEST_TIMEOUT  ?= 40m
# Each fuzz target runs this long in `make fuzz` (and so in `make test`).
FUZZTIME      ?= 30s
# Every fuzz target, as package:name; fuzz-check fails when one is missing.
FUZZ_TARGETS  := ./l402:FuzzParseAuthorization ./l402:FuzzPendingAuthorization \
                 ./l402:FuzzParseChallenges ./l402:FuzzCaveat \
                 ./l402:FuzzParsePaymentAuthorization ./l402:FuzzParsePaymentChallenges ./bolt11:FuzzDecode ./bolt12:FuzzDecode \
                 ./proxy:FuzzCanonicalPath ./proxy:FuzzCanonicalHost \
                 ./proxy:FuzzForwardedRequest ./cmd/l402proxy:FuzzConfig

# No registry is reachable: testcontainers' reaper image cannot be pulled, and
# on a machine with /.dockerenv testcontainers guesses a gateway address for
# the docker host. Tests reach containers only through ports published on
# 127.0.0.1 and remove what they start.
export TESTCONTAINERS_RYUK_DISABLED  ?= true
export TESTCONTAINERS_HOST_OVERRIDE ?= 127.0.0.1

.PHONY: release api-check stress stress-deps image test fuzz fuzz-check lint vet staticcheck fmt-check unit images fronts demo demo-lnd bench bench-deps bench-go loadcmp

# Tests run in a shuffled order (go test -shuffle), so a test that leans on
# another's leftovers or on running first fails in CI, not later. The seed is
# printed before the run: `make test SHUFFLE=<seed>` replays that order
# (one seed for every package).
ifeq ($(origin SHUFFLE),undefined)
SHUFFLE := $(shell date +%s)
endif

## test: everything CI checks: formatting, vet, staticcheck, images, Traefik, all tests with -race in shuffled order, then the fuzzers
test: lint images fronts
	@echo "go test -shuffle=$(SHUFFLE) (replay this order: make test SHUFFLE=$(SHUFFLE))"
	$(GO) run $(GOTESTSUM) --format pkgname -- -race -shuffle=$(SHUFFLE) -timeout $(TEST_TIMEOUT) ./... || \
		{ echo "go test failed with -shuffle=$(SHUFFLE); make test SHUFFLE=$(SHUFFLE) replays the order"; exit 1; }
	$(MAKE) fuzz

## fuzz: run each fuzz target for FUZZTIME (default 30s), one after another. A
## crash is written to the package's testdata/fuzz/<Name>/: commit it, it
## then runs as a regression case in every `go test`.
fuzz: fuzz-check
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz $$pkg $$name for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg; \
	done

fuzz-check:
	@for name in $$(git grep -h -o '^func Fuzz[A-Za-z0-9_]*' -- '*_test.go' | sed 's/^func //'); do \
		case " $(FUZZ_TARGETS) " in *":$$name "*) ;; *) echo "fuzz target $$name is not in FUZZ_TARGETS"; exit 1;; esac; \
	done

## unit: the tests without building images (regtest suites skip if images are absent)
unit:
	$(GO) test -race ./...

lint: fmt-check vet staticcheck

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

staticcheck:
	$(GO) run $(STATICCHECK) ./...

## release: static, reproducible l402proxy and l402 for linux and darwin on amd64 and arm64
## in dist/ with SHA256SUMS, built from the committed HEAD and checked (scripts/release.sh)
release:
	bash scripts/release.sh

## api-check: every package's exported API against the last release (.release/baseline);
## an incompatible change must be listed under Breaking in CHANGELOG.md
api-check:
	$(GO) run ./internal/tools/apicheck

## stress: the flake hunt: every package's tests, -race in shuffled order, again and again
## under CPU contention from stress-ng with GOMAXPROCS=1 then 2, for STRESS_TIME
## (default 40m; see scripts/stress.sh for the other settings)
stress: stress-deps
	bash scripts/stress.sh

# stress-ng, from Debian (root for apt-get)
stress-deps:
	@command -v stress-ng >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends stress-ng >/dev/null; }

## images: build the regtest container images (btcd, lnd) locally; cached by version
images:
	$(GO) run ./internal/testenv/images/cmd/images

## fronts: build the Traefik binary the front-server tests run (nginx and Caddy come from Debian: scripts/ci-deps.sh); cached by version
fronts:
	$(GO) run ./internal/testenv/images/cmd/images -traefik

## demo: run the reference proxy on the embedded memory backend
demo:
	$(GO) run ./cmd/l402proxy

## demo-lnd: the whole 402 flow on real LND nodes (regtest in Docker), removed afterwards
demo-lnd: images
	$(GO) run ./internal/tools/demolnd

## bench: the built l402proxy with default flags vs a plain httputil.ReverseProxy and
## nginx forward auth, driven by wrk; challenge path and memory per token (about 2 minutes)
bench: bench-deps
	$(GO) run ./internal/tools/bench

# wrk and nginx, from Debian (scripts/ci-deps.sh; root for apt-get)
bench-deps:
	@{ command -v wrk && { command -v nginx || test -x /usr/sbin/nginx; }; } >/dev/null 2>&1 || sh scripts/ci-deps.sh

## bench-go: Go micro-benchmarks of token verification and the gate
bench-go:
	$(GO) test -run '^$$' -bench . -benchmem -count 5 ./l402/ ./proxy/

## loadcmp: in-process load run of the gate vs plain httputil.ReverseProxy, with -cpuprofile (a profiling aid)
loadcmp:
	$(GO) run ./internal/tools/loadcmp -n 20000 -c 16 -rounds 3

## image: build l402proxy from this checkout into the minimal image IMAGE (default l402kit/l402proxy:dev), FROM scratch, nothing pulled
IMAGE ?= l402kit/l402proxy:dev
image:
	GO=$(GO) sh deploy/docker/build.sh $(IMAGE)
