# sensorbus — see README.md. Every target works on a fresh Linux machine
# with Go and gcc.

GO      ?= go
PKGS    ?= ./...
BENCHTIME ?= 1s

.PHONY: all build golden test test-short test-arm bench bench-bridge demo soak soak-short ipcbench ipcbench-short mcapcheck fmt vet lint cross clean

all: build

build:
	$(GO) build $(PKGS)

# The full suite CI runs: every package with the race detector, fuzz seed
# corpora included (go test runs them), multi-process tests included.
test:
	$(GO) test -race -count=1 -timeout 30m $(PKGS)

# The packages with shared-memory code, as arm64, arm v7 and arm v6 (Pi
# Zero/1) binaries, multi-process tests included. Needs qemu-user-static
# registered with binfmt_misc (.ci/qemu-setup does it as root).
ARM_PKGS ?= ./ring/ ./schema/... ./bus/ ./internal/... ./record/
test-arm:
	GOARCH=arm64 $(GO) test -short -count=1 $(ARM_PKGS)
	GOARCH=arm GOARM=7 $(GO) test -short -count=1 $(ARM_PKGS)
	GOARCH=arm GOARM=6 $(GO) test -short -count=1 $(ARM_PKGS)

test-short:
	$(GO) test -count=1 -short $(PKGS)

# Benchmarks behind the README's figures. Quote medians: run with
# BENCHCOUNT=6 and feed the output to benchstat.
BENCHCOUNT ?= 1
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) -count $(BENCHCOUNT) ./ring/ ./schema/ ./internal/... ./record/

# The official TypeScript MCAP readers (@mcap/core, @mcap/nodejs) that
# package record's tests check every kind of recording with; needs Node
# and npm. The tests run npm ci themselves if this was not done.
mcapcheck:
	cd testing/mcapcheck && npm ci --no-audit --no-fund

# The main job: a publisher and two subscribers end to end for about 10 s.
demo:
	bash scripts/demo.sh

# Soak: publishers and subscribers of three topics (one at 200 kHz) under
# scheduled faults, then the checks (see testing/soak). soak-short is CI's.
SOAK_DURATION ?= 4h
soak:
	$(GO) run ./testing/soak --duration $(SOAK_DURATION) --json soak.json

soak-short:
	$(GO) run ./testing/soak --duration 60s --fault-every 3s

# IPC comparison between two processes (its own module, testing/ipcbench):
# latency at 10k msg/s, throughput, CPU per message, for 64 B, 1 KiB, 16 KiB,
# with the floors and the peers (iceoryx, libzmq, Cyclone DDS, MQTT, NATS).
# The peers that need a C library are built when its Debian -dev package is
# installed (peertags.sh); a peer that is not fails the run, with its row
# saying what is missing. ipcbench-short is CI's.
IPCBENCH_TAGS = $$(./peertags.sh)
ipcbench:
	cd testing/ipcbench && $(GO) vet -tags "$(IPCBENCH_TAGS)" ./... && \
		$(GO) run -tags "$(IPCBENCH_TAGS)" . --json ../../ipcbench.json --md ../../ipcbench.md

ipcbench-short:
	cd testing/ipcbench && $(GO) vet -tags "$(IPCBENCH_TAGS)" ./... && \
		$(GO) run -tags "$(IPCBENCH_TAGS)" . --latency-duration 500ms --throughput-duration 500ms

fmt:
	gofmt -w $$(git ls-files '*.go')

vet:
	$(GO) vet $(PKGS)

lint:
	$(GO) tool staticcheck $(PKGS)

# The Raspberry Pi targets, and a non-Linux build (stubs).
cross:
	GOOS=linux GOARCH=arm64 $(GO) build $(PKGS)
	GOOS=linux GOARCH=arm GOARM=6 $(GO) build $(PKGS)
	GOOS=linux GOARCH=arm GOARM=7 $(GO) build $(PKGS)
	GOOS=darwin GOARCH=arm64 $(GO) build $(PKGS)

# The bridge across hosts over a loopback nats-server (package bridge):
# throughput of 64-byte samples at rising rates, latency at 10 kHz, CPU
# per sample on each side. Each line runs for 2-3 s whatever BENCHTIME.
bench-bridge:
	$(GO) test -run '^$$' -bench . -benchtime 1x -count $(BENCHCOUNT) ./bridge/

# Rewrite the golden help texts (testing/e2e/testdata/help) after a
# deliberate change to a program's flags or help.
golden:
	$(GO) test -count=1 -run TestHelpGolden ./testing/e2e -update
