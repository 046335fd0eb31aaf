#!/usr/bin/env bash
# Tandem's CPU kernel paths side by side with llama.cpp built for the same instruction set, in
# one run on this machine: pp512, tg128 with 1 sequence and tg128 with 8 sequences decoding
# together, on the default model (Q4_1) and on a Q4_K_M requantization of it.
#
#   scripts/bench-kernels.sh [--threads N] [--repetitions R] [--work DIR]
#                            [--llama-avx2 BUILD] [--llama-native BUILD] [--paths "avx2 avx512 ..."]
#
# Rows: tandem `--cpu-kernels portable|avx2|avx512` (each only where the CPU runs it);
# llama.cpp from PyPI's llama-cpp-python sdist (its vendor/llama.cpp), built twice outside the
# repository under DIR (default ~/.cache/tandem/bench-kernels): llama-avx2 (GGML_NATIVE=OFF,
# AVX2/FMA/F16C on, AVX-512 and AVX-VNNI off) and llama-native (GGML_NATIVE=ON, which on an
# AVX-512 CPU is the AVX-512 build). llama-bench measures pp512 and tg128, llama-batched-bench
# tg128 with 8 sequences (-npp 1 -ntg 128 -npl 8). The builds take many CPU-minutes, once;
# --llama-avx2 / --llama-native name existing build folders (with bin/) to use instead;
# --llama-native none skips the native build (the avx512 row is then set against llama-avx2).
# Raw outputs go to DIR/results; a Markdown table with ratios is printed.
set -euo pipefail
cd "$(dirname "$0")/.."

threads=2 repetitions=3 work="$HOME/.cache/tandem/bench-kernels" llama_avx2="" llama_native=""
wanted="portable avx2 avx512"
while (($#)); do
    case "$1" in
        --llama-avx2) llama_avx2="$2"; shift 2 ;;
        --paths) wanted="$2"; shift 2 ;;
        --llama-native) llama_native="$2"; shift 2 ;;
        --threads) threads="$2"; shift 2 ;;
        --repetitions) repetitions="$2"; shift 2 ;;
        --work) work="$2"; shift 2 ;;
        *) echo "bench-kernels: unknown argument $1" >&2; exit 2 ;;
    esac
done
mkdir -p "$work/models" "$work/results"
results="$work/results"
model="$(scripts/fetch-model.sh)"

# Install steps: cmake (apt), llama.cpp's source (pip sdist), two builds.
command -v cmake >/dev/null || { sudo apt-get update -q && sudo apt-get install -y -q cmake; }
src=$(ls -d "$work"/llama-src/llama_cpp_python-*/vendor/llama.cpp 2>/dev/null | head -1 || true)
if [[ -z "$src" ]]; then
    mkdir -p "$work/llama-src"
    python3 -m pip download -q --disable-pip-version-check --no-deps --no-binary :all: llama-cpp-python -d "$work/llama-src"
    tar -xzf "$work"/llama-src/llama_cpp_python-*.tar.gz -C "$work/llama-src"
    src=$(ls -d "$work"/llama-src/llama_cpp_python-*/vendor/llama.cpp | head -1)
fi
llama_avx2="${llama_avx2:-$work/llama-avx2}" llama_native="${llama_native:-$work/llama-native}"
build_llama() { # dir, cmake flags...
    local dir="$1"; shift
    [[ -x "$dir/bin/llama-bench" && -x "$dir/bin/llama-batched-bench" ]] && return
    cmake -S "$src" -B "$dir" -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF \
        -DLLAMA_BUILD_SERVER=OFF -DGGML_OPENMP=ON -DBUILD_SHARED_LIBS=OFF "$@" >&2
    nice cmake --build "$dir" -j"$(nproc)" --target llama-bench llama-batched-bench llama-quantize >&2
}
build_llama "$llama_avx2" -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
    -DGGML_AVX512=OFF -DGGML_AVX_VNNI=OFF
builds=(avx2)
if [[ "$llama_native" != none ]]; then build_llama "$llama_native" -DGGML_NATIVE=ON; builds+=(native); fi

q4km="$work/models/$(basename "$model" .Q4_1.gguf).Q4_K_M.gguf"
[[ -f "$q4km" ]] || "$llama_avx2/bin/llama-quantize" --allow-requantize "$model" "$q4km" Q4_K_M >&2

swift build -c release --product tandem >&2
tandem=.build/release/tandem
paths=()
for p in $wanted; do
    if "$tandem" bench engine --cpu-kernels "$p" --prompt-tokens 1 --gen-tokens 0 --repetitions 1 --json \
        --model "$model" >/dev/null 2>&1; then paths+=("$p"); fi
done

for m in "$model" "$q4km"; do
    tag=$(basename "$m" .gguf)
    for p in "${paths[@]}"; do
        echo "tandem $p $tag ..." >&2
        "$tandem" bench engine --model "$m" --cpu-kernels "$p" --threads "$threads" --repetitions "$repetitions" \
            --prompt-tokens 512 --gen-tokens 128 --batch 1 --json >"$results/tandem-$p-$tag-b1.json"
        "$tandem" bench engine --model "$m" --cpu-kernels "$p" --threads "$threads" --repetitions "$repetitions" \
            --prompt-tokens 0 --gen-tokens 128 --batch 8 --json >"$results/tandem-$p-$tag-b8.json"
    done
    for b in "${builds[@]}"; do
        echo "llama.cpp $b $tag ..." >&2
        dir="$llama_avx2"; [[ $b == native ]] && dir="$llama_native"
        "$dir/bin/llama-bench" -m "$m" -t "$threads" -r "$repetitions" -p 512 -n 128 -o json \
            >"$results/llama-$b-$tag-b1.json" 2>/dev/null
        "$dir/bin/llama-batched-bench" -m "$m" -t "$threads" -c 2048 -b 512 -ub 512 \
            -npp 1 -ntg 128 -npl 8 --output-format jsonl 2>/dev/null | grep '^{' >"$results/llama-$b-$tag-b8.json"
    done
done

python3 - "$results" "$threads" "${#builds[@]}" "$model" "$q4km" "${paths[@]}" <<'PY'
import json, os, sys
d, threads, has_native, models, paths = sys.argv[1], sys.argv[2], sys.argv[3] == "2", sys.argv[4:6], sys.argv[6:]

def tandem(p, tag, b, key):
    return json.load(open(f"{d}/tandem-{p}-{tag}-b{b}.json"))[key]

def llama(build, tag, test):
    if test == "tg128x8":
        return json.loads(open(f"{d}/llama-{build}-{tag}-b8.json").readline())["speed_tg"]
    rows = json.load(open(f"{d}/llama-{build}-{tag}-b1.json"))
    want = (512, 0) if test == "pp512" else (0, 128)
    return next(r["avg_ts"] for r in rows if (r["n_prompt"], r["n_gen"]) == want)

tests = [("pp512", 1, "prefill_tokens_per_s"), ("tg128", 1, "generation_tokens_per_s"),
         ("tg128x8", 8, "generation_tokens_per_s")]
pairs = [(p, "native" if p == "avx512" and has_native else "avx2") for p in paths]
print(f"tokens/s, {threads} threads; ratio = tandem / llama.cpp (portable: against llama.cpp's AVX2 build)\n")
print("| model | test | " + " | ".join(f"tandem {p} | llama.cpp {b} | ratio" for p, b in pairs) + " |")
print("| --- | --- | " + " | ".join("---: | ---: | ---:" for _ in pairs) + " |")
for m in models:
    tag = os.path.basename(m)[:-5]
    for test, b, key in tests:
        cells = []
        for p, build in pairs:
            t, l = tandem(p, tag, b, key), llama(build, tag, test)
            cells.append(f"{t:.1f} | {l:.1f} | {t / l:.2f}")
        print(f"| {tag} | {test} | " + " | ".join(cells) + " |")
PY
