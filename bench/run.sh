#!/usr/bin/env bash
# `make bench`: runs every benchmark of the repository, times `greenwave eval --signals --format scats`, and
# writes bench/report.json and bench/report.md with cmd/greenwave/benchreport (see docs/performance.md), and
# the key rows into README.md (between its bench:begin and bench:end markers).
#
#   bash bench/run.sh            from the repository root, after `make build` (bin/greenwave)
#
# Environment:
#   PROFILE=1   also write CPU and memory profiles, one pair per benchmark package, into bench/profiles/
#               (git-ignored; read them with `go tool pprof -top bench/profiles/<name>.cpu.pprof`), and a CPU
#               profile of the eval row (eval_signals_scats.cpu.pprof)
#   SCATS=FILE  the Boroondara SCATS file for the eval row (default: the shared data set next to the checkout)
#
# The pipeline latency rows come from cmd/greenwave/loadtest --mode pipeline (the five services as processes
# on the same real broker, fed in real time; bench/pipeline.json); the load test's rows from bench/loadtest.json
# when `make loadtest` wrote one (it is committed with the report, so `make bench` keeps them).
#
# The raw `go test` output goes to bench/raw.txt (committed with the report, so every figure can be traced to
# the line it came from). The benchmarks that need a real broker run inside `deploy/kafka/kafka.sh test`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
MOD=github.com/greenwave-city/greenwave
RAW=bench/raw.txt
PROFILES=bench/profiles
SCATS="${SCATS:-$ROOT/../shared/data/boroondara_scats_oct2006/Scats Data October 2006.csv}"
[[ -f "$SCATS" ]] || { echo "bench: no SCATS file at $SCATS (set SCATS=FILE)" >&2; exit 1; }
[[ -x bin/greenwave ]] || { echo "bench: no bin/greenwave (run make build)" >&2; exit 1; }
if [[ "${PROFILE:-}" == 1 ]]; then mkdir -p "$PROFILES"; fi

# bench NAME PKG ARGS...: go test -bench in PKG with ARGS, output appended to RAW; with PROFILE=1, CPU and memory
# profiles named NAME (go test writes a profile for one package only, hence one run per package).
bench() {
	local name=$1 pkg=$2
	shift 2
	local prof=()
	if [[ "${PROFILE:-}" == 1 ]]; then
		prof=(-cpuprofile "$ROOT/$PROFILES/$name.cpu.pprof" -memprofile "$ROOT/$PROFILES/$name.mem.pprof")
	fi
	echo "bench: $pkg $*" >&2
	go test -run '^$' -benchmem "${prof[@]}" "$@" "$pkg" | tee -a "$RAW"
}
export -f bench
export ROOT RAW PROFILES MOD

: >"$RAW"
load_start=$(cut -d" " -f1-3 /proc/loadavg)
# The pure core, on one core: every package of pkg/ that has a benchmark.
for dir in $(grep -l '^func Benchmark' pkg/*/*_test.go | xargs -n1 dirname | sort -u); do
	bench "$(basename "$dir")" "$MOD/$dir" -bench . -cpu 1
done
bench stack "$MOD/cmd/greenwave/internal/stack" -bench . -benchtime 3x
bench predictor "$MOD/services/predictor/internal/predictor" -bench 'SubscribeFanout|Handle' -benchtime 5000x -cpu 2
bench predictor-memory "$MOD/services/predictor/internal/predictor" -bench ModelMemory -benchtime 1x
# The services against a real broker: one broker for all of them (starting one takes a while). Last, the whole
# pipeline as processes (bin/, from make build) for its latency: about 7 minutes of real time.
go build -o bin/loadtest ./cmd/greenwave/loadtest
bash deploy/kafka/kafka.sh test -- bash -c '
	set -euo pipefail
	bench collector "$MOD/services/collector/internal/collector" -bench Ingest -benchtime 10x
	bench trainer "$MOD/services/trainer/internal/trainer" -bench TrainerService -benchtime 2400x
	bench predictor-latency "$MOD/services/predictor/internal/predictor" -bench PredictionLatency -benchtime 5000x -cpu 2
	echo "bench: pipeline latency (cmd/greenwave/loadtest --mode pipeline)" >&2
	bin/loadtest --mode pipeline --bin bin --out bench/pipeline.json
'

echo "bench: greenwave eval --signals --format scats" >&2
# Every core (--workers defaults to GOMAXPROCS); with PROFILE=1, a CPU profile of the run too.
eval_prof=()
if [[ "${PROFILE:-}" == 1 ]]; then eval_prof=(--cpuprofile "$PROFILES/eval_signals_scats.cpu.pprof"); fi
start=$(date +%s.%N)
bin/greenwave eval --signals --format scats --horizons 15m "${eval_prof[@]}" "$SCATS" >/dev/null
end=$(date +%s.%N)
eval_s=$(awk -v s="$start" -v e="$end" 'BEGIN { printf "%.2f", e - s }')

figures=(--figures bench/pipeline.json)
if [[ -f bench/loadtest.json ]]; then figures+=(--figures bench/loadtest.json); fi
note="2 shared cores (other jobs were running), so figures are noisy; one run of each benchmark"
go run ./cmd/greenwave/benchreport --bench "$RAW" --eval-seconds "$eval_s" --out bench --note "${BENCH_NOTE:-$note}" \
	--load-start "$load_start" --readme README.md "${figures[@]}"
