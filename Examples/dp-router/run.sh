#!/usr/bin/env bash
# Data parallelism behind the router: one multi-api-server running two mixed api-server ranks
# that register with the router on $ROUTER_PORT (default 8000); the router spreads OpenAI
# requests over them (least requests first), and the supervisor takes a rank out of the router
# before it restarts it. Stop with Ctrl-C or SIGTERM.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../common.sh"
bin=$(tandem_bin)

router_port=${ROUTER_PORT:-8000}
log_dir=${LOG_DIR:-log}

start router "$bin/router" --host 127.0.0.1 --port "$router_port" --policy least_requests
start ranks "$bin/multi-api-server" --num-servers 2 --control-port "${CONTROL_PORT:-9000}" \
    --log-dir "$log_dir/mixed" --router "127.0.0.1:$router_port" --worker-binary "$bin/api-server" \
    --args --served-model-name SmolLM2-135M-Instruct --threads "${THREADS:-1}"
echo "dp-router: OpenAI API on http://127.0.0.1:$router_port/v1 once the ranks have registered;" \
    "the fleet's control endpoint on :${CONTROL_PORT:-9000}" >&2
run_until_stopped
