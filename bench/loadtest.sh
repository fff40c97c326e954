#!/usr/bin/env bash
# `make loadtest`: runs cmd/greenwave/loadtest --mode load — the five services as processes (bin/, from make
# build) on a real Apache Kafka broker (deploy/kafka/kafka.sh test), 2 500 generated intersections × 4 detectors
# reporting every 10 s for 20 simulated minutes, fed as fast as the collector acknowledges — and merges its rows
# (bench/loadtest.json) into bench/report.json, report.md and README.md's bench block with
# `benchreport --merge`. The lag and memory samples go to bench/loadtest-samples.csv, their plots to
# bench/loadtest-lag.svg and bench/loadtest-rss.svg (docs/performance.md).
#
#   bash bench/loadtest.sh [loadtest flags]     e.g. --intersections 1000 --sim-minutes 5 to scale down
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
for s in collector cleaner trainer predictor signalcontrol; do
	[[ -x bin/$s ]] || { echo "loadtest: no bin/$s (run make build)" >&2; exit 1; }
done
go build -o bin/loadtest ./cmd/greenwave/loadtest
# The trainer and the predictor run with a GOMEMLIMIT, as a deployment sized for this load should (see
# docs/performance.md, Trainer memory): without one the Go GC lets the heap grow to twice the live data, and at
# full scale that is what does not fit. TRAINER_GOMEMLIMIT / PREDICTOR_GOMEMLIMIT override them.
bash deploy/kafka/kafka.sh test -- bin/loadtest --mode load --bin bin --out bench/loadtest.json --plots bench \
	--rss-limit-mb "${RSS_LIMIT_MB:-12000}" \
	--service-env "trainer:GOMEMLIMIT=${TRAINER_GOMEMLIMIT:-7GiB}" \
	--service-env "predictor:GOMEMLIMIT=${PREDICTOR_GOMEMLIMIT:-3GiB}" "$@"
go run ./cmd/greenwave/benchreport --merge --figures bench/loadtest.json --out bench --readme README.md
