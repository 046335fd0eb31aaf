#!/usr/bin/env bash
# The main job on a fresh machine. Today: `multi-api-server` running two data-parallel ranks
# on this host's CPUs, each a real process with its own ports, log folder, health checks and
# restarts. The ranks run `tandem-test-worker`, the stand-in worker, until `api-server` (the
# OpenAI server over Engine) lands; then this becomes the local PD deployment on the default
# model. Stop with Ctrl-C (graceful: every rank gets SIGTERM).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build -c release --product multi-api-server
swift build -c release --product tandem-test-worker
bin=$(swift build -c release --show-bin-path)
echo "serve: control endpoint on http://127.0.0.1:${CONTROL_PORT:-9000} (/health, /ranks, /metrics)" >&2
exec "$bin/multi-api-server" \
    --num-servers 2 --ports "${PORTS:-8000,8001}" --control-port "${CONTROL_PORT:-9000}" \
    --log-dir "${LOG_DIR:-log}" --worker-binary "$bin/tandem-test-worker" "$@"
