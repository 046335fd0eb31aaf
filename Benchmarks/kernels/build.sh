#!/bin/sh
# Builds the kernel microbenchmark against CKernels' sources (same flags as the package: -O3,
# no -march: the kernels pick their SIMD path at run time). Prints the binary's path.
set -e
root=$(cd "$(dirname "$0")/../.." && pwd)
out="${TMPDIR:-/tmp}/tk-kernel-bench"
cc="${CC:-clang}"
$cc -O3 -std=gnu11 -Wall -Wextra -I"$root/Sources/CKernels/include" -o "$out" \
    "$root/Benchmarks/kernels/kernel_bench.c" "$root"/Sources/CKernels/*.c -lpthread -lm
echo "$out"
