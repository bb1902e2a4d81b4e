# Airlock. `make run` serves the quickstart airlock.yaml; `make test` runs
# every test against the local PostgreSQL, MariaDB and Redis.
GO        ?= go
BIN       := bin/airlock
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X main.version=$(VERSION)
# Fuzz time per target: brief in `make test`, longer with `make fuzz`.
FUZZTIME  ?= 60s
CI_FUZZTIME ?= 4s

.PHONY: build run test unit driver-suite soak fuzz fuzz-brief lint bench microbench clean

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/airlock

run: build
	mkdir -p data/recordings
	./$(BIN) serve --config airlock.yaml

# The whole suite with the race detector, then every fuzz target briefly.
test: lint unit fuzz-brief

unit:
	$(GO) test -race -count=1 -parallel 4 -timeout 14m ./...

# go-sql-driver/mysql's own test suite, directly and through Airlock
# (two to three minutes with -race); not part of `make test`.
driver-suite:
	AIRLOCK_DRIVER_SUITE=1 $(GO) test -race -count=1 -timeout 20m -run 'TestMySQLDriverSuite$$' -v ./cmd/airlock

# Many concurrent sessions on every engine through one Airlock (without the
# race detector, so that the memory figures are the release build's); the
# test suite runs the same test briefly (100 sessions, 10 s).
SOAK_SESSIONS ?= 1000
SOAK_DURATION ?= 10m
SOAK_THINK    ?= 200ms
soak:
	SOAK_SESSIONS=$(SOAK_SESSIONS) SOAK_DURATION=$(SOAK_DURATION) SOAK_THINK=$(SOAK_THINK) \
		$(GO) test -count=1 -timeout 0 -run 'TestSoak$$' -v ./cmd/airlock

fuzz-brief:
	@FUZZTIME=$(CI_FUZZTIME) ./.ci/fuzz

fuzz:
	@FUZZTIME=$(FUZZTIME) ./.ci/fuzz

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# Airlock side by side with direct access and a relay peer of each protocol;
# writes BENCHMARKS.md. BENCH_FLAGS passes flags: -suites postgres,mysql,redis,http
# picks suites (default all), -quick a smoke run, -rounds N -duration 10s the length.
BENCH_FLAGS ?=
bench:
	$(GO) run ./cmd/airlock-bench $(BENCH_FLAGS)

# The hot paths' Go benchmarks; with BASE=<commit>, compared with benchstat.
microbench:
	@./.ci/microbench $(BASE)

clean:
	rm -rf bin
