# The two commands: `make run` and `make test`. Both find a PostgreSQL the same way
# (DATABASE_URL, else 127.0.0.1:5432, else a throwaway cluster in .devdb/).
GO      ?= go
BIN     := bin/repcue
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)

.PHONY: run test faults bench build cluster check fmt vet lint fuzz clean devdb-stop

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/repcue

## run: find or start a database, migrate, seed the demo accounts, serve on :8080
## (signing with development keys kept in .devdb/, unless REPCUE_JWT_KEY_FILE and
## REPCUE_VAPID_PRIVATE_KEY_FILE are set; a dashboard in development on
## localhost:3000 is an allowed origin unless REPCUE_ALLOWED_ORIGINS says otherwise;
## REPCUE_DEV=true, so without REPCUE_SMTP_URL mail and its links are written to the log)
run: build
	@url="$$($(BIN) devdb)" || exit 1; \
	if [ -z "$$REPCUE_JWT_KEY_FILE" ]; then REPCUE_JWT_KEY_FILE="$$($(BIN) devkey)" || exit 1; fi; \
	if [ -z "$$REPCUE_VAPID_PRIVATE_KEY_FILE" ]; then REPCUE_VAPID_PRIVATE_KEY_FILE="$$($(BIN) devkey vapid)" || exit 1; \
		REPCUE_VAPID_SUBJECT="$${REPCUE_VAPID_SUBJECT:-mailto:push@repcue.invalid}"; fi; \
	REPCUE_ALLOWED_ORIGINS="$${REPCUE_ALLOWED_ORIGINS-http://localhost:3000,http://127.0.0.1:3000}"; \
	export DATABASE_URL="$$url" REPCUE_JWT_KEY_FILE REPCUE_VAPID_PRIVATE_KEY_FILE REPCUE_VAPID_SUBJECT REPCUE_ALLOWED_ORIGINS \
		REPCUE_DEV="$${REPCUE_DEV:-true}"; \
	$(BIN) migrate && $(BIN) seed && exec $(BIN) serve

## cluster: the topology of deploy/compose.yaml without Docker: the database as `run`
##   finds it, a private NATS, CLUSTER_NODES (2) nodes of `repcue serve` on :8081, :8082
##   sharing it, HAProxy round-robin in front on :8080 (CLUSTER_PORT); logs in
##   .devdb/cluster/logs; Ctrl-C stops what it started (deploy/local-cluster.sh)
cluster: build
	@deploy/local-cluster.sh

## test: every test against the real database (the race detector on)
test: build
	@$(BIN) devdb >/dev/null || exit 1
	$(GO) test -race -count=1 -timeout 20m ./...

## faults: the fault tests (internal/faults, build tag "faults"), about two minutes,
##   loopback only: PostgreSQL cut mid-commit and restarted (a private throwaway
##   cluster, never the shared server), the server SIGKILLed mid-set, a reconnect
##   storm of 200 sets, a silent socket. Each prints what it measured (-v).
faults: build
	@$(BIN) devdb >/dev/null || exit 1
	$(GO) test -tags faults -race -count=1 -timeout 10m -v ./internal/faults/

## bench: the Go benchmarks of the live path, then a gym-floor run of cmd/loadgen
##   against the bare relay and against repcue (BENCH_SETS, default 1000, for
##   BENCH_DURATION, default 60s), a CPU profile under it and GET /v1/exercises/hip-thrust
##   under vegeta (go run), and with NATS on BENCH_NATS_URL a two-node run and a takeover;
##   writes docs/benchmarks.md. Loopback only, about four and a half minutes.
bench:
	@scripts/bench.sh

## check: formatting, vet and staticcheck, as CI runs them
check: fmt vet lint

fmt:
	@out="$$(gofmt -l $$(git ls-files '*.go'))"; if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet -tags faults,progressscale ./...

STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
lint:
	$(GO) run $(STATICCHECK) -tags faults,progressscale ./...

## fuzz: run every fuzz target of the repository (any `func FuzzX` in a test file) for FUZZTIME each (default 30s)
FUZZTIME ?= 30s
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
		for target in $$($(GO) test -list '^Fuzz' "$$pkg" | grep '^Fuzz' || true); do \
			echo "fuzz $$pkg $$target"; \
			$(GO) test -run='^$$' -fuzz="^$$target\$$" -fuzztime=$(FUZZTIME) "$$pkg"; \
		done; \
	done

## devdb-stop: stop the throwaway cluster, if one was started
devdb-stop:
	@if [ -f .devdb/pgdata/postmaster.pid ]; then \
		if [ "$$(id -u)" = 0 ]; then runuser -u postgres -- pg_ctl -D .devdb/pgdata stop -m fast; \
		else pg_ctl -D .devdb/pgdata stop -m fast; fi; fi

clean:
	rm -rf bin
