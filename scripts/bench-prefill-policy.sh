#!/usr/bin/env bash
# Prefill batching policies side by side in one run: two api-servers on the same model and
# threads, one with --prefill-batching-policy fcfs and one with gtsf, driven in turn (pairs,
# alternating which goes first) by `tandem bench serve` with a mixed workload: half the
# prompts 64 tokens, half 2048, shuffled, all sent at once, few output tokens (TTFT is what
# the policy changes). Prints TTFT p50/p99 per policy and per prompt length, and gtsf/fcfs
# ratios; raw JSON in $OUT_DIR (default .build/bench-prefill-policy).
#
#   scripts/bench-prefill-policy.sh [--model PATH] [--threads N] [--pairs N] [--num-prompts N]
#                                   [--output-len N] [--max-wait SECONDS]
#
# $TANDEM_BIN and $API_SERVER_BIN: already built binaries (default .build/release/...).
set -euo pipefail
cd "$(dirname "$0")/.."

model="" threads=2 pairs=2 prompts=16 output_len=8 max_wait=10
while (($#)); do
    case "$1" in
        --model) model="$2"; shift 2 ;;
        --threads) threads="$2"; shift 2 ;;
        --pairs) pairs="$2"; shift 2 ;;
        --num-prompts) prompts="$2"; shift 2 ;;
        --output-len) output_len="$2"; shift 2 ;;
        --max-wait) max_wait="$2"; shift 2 ;;
        *) echo "bench-prefill-policy: unknown argument $1" >&2; exit 2 ;;
    esac
done
[[ -n "$model" ]] || model="$(scripts/fetch-model.sh)"
out_dir="${OUT_DIR:-.build/bench-prefill-policy}"
mkdir -p "$out_dir"
rm -f "$out_dir"/*.json
tandem="${TANDEM_BIN:-.build/release/tandem}"
api_server="${API_SERVER_BIN:-.build/release/api-server}"
[[ -x "$tandem" && -x "$api_server" ]] || swift build -c release --product tandem --product api-server >&2

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

pids=()
stop_servers() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done; }
trap stop_servers EXIT

declare -A ports
for policy in fcfs gtsf; do
    port="$(free_port)"
    ports[$policy]=$port
    "$api_server" --model "$model" --host 127.0.0.1 --port "$port" --threads "$threads" \
        --prefill-batching-policy "$policy" --prefill-batching-max-wait "$max_wait" >"$out_dir/$policy.log" 2>&1 &
    pids+=($!)
done
for policy in fcfs gtsf; do
    for _ in $(seq 600); do
        curl -sf "http://127.0.0.1:${ports[$policy]}/v1/models" >/dev/null && break
        sleep 0.2
    done
    curl -sf "http://127.0.0.1:${ports[$policy]}/v1/models" >/dev/null \
        || { echo "bench-prefill-policy: the $policy server did not start; see $out_dir/$policy.log" >&2; exit 1; }
done

for pair in $(seq "$pairs"); do
    order="fcfs gtsf"
    ((pair % 2)) || order="gtsf fcfs"
    for policy in $order; do
        echo "bench-prefill-policy: pair $pair, $policy" >&2
        # Each server gets the same prompts; a different seed per pair.
        "$tandem" bench serve --base-url "http://127.0.0.1:${ports[$policy]}" --tokenizer-model "$model" \
            --random-input-len 64,2048 --random-output-len "$output_len" --ignore-eos --seed "$pair" \
            --num-prompts "$prompts" --request-rate inf --save-result "$out_dir/$policy-$pair.json" >&2
    done
done

python3 - "$out_dir" "$pairs" <<'PY'
import json, sys
d, pairs = sys.argv[1], int(sys.argv[2])
def percentile(values, p):
    values = sorted(values)
    if not values: return float("nan")
    k = (len(values) - 1) * p / 100
    lo = int(k); hi = min(lo + 1, len(values) - 1)
    return (values[lo] + (values[hi] - values[lo]) * (k - lo)) * 1000
rows = {}
for policy in ("fcfs", "gtsf"):
    all_, short, long_ = [], [], []
    for pair in range(1, pairs + 1):
        r = json.load(open(f"{d}/{policy}-{pair}.json"))
        assert r["failed"] == 0, f"{policy} pair {pair}: {r['failed']} failed"
        for n, t in zip(r["input_lens"], r["ttfts"]):
            all_.append(t); (short if n <= 64 else long_).append(t)
    rows[policy] = [percentile(all_, 50), percentile(all_, 99), percentile(short, 50), percentile(short, 99),
                    percentile(long_, 50), percentile(long_, 99)]
print("| policy | TTFT p50 ms | TTFT p99 ms | 64-token p50 | 64-token p99 | 2048-token p50 | 2048-token p99 |")
print("|---|---:|---:|---:|---:|---:|---:|")
for policy in ("fcfs", "gtsf"):
    print(f"| {policy} | " + " | ".join(f"{v:.0f}" for v in rows[policy]) + " |")
print("| ratio gtsf/fcfs | " + " | ".join(f"{g / f:.2f}x" for g, f in zip(rows["gtsf"], rows["fcfs"])) + " |")
PY
