#!/bin/sh
# Builds swift_q4_1.swift for baseline x86-64 and for -target-cpu znver4 and runs both
# (one thread); compare with `kernel_bench --threads 1 --type q4_1`.
set -e
dir=$(cd "$(dirname "$0")" && pwd)
out="${TMPDIR:-/tmp}"
swiftc -Ounchecked -o "$out/tk-swift-q4_1-baseline" "$dir/swift_q4_1.swift"
swiftc -Ounchecked -target-cpu znver4 -o "$out/tk-swift-q4_1-znver4" "$dir/swift_q4_1.swift"
echo "baseline x86-64:"; "$out/tk-swift-q4_1-baseline"
echo "-target-cpu znver4:"; "$out/tk-swift-q4_1-znver4"
