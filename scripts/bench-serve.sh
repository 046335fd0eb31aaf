#!/usr/bin/env bash
# Serving speed side by side in one run: `tandem bench serve` against llama.cpp's llama-server
# (built from the llama.cpp that PyPI llama-cpp-python ships) and against Tandem's api-server,
# same model file, same threads: 256 prompt / 128 output tokens, --ignore-eos, concurrency 1,
# 8 and 32. Prints a Markdown table (output tokens/s, TTFT and TPOT p50/p99) and keeps the
# raw JSON in $OUT_DIR (default .build/bench-serve).
#
#   scripts/bench-serve.sh [--model PATH] [--threads N] [--concurrency "1 8 32"]
#                          [--max-num-seqs N] [--prompts-per-concurrency P] [--llama-server PATH]
#                          [--no-tandem] [--no-llama] [--fairness]
#
# Each level C sends max(8, P * C) prompts (P defaults to 4).
# --max-num-seqs N is api-server's limit of running sequences (its default otherwise);
# --max-num-seqs 8 is the like-for-like setting against llama-server's --parallel 8.
# --fairness also measures llama-server at concurrency 8 with a second, independent client
# (scripts/bench-serve-client.py, Python asyncio + aiohttp) to check the benchmark itself.
# llama-server is looked for in --llama-server, $LLAMA_SERVER, then
# $TANDEM_CACHE_DIR/llama-native/build/bin (default ~/.cache/tandem/...), and built there
# when missing (cmake, several minutes, once). api-server is .build/release/api-server, built
# when missing; extra flags for it in $TANDEM_SERVER_ARGS.
set -euo pipefail
cd "$(dirname "$0")/.."

model="" threads=2 levels="1 8 32" max_num_seqs="" per_level=4 llama_server="${LLAMA_SERVER:-}" run_tandem=1 run_llama=1 fairness=0
input_len=256 output_len=128
while (($#)); do
    case "$1" in
        --model) model="$2"; shift 2 ;;
        --threads) threads="$2"; shift 2 ;;
        --concurrency) levels="$2"; shift 2 ;;
        --max-num-seqs) max_num_seqs="$2"; shift 2 ;;
        --prompts-per-concurrency) per_level="$2"; shift 2 ;;
        --llama-server) llama_server="$2"; shift 2 ;;
        --no-tandem) run_tandem=0; shift ;;
        --no-llama) run_llama=0; shift ;;
        --fairness) fairness=1; shift ;;
        *) echo "bench-serve: unknown argument $1" >&2; exit 2 ;;
    esac
done
[[ -n "$model" ]] || model="$(scripts/fetch-model.sh)"
out_dir="${OUT_DIR:-.build/bench-serve}"
mkdir -p "$out_dir"
rm -f "$out_dir"/*.json

# $TANDEM_BIN: an already built tandem (skips the build).
tandem="${TANDEM_BIN:-.build/release/tandem}"
[[ -n "${TANDEM_BIN:-}" ]] || swift build -c release --product tandem >&2

build_llama_server() {
    local root="${TANDEM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tandem}/llama-native"
    local binary="$root/build/bin/llama-server"
    if [[ ! -x "$binary" ]]; then
        echo "bench-serve: building llama-server in $root (several minutes, once)" >&2
        command -v cmake >/dev/null || { apt-get update -qq && apt-get install -y -qq cmake >/dev/null; }
        mkdir -p "$root"
        if ! ls "$root"/llama_cpp_python-*/vendor/llama.cpp/CMakeLists.txt >/dev/null 2>&1; then
            python3 -m pip download -q --disable-pip-version-check --no-deps --no-binary :all: -d "$root" llama-cpp-python
            tar -xzf "$root"/llama_cpp_python-*.tar.gz -C "$root"
        fi
        local source
        source="$(ls -d "$root"/llama_cpp_python-*/vendor/llama.cpp | head -1)"
        # Not -march=native: this machine's CPUs report AMX, but using it dies with SIGILL here
        # (llama-server: "Illegal instruction" at the first computation), so AVX-512 without AMX.
        nice -n 10 cmake -S "$source" -B "$root/build" -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
            -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DBUILD_SHARED_LIBS=OFF \
            -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON \
            -DGGML_AVX512=ON -DGGML_AVX512_VBMI=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_BF16=ON -DGGML_AVX_VNNI=ON \
            -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF >&2
        nice -n 10 cmake --build "$root/build" --target llama-server -j "$(nproc)" >&2
    fi
    echo "$binary"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

server_pid=""
stop_server() { [[ -z "$server_pid" ]] || { kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; server_pid=""; }; }
trap stop_server EXIT

start_server() { # name, port, command...
    local name="$1" port="$2"; shift 2
    echo "bench-serve: starting $name on port $port" >&2
    "$@" >"$out_dir/$name.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 600); do
        kill -0 "$server_pid" 2>/dev/null || { echo "bench-serve: $name exited; see $out_dir/$name.log" >&2; tail -20 "$out_dir/$name.log" >&2; exit 1; }
        curl -sf "http://127.0.0.1:$port/v1/models" >/dev/null && return 0
        sleep 0.2
    done
    echo "bench-serve: $name did not answer within 120 s" >&2; exit 1
}

bench_levels() { # name, port
    for c in $levels; do
        local prompts=$((c * per_level > 8 ? c * per_level : 8))
        echo "bench-serve: $1, concurrency $c, $prompts prompts" >&2
        "$tandem" bench serve --base-url "http://127.0.0.1:$2" --tokenizer-model "$model" \
            --random-input-len "$input_len" --random-output-len "$output_len" --ignore-eos \
            --max-concurrency "$c" --num-prompts "$prompts" --save-result "$out_dir/$1-c$c.json" >&2
    done
}

if ((run_llama)); then
    [[ -n "$llama_server" ]] || llama_server="$(build_llama_server)"
    port="$(free_port)"
    # --parallel 8 slots; -c 4096 leaves each slot 512 tokens, room for 256 + 128 (+ BOS).
    start_server llama-server "$port" "$llama_server" -m "$model" --host 127.0.0.1 --port "$port" \
        --threads "$threads" --threads-batch "$threads" --parallel 8 -c 4096
    bench_levels llama-server "$port"
    if ((fairness)); then
        python3 -c "import aiohttp, numpy, gguf" 2>/dev/null \
            || python3 -m pip install -q --disable-pip-version-check aiohttp numpy gguf
        echo "bench-serve: llama-server, concurrency 8, second client" >&2
        python3 scripts/bench-serve-client.py --base-url "http://127.0.0.1:$port" --gguf "$model" \
            --num-prompts 32 --max-concurrency 8 --input-len "$input_len" --output-len "$output_len" \
            > "$out_dir/llama-server-c8-python.json"
    fi
    stop_server
fi

if ((run_tandem)); then
    [[ -x .build/release/api-server ]] || swift build -c release --product api-server >&2
    port="$(free_port)"
    # shellcheck disable=SC2086 # TANDEM_SERVER_ARGS is a list of flags
    start_server tandem "$port" .build/release/api-server --model "$model" --host 127.0.0.1 --port "$port" \
        --threads "$threads" ${max_num_seqs:+--max-num-seqs "$max_num_seqs"} ${TANDEM_SERVER_ARGS:-}
    bench_levels tandem "$port"
    stop_server
fi

python3 - "$out_dir" "$threads" "$levels" <<'PY'
import json, os, sys
d, threads, levels = sys.argv[1], sys.argv[2], sys.argv[3].split()
def load(name):
    path = f"{d}/{name}.json"
    return json.load(open(path)) if os.path.exists(path) else None
def cell(r, key, fmt="{:.1f}"):
    return fmt.format(r[key]) if r else "-"
print(f"| concurrency | server | output tok/s | TTFT p50 ms | TTFT p99 ms | TPOT p50 ms | TPOT p99 ms | requests ok/failed |")
print("|---:|---|---:|---:|---:|---:|---:|---:|")
for c in levels:
    rows = [("llama-server", load(f"llama-server-c{c}")), ("tandem api-server", load(f"tandem-c{c}"))]
    for name, r in rows:
        if r is None:
            continue
        print(f"| {c} | {name} | {cell(r, 'output_throughput')} | {cell(r, 'median_ttft_ms')} | {cell(r, 'p99_ttft_ms')} | "
              f"{cell(r, 'median_tpot_ms', '{:.2f}')} | {cell(r, 'p99_tpot_ms', '{:.2f}')} | {r['completed']}/{r['failed']} |")
    l, t = rows[0][1], rows[1][1]
    if l and t:
        print(f"| {c} | ratio tandem/llama | {t['output_throughput'] / l['output_throughput']:.2f}x | | | | "
              f"{t['p99_tpot_ms'] / l['p99_tpot_ms']:.2f}x | |")
p = load("llama-server-c8-python")
if p:
    r = load("llama-server-c8")
    print(f"\nllama-server, concurrency 8, two clients: tandem bench serve {r['output_throughput']:.1f} tok/s, "
          f"TTFT p50 {r['median_ttft_ms']:.1f} ms, TPOT p50 {r['median_tpot_ms']:.2f} ms / p99 {r['p99_tpot_ms']:.2f} ms; "
          f"{p['client']} {p['output_throughput']:.1f} tok/s, TTFT p50 {p['median_ttft_ms']:.1f} ms, "
          f"TPOT p50 {p['median_tpot_ms']:.2f} ms / p99 {p['p99_tpot_ms']:.2f} ms "
          f"({p['completed']} ok, {p['failed']} failed, {p['total_input_tokens'] // max(p['completed'], 1)} prompt tokens each)")
PY
