#!/usr/bin/env bash
# Placement overhead of the splitwise scheduler (Redis) against the router, side by side on the
# same prefill and decode instances: one prefill and one decode api-server (ipc KV transfer),
# both with --scheduler-name splitwise on a local redis-server AND registered with a router
# (--splitwise), so the same two instances serve both paths:
#   router:    client -> router -> P and D (HTTP legs)
#   scheduler: client -> P's API port -> Redis ReqQ lists -> P and D (legs over loopback HTTP)
# `tandem bench serve` drives each path at --max-concurrency 1 and 32 (short prompts, few output
# tokens, so placement is a visible part of TTFT), alternating which path goes first in each
# round. Prints TTFT p50/p99 per path and concurrency, the median over rounds and the added
# TTFT of the scheduler; and Redis commands per request (Redis's own total_commands_processed
# over a measured run, less the sync traffic of an idle window as long). Raw JSON and logs in
# $OUT_DIR (default .build/bench-scheduler).
#
#   scripts/bench-scheduler.sh [--rounds N] [--num-prompts N] [--input-len N] [--output-len N] [--threads N]
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=3 prompts=64 input_len=32 output_len=4 threads=1
while (($#)); do
    case "$1" in
        --rounds) rounds="$2"; shift 2 ;;
        --num-prompts) prompts="$2"; shift 2 ;;
        --input-len) input_len="$2"; shift 2 ;;
        --output-len) output_len="$2"; shift 2 ;;
        --threads) threads="$2"; shift 2 ;;
        *) echo "bench-scheduler: unknown argument $1" >&2; exit 2 ;;
    esac
done
model="$(scripts/fetch-model.sh)"
bin="${BIN_DIR:-.build/release}"
for program in router api-server tandem; do
    [[ -x "$bin/$program" ]] || swift build -c release --product "$program" >&2
done
command -v redis-server >/dev/null || { echo "bench-scheduler: redis-server is missing: run scripts/install-deps.sh" >&2; exit 1; }
out_dir="${OUT_DIR:-.build/bench-scheduler}"
mkdir -p "$out_dir"
rm -f "$out_dir"/*.json "$out_dir"/*.log "$out_dir"/*.txt

source scripts/bench-processes.sh  # free_port, launch, stop_all (on exit)
wait_for() { # url
    for _ in $(seq 600); do
        curl -sf -o /dev/null --max-time 2 "$1" && return 0
        sleep 0.2
    done
    echo "bench-scheduler: $1 did not answer; logs in $out_dir" >&2
    exit 1
}

redis_port=$(free_port) router_port=$(free_port) prefill_port=$(free_port) decode_port=$(free_port)
launch redis redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no
for _ in $(seq 100); do [[ $(redis-cli -p "$redis_port" ping 2>/dev/null) == PONG ]] && break; sleep 0.1; done
launch router "$bin/router" --host 127.0.0.1 --port "$router_port" --splitwise --health-check-interval 1 --log-level warning
common=(--model "$model" --host 127.0.0.1 --threads "$threads" --router "127.0.0.1:$router_port" --register-interval 1
        --scheduler-name splitwise --scheduler-port "$redis_port" --scheduler-topic bench --kv-transfer-timeout 600)
launch prefill "$bin/api-server" "${common[@]}" --port "$prefill_port" --engine-worker-queue-port "$(free_port)" \
    --splitwise-role prefill --cache-transfer-protocol ipc
launch decode "$bin/api-server" "${common[@]}" --port "$decode_port" --engine-worker-queue-port "$(free_port)" \
    --splitwise-role decode --cache-transfer-protocol ipc --pd-comm-port "$(free_port)" --cache-queue-port "$(free_port)"
wait_for "http://127.0.0.1:$prefill_port/health"
wait_for "http://127.0.0.1:$decode_port/health"
for _ in $(seq 300); do
    healthy=$(curl -s --max-time 2 "http://127.0.0.1:$router_port/readiness" \
        | python3 -c 'import json, sys; print(json.load(sys.stdin).get("healthy_workers", 0))' 2>/dev/null || echo 0)
    ((healthy >= 2)) && break
    sleep 0.2
done

commands() { redis-cli -p "$redis_port" INFO stats | tr -d '\r' | sed -n 's/^total_commands_processed://p'; }
run() { # name url concurrency seed
    "$bin/tandem" bench serve --base-url "$2" --tokenizer-model "$model" --random-input-len "$input_len" \
        --random-output-len "$output_len" --ignore-eos --seed "$4" --num-prompts "$prompts" --max-concurrency "$3" \
        --save-result "$out_dir/$1.json" >"$out_dir/$1-bench.txt"
}

# Redis commands per request: a scheduler run, then an idle window as long (sync traffic only).
start=$(commands); t0=$(date +%s.%N)
run commands-scheduler "http://127.0.0.1:$prefill_port" 8 0
t1=$(date +%s.%N); busy=$(( $(commands) - start ))
start=$(commands); sleep "$(python3 -c "print($t1 - $t0)")"; idle=$(( $(commands) - start ))
echo "$busy $idle $prompts" >"$out_dir/commands.txt"

for round in $(seq "$rounds"); do
    for concurrency in 1 32; do
        order="router scheduler"
        ((round % 2)) || order="scheduler router"
        for path in $order; do
            url="http://127.0.0.1:$router_port"
            [[ $path == scheduler ]] && url="http://127.0.0.1:$prefill_port"
            echo "bench-scheduler: round $round, concurrency $concurrency, $path (load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
            run "$path-c$concurrency-$round" "$url" "$concurrency" "$round"
        done
    done
done

python3 - "$out_dir" "$rounds" <<'PY'
import json, statistics, sys
d, rounds = sys.argv[1], int(sys.argv[2])
print("| concurrency | path | TTFT p50 ms (median of rounds) | TTFT p99 ms | requests/s |")
print("|---:|---|---:|---:|---:|")
added = {}
for c in (1, 32):
    med = {}
    for path in ("router", "scheduler"):
        rs = [json.load(open(f"{d}/{path}-c{c}-{r}.json")) for r in range(1, rounds + 1)]
        for r in rs:
            if r["failed"]:
                sys.exit(f"bench-scheduler: {path} c{c}: {r['failed']} requests failed: {[e for e in r['errors'] if e][:3]}")
        med[path] = {k: statistics.median(r[k] for r in rs) for k in ("median_ttft_ms", "p99_ttft_ms", "request_throughput")}
        print(f"| {c} | {path} | {med[path]['median_ttft_ms']:.2f} | {med[path]['p99_ttft_ms']:.2f} | {med[path]['request_throughput']:.1f} |")
    added[c] = med["scheduler"]["median_ttft_ms"] - med["router"]["median_ttft_ms"]
for c, ms in added.items():
    print(f"\nconcurrency {c}: the scheduler adds {ms:+.2f} ms to TTFT p50 over the router")
busy, idle, prompts = map(int, open(f"{d}/commands.txt").read().split())
print(f"Redis commands per request: {(busy - idle) / (prompts + 1):.1f} ({busy} during {prompts + 1} requests, {idle} in an idle window as long)")
PY
