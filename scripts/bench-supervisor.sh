#!/usr/bin/env bash
# Benchmark: multi-api-server versus supervisord (PyPI `supervisor`) over the same
# tandem-test-worker: restart after SIGKILL, detection of a SIGSTOP'd worker, start of a
# fleet of 8 ranks. Prints a Markdown table (paste into BENCHMARKS.md, "Supervisor").
# Usage: scripts/bench-supervisor.sh [repetitions]   (default 10)
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -c 'import supervisor' 2>/dev/null || python3 -m pip install -q --disable-pip-version-check supervisor
swift build -c release --product multi-api-server
swift build -c release --product tandem-test-worker
build_dir=$(swift build -c release --show-bin-path)
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(uname -sr)"
echo "supervisord $(supervisord --version), $(swift --version 2>&1 | head -1)"
python3 scripts/bench-supervisor/bench.py "$build_dir" "${1:-10}"
