#!/usr/bin/env bash
# Prefill and decode on two "hosts" with no router: FastDeploy's splitwise scheduler over Redis.
# Two network namespaces on one Linux machine, each with its own address on a private LAN
# (a bridge in a third namespace, joined by veth pairs to the two hosts and to this namespace,
# where Redis runs). Each instance publishes itself in Redis; either instance's port takes
# OpenAI requests, places them on the prefill and the decode instance, and the KV cache moves
# over TCP (the decode instance's cache-queue port), as between machines.
#
#   Redis $SUBNET.254:$REDIS_PORT (this namespace)
#                 │ veth
#            [$NAME-lan: bridge] ── veth ── $NAME-p: $SUBNET.1:$API_PORT  prefill api-server
#                              └── veth ── $NAME-d: $SUBNET.2:$API_PORT  decode api-server  (KV: p ─tcp─▶ d)
#
# Needs root (ip netns, ip link; Debian package iproute2) and redis-server (Debian package
# redis-server; scripts/install-deps.sh installs both). Creates the namespaces and links, and
# removes them when it stops (Ctrl-C, SIGTERM).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../common.sh"
if [[ $EUID -ne 0 ]]; then
    echo "$0: needs root (it creates network namespaces)" >&2
    exit 77
fi
bin=$(tandem_bin)

name=${NETNS_NAME:-tandem}   # namespaces $name-lan, $name-p, $name-d; link $name-r (at most 12 characters)
subnet=${SUBNET:-10.78.0}
api_port=${API_PORT:-8000}
redis_port=${REDIS_PORT:-6379}
topic=${TOPIC:-fd}
# Redis listens on the LAN, so it needs a password (else its protected mode refuses peers).
redis_password=${REDIS_PASSWORD:-tandem-example}

two_host_lan "$name" "$subnet" redis
trap 'remove_two_host_lan "$name"' EXIT

start redis redis-server --bind "$subnet.254" --port "$redis_port" --requirepass "$redis_password" \
    --save '' --appendonly no --dir /tmp
for ((tries = 0; tries < 100; tries++)); do
    [[ $(redis-cli -h "$subnet.254" -p "$redis_port" -a "$redis_password" --no-auth-warning ping 2>/dev/null) == PONG ]] && break
    sleep 0.1
done

# instance SIDE ROLE [FLAGS...]: one api-server in namespace $name-SIDE, on that namespace's address.
instance() {
    local side=$1 role=$2 address=$subnet.$(host_number "$1")
    shift 2
    start "$role" ip netns exec "$name-$side" "$bin/api-server" --host "$address" --port "$api_port" \
        --splitwise-role "$role" --cache-transfer-protocol tcp --engine-worker-queue-port 8001 "$@" \
        --scheduler-name splitwise --scheduler-host "$subnet.254" --scheduler-port "$redis_port" \
        --scheduler-password "$redis_password" \
        --scheduler-topic "$topic" --scheduler-sync-period 50 \
        --served-model-name SmolLM2-135M-Instruct --threads "${THREADS:-1}"
}
instance p prefill
instance d decode --pd-comm-port 8002 --cache-queue-port 8003
echo "pd-two-hosts-redis: OpenAI API on http://$subnet.1:$api_port/v1 and http://$subnet.2:$api_port/v1; Redis on $subnet.254:$redis_port" >&2
run_two_hosts_until_stopped "$name"
