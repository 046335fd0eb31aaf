#!/usr/bin/env bash
# Concurrency 1: api-server's decode speed through HTTP against `tandem bench engine`'s
# single-sequence generation at the same depth, alternating the two in one run (the machine is
# noisy). The engine decodes tg128 after --depth 256 context tokens (positions 256-383); the
# server decodes 128 tokens after a 256-token prompt (the same positions), streamed, driven by
# `tandem bench serve` at concurrency 1. Prints one line per round and the median ratio
# (server tokens/s from TPOT p50 over engine tokens/s; ISSUE 7's goal is at least 0.90).
#
#   scripts/bench-serve-c1.sh [--model PATH] [--threads N] [--rounds R] [--prompts P]
#
# Uses .build/release/{tandem,api-server} (build them first: swift build -c release).
set -euo pipefail
cd "$(dirname "$0")/.."

model="" threads=2 rounds=3 prompts=8 input_len=256 output_len=128
while (($#)); do
    case "$1" in
        --model) model="$2"; shift 2 ;;
        --threads) threads="$2"; shift 2 ;;
        --rounds) rounds="$2"; shift 2 ;;
        --prompts) prompts="$2"; shift 2 ;;
        *) echo "bench-serve-c1: unknown argument $1" >&2; exit 2 ;;
    esac
done
[[ -n "$model" ]] || model="$(scripts/fetch-model.sh)"
bin=.build/release
out_dir="${OUT_DIR:-.build/bench-serve-c1}"
mkdir -p "$out_dir"

source scripts/bench-processes.sh  # free_port, launch, stop_all (on exit)

ratios=()
for round in $(seq "$rounds"); do
    engine=$("$bin/tandem" bench engine --model "$model" --prompt-tokens 0 --gen-tokens "$output_len" \
        --depth "$input_len" --batch 1 --threads "$threads" --repetitions 2 --json \
        | python3 -c 'import json, sys; print(json.load(sys.stdin)["generation_tokens_per_s"])')
    port="$(free_port)"
    launch server "$bin/api-server" --model "$model" --host 127.0.0.1 --port "$port" --threads "$threads"
    for _ in $(seq 600); do
        curl -sf "http://127.0.0.1:$port/health" >/dev/null && break
        kill -0 "${pids[-1]}" 2>/dev/null || { tail -20 "$out_dir/server.log" >&2; exit 1; }
        sleep 0.2
    done
    "$bin/tandem" bench serve --base-url "http://127.0.0.1:$port" --tokenizer-model "$model" \
        --random-input-len "$input_len" --random-output-len "$output_len" --ignore-eos \
        --max-concurrency 1 --num-prompts "$prompts" --save-result "$out_dir/round$round.json" >/dev/null 2>&1
    stop_all
    line=$(python3 - "$out_dir/round$round.json" "$engine" <<'PY'
import json, sys
r, engine = json.load(open(sys.argv[1])), float(sys.argv[2])
server = 1000 / r["median_tpot_ms"]
print(f"{server / engine:.3f} engine {engine:.1f} tok/s, server {server:.1f} tok/s "
      f"(TPOT p50 {r['median_tpot_ms']:.2f} ms, p99 {r['p99_tpot_ms']:.2f} ms, TTFT p50 {r['median_ttft_ms']:.0f} ms, "
      f"{r['completed']}/{r['failed']} ok/failed)")
PY
)
    ratios+=("${line%% *}")
    echo "round $round: ratio ${line} load $(cut -d' ' -f1 /proc/loadavg)"
done
printf '%s\n' "${ratios[@]}" | sort -n | awk '{a[NR]=$1} END {print "median ratio server/engine:", a[int((NR+1)/2)]}'
