#!/usr/bin/env bash
# Prefill-decode disaggregation on one host (the README's main job, scripts/serve.sh): the
# router on $ROUTER_PORT (default 8000) answering the OpenAI API, one prefill and one decode
# api-server, each under its own multi-api-server, registering with the router by themselves.
# KV moves from prefill to decode over shared memory (ipc; tcp when ipc cannot be used).
# Stop with Ctrl-C or SIGTERM: the fleets drain and leave the router, then the router stops.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../common.sh"
bin=$(tandem_bin)

router_port=${ROUTER_PORT:-8000}
log_dir=${LOG_DIR:-log}
model_name=SmolLM2-135M-Instruct
# Every rank's flags; the supervisor adds its ports and --router.
worker_flags=(--served-model-name "$model_name" --threads "${THREADS:-1}" --cache-transfer-protocol ipc,tcp)

start router "$bin/router" --host 127.0.0.1 --port "$router_port" --splitwise
start prefill "$bin/multi-api-server" --num-servers 1 --control-port "${PREFILL_CONTROL_PORT:-9000}" \
    --log-dir "$log_dir/prefill" --router "127.0.0.1:$router_port" --worker-binary "$bin/api-server" \
    --args --splitwise-role prefill "${worker_flags[@]}"
wait_ready prefill "http://127.0.0.1:${PREFILL_CONTROL_PORT:-9000}/health"
start decode "$bin/multi-api-server" --num-servers 1 --control-port "${DECODE_CONTROL_PORT:-9001}" \
    --log-dir "$log_dir/decode" --router "127.0.0.1:$router_port" --worker-binary "$bin/api-server" \
    --args --splitwise-role decode "${worker_flags[@]}"
echo "pd-single-host: OpenAI API on http://127.0.0.1:$router_port/v1 once both instances have registered" \
    "(GET /registered); fleets' control endpoints on :${PREFILL_CONTROL_PORT:-9000} and :${DECODE_CONTROL_PORT:-9001}" >&2
run_until_stopped
