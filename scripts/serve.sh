#!/usr/bin/env bash
# The main job on a fresh machine: `multi-api-server` running two data-parallel ranks of
# `api-server` (the OpenAI-compatible server over Engine) on the default model, on this host's
# CPUs. Each rank is a real process with its own ports, log folder, health checks and
# restarts; rank i answers OpenAI requests on the i-th of $PORTS (default 8000,8001). Stop
# with Ctrl-C (graceful: every rank drains and exits).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build -c release --product multi-api-server
swift build -c release --product api-server
bin=$(swift build -c release --show-bin-path)
echo "serve: ranks on http://127.0.0.1:${PORTS:-8000,8001} (OpenAI API), control endpoint on http://127.0.0.1:${CONTROL_PORT:-9000} (/health, /ranks, /metrics)" >&2
exec "$bin/multi-api-server" \
    --num-servers 2 --ports "${PORTS:-8000,8001}" --control-port "${CONTROL_PORT:-9000}" \
    --log-dir "${LOG_DIR:-log}" --worker-binary "$bin/api-server" "$@" \
    --args --served-model-name SmolLM2-135M-Instruct --threads "${THREADS:-1}"
