#!/bin/sh
# Per-kernel decode comparison (one thread, one activation row) of CKernels against llama.cpp's
# ggml CPU kernels at SmolLM2-135M's shapes, on the types of the default model and of its
# Q4_K_M requantization. Links the static ggml libraries of a llama.cpp build — by default the
# AVX2 build scripts/bench-kernels.sh makes — so the ggml column is the instruction set that
# build was made for.
#   Benchmarks/kernels/ggml_compare.sh [LLAMA_BUILD_DIR] [BACKEND] [ROUNDS]
# Prints a Markdown table: the fastest round's µs per product (activation quantization included) and the
# speed ratio tandem / ggml (> 1: tandem faster); the last column is the relative squared
# difference of the two results (ggml quantizes K-quant activations per 256, tandem per 32).
# By default each matrix is read from L2 round after round; with TK_COLD_MB=128 in the
# environment the rounds rotate through copies of it that take 128 MiB, so the weights come from
# L3 or memory as they do in a model's decode step.
set -e
root=$(cd "$(dirname "$0")/../.." && pwd)
build="${1:-$HOME/.cache/tandem/bench-kernels/llama-avx2}"
backend="${2:-avx2-maddubs}"
rounds="${3:-101}"
src=$(ls -d "$(dirname "$build")"/llama-src/llama_cpp_python-*/vendor/llama.cpp 2>/dev/null | head -1)
[ -n "$src" ] || { echo "ggml_compare: no llama.cpp source next to $build (run scripts/bench-kernels.sh first)" >&2; exit 1; }
out="${TMPDIR:-/tmp}/tk-ggml-compare"
${CC:-clang} -O3 -std=gnu11 -I"$src/ggml/include" -I"$root/Sources/CKernels/include" -o "$out" \
    "$root/Benchmarks/kernels/ggml_compare.c" "$root"/Sources/CKernels/*.c \
    "$build/ggml/src/libggml-cpu.a" "$build/ggml/src/libggml-base.a" -lstdc++ -lgomp -lm -lpthread
echo "| type | n x k | tandem backend | tandem µs | ggml µs | ratio ggml/tandem time | rel. sq. diff |"
echo "| --- | --- | --- | ---: | ---: | ---: | ---: |"
for case in "q4_1 576 576" "q4_1 1536 576" "q4_1 576 1536" "q5_0 576 576" "q5_0 1536 576" "q8_0 192 576" \
    "q8_0 49152 576" "q4_K 576 1536" "q6_K 576 1536"; do
    # shellcheck disable=SC2086
    "$out" $case "$backend" "$rounds"
done
