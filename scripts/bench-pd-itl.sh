#!/usr/bin/env bash
# Inter-token latency of prefill-decode disaggregation against two mixed ranks on the same
# cores, under a mixed workload: long prompts arriving while others decode.
#   A (PD):    router --splitwise + one prefill and one decode api-server (ipc KV transfer)
#   B (mixed): router + two mixed api-server ranks
# Every api-server has --threads $THREADS (default 1), so on a 2-core machine P and D (or the
# two mixed ranks) have one core each. Both deployments get the same `tandem bench serve`
# workload through the router's port: prompts of 64 and 2048 tokens (half each, shuffled),
# Poisson arrivals (--request-rate), 64 output tokens with --ignore-eos. Runs alternate A and B
# in pairs (which goes first alternates too), each on a freshly started deployment (no prefix
# cache left from the previous run), one deployment up at a time; pair k uses seed k for both.
# Prints ITL and TPOT p50/p99, TTFT p50/p99 and output tokens/s per run, the medians over the
# pairs and the ratio PD/mixed; raw JSON and logs in $OUT_DIR (default .build/bench-pd-itl).
#
#   scripts/bench-pd-itl.sh [--model PATH] [--pairs N] [--num-prompts N] [--request-rate R]
#                           [--input-lens 64,2048] [--output-len N] [--threads N]
#                           [--kv-transfer-timeout SECONDS]
#
# --kv-transfer-timeout (default 600; api-server's own default is 30) bounds how long P or D
# may go silent during a PD transfer; P's queue and prefill no longer count (at 30 s: 11 of 16
# requests failed when they did, 16 of 16 served since; BENCHMARKS.md).
#
# $BIN_DIR: a folder with router, api-server and tandem already built (default .build/release,
# built when missing).
set -euo pipefail
cd "$(dirname "$0")/.."

model="" pairs=2 prompts=16 rate=0.5 input_lens=64,2048 output_len=64 threads=1 kv_timeout=600
while (($#)); do
    case "$1" in
        --model) model="$2"; shift 2 ;;
        --pairs) pairs="$2"; shift 2 ;;
        --num-prompts) prompts="$2"; shift 2 ;;
        --request-rate) rate="$2"; shift 2 ;;
        --input-lens) input_lens="$2"; shift 2 ;;
        --output-len) output_len="$2"; shift 2 ;;
        --threads) threads="$2"; shift 2 ;;
        --kv-transfer-timeout) kv_timeout="$2"; shift 2 ;;
        *) echo "bench-pd-itl: unknown argument $1" >&2; exit 2 ;;
    esac
done
[[ -n "$model" ]] || model="$(scripts/fetch-model.sh)"
bin="${BIN_DIR:-.build/release}"
for program in router api-server tandem; do
    [[ -x "$bin/$program" ]] || swift build -c release --product "$program" >&2
done
out_dir="${OUT_DIR:-.build/bench-pd-itl}"
mkdir -p "$out_dir"
rm -f "$out_dir"/*.json "$out_dir"/*.log "$out_dir"/*.txt

# Health checks every second: the workers join the table soon after they register.
router_flags=(--health-check-interval 1 --health-check-timeout 5 --log-level warning)

source scripts/bench-processes.sh  # free_port, launch, stop_all (on exit)

# Waits until the router on $1 counts $2 healthy workers, then sends one short request
# through it (a warm-up that also checks the whole path).
wait_ready() {
    local port="$1" want="$2" healthy
    for _ in $(seq 600); do
        healthy=$(curl -s --max-time 2 "http://127.0.0.1:$port/readiness" \
            | python3 -c 'import json, sys; print(json.load(sys.stdin).get("healthy_workers", 0))' 2>/dev/null || echo 0)
        ((healthy >= want)) && break
        for pid in "${pids[@]}"; do
            kill -0 "$pid" 2>/dev/null || { echo "bench-pd-itl: a process exited; logs in $out_dir" >&2; exit 1; }
        done
        sleep 0.2
    done
    ((healthy >= want)) || { echo "bench-pd-itl: router on $port has $healthy of $want workers; logs in $out_dir" >&2; exit 1; }
    curl -sf --max-time 120 -H 'Content-Type: application/json' \
        -d '{"prompt": "The capital of France is", "max_tokens": 4, "temperature": 0}' \
        "http://127.0.0.1:$port/v1/completions" >/dev/null \
        || { echo "bench-pd-itl: the warm-up request through the router failed; logs in $out_dir" >&2; exit 1; }
}

worker() { # log name, router port, extra api-server flags...
    local name="$1" router_port="$2"; shift 2
    launch "$name" "$bin/api-server" --model "$model" --host 127.0.0.1 --port "$(free_port)" --threads "$threads" \
        --engine-worker-queue-port "$(free_port)" --router "127.0.0.1:$router_port" --register-interval 1 \
        --kv-transfer-timeout "$kv_timeout" "$@"
}

start_pd() { # run name; prints the router port
    local run="$1" port
    port=$(free_port)
    launch "$run-router" "$bin/router" --host 127.0.0.1 --port "$port" --splitwise "${router_flags[@]}"
    worker "$run-prefill" "$port" --splitwise-role prefill --cache-transfer-protocol ipc
    worker "$run-decode" "$port" --splitwise-role decode --cache-transfer-protocol ipc \
        --pd-comm-port "$(free_port)" --cache-queue-port "$(free_port)"
    wait_ready "$port" 2
    router_port=$port
}

start_mixed() { # run name
    local run="$1" port
    port=$(free_port)
    launch "$run-router" "$bin/router" --host 127.0.0.1 --port "$port" --policy least_requests "${router_flags[@]}"
    worker "$run-rank0" "$port" --local-data-parallel-id 0
    worker "$run-rank1" "$port" --local-data-parallel-id 1
    wait_ready "$port" 2
    router_port=$port
}

router_port=""
for pair in $(seq "$pairs"); do
    order="pd mixed"
    ((pair % 2)) || order="mixed pd"
    for kind in $order; do
        run="$kind-$pair"
        "start_$kind" "$run"
        echo "$run $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out_dir/load.txt"
        echo "bench-pd-itl: pair $pair, $kind (load average $(cut -d' ' -f1-3 /proc/loadavg))" >&2
        "$bin/tandem" bench serve --base-url "http://127.0.0.1:$router_port" --tokenizer-model "$model" \
            --random-input-len "$input_lens" --random-output-len "$output_len" --ignore-eos --seed "$pair" \
            --num-prompts "$prompts" --request-rate "$rate" --save-result "$out_dir/$run.json" >"$out_dir/$run-bench.txt"
        stop_all
    done
done

python3 - "$out_dir" "$pairs" <<'PY'
import json, statistics, sys
d, pairs = sys.argv[1], int(sys.argv[2])
load = dict(line.split(" ", 1) for line in open(f"{d}/load.txt").read().splitlines())
keys = [("median_itl_ms", "ITL p50 ms"), ("p99_itl_ms", "ITL p99 ms"), ("median_tpot_ms", "TPOT p50 ms"),
        ("p99_tpot_ms", "TPOT p99 ms"), ("median_ttft_ms", "TTFT p50 ms"), ("p99_ttft_ms", "TTFT p99 ms"),
        ("output_throughput", "output tok/s")]
runs = {}
print("| run | " + " | ".join(title for _, title in keys) + " | ok/failed | load average (1, 5, 15 min) |")
print("|---|" + "---:|" * len(keys) + "---:|---|")
for pair in range(1, pairs + 1):
    for kind in ("pd", "mixed"):
        r = json.load(open(f"{d}/{kind}-{pair}.json"))
        if r["failed"]:
            sys.exit(f"bench-pd-itl: {kind} pair {pair}: {r['failed']} requests failed: {[e for e in r['errors'] if e][:3]}")
        runs.setdefault(kind, []).append(r)
        print(f"| {kind} {pair} | " + " | ".join(f"{r[k]:.1f}" for k, _ in keys) +
              f" | {r['completed']}/{r['failed']} | {load[f'{kind}-{pair}']} |")
med = {kind: {k: statistics.median(r[k] for r in rs) for k, _ in keys} for kind, rs in runs.items()}
for kind, label in (("pd", "PD (median of pairs)"), ("mixed", "mixed (median of pairs)")):
    print(f"| {label} | " + " | ".join(f"{med[kind][k]:.1f}" for k, _ in keys) + " | | |")
print("| ratio PD/mixed | " + " | ".join(f"{med['pd'][k] / med['mixed'][k]:.3g}x" for k, _ in keys) + " | | |")
per_pair = [p["p99_itl_ms"] / m["p99_itl_ms"] for p, m in zip(runs["pd"], runs["mixed"])]
print("\np99 ITL ratio PD/mixed per pair: " + ", ".join(f"{x:.3g}x" for x in per_pair))
PY
