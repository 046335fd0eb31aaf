#!/usr/bin/env bash
# Prefill and decode on two "hosts": two network namespaces on one Linux machine, each with
# its own address on a private LAN, so the router pairs them across hosts and the KV cache
# moves over TCP (the cache-queue port), as between machines. The LAN is a bridge in a third
# namespace (a switch: its own, empty firewall), joined by veth pairs to the two hosts and
# to this namespace, where the router runs.
#
#   client ──▶ router $SUBNET.254:$ROUTER_PORT (this namespace)
#                 │ veth
#            [$NAME-lan: bridge] ── veth ── $NAME-p: $SUBNET.1  prefill fleet
#                              └── veth ── $NAME-d: $SUBNET.2  decode fleet  (KV: p ─tcp─▶ d)
#
# Needs root (ip netns, ip link; Debian package iproute2). Creates the namespaces and links,
# and removes them when it stops (Ctrl-C, SIGTERM).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../common.sh"
if [[ $EUID -ne 0 ]]; then
    echo "$0: needs root (it creates network namespaces)" >&2
    exit 77
fi
bin=$(tandem_bin)

name=${NETNS_NAME:-tandem}   # namespaces $name-lan, $name-p, $name-d; link $name-r (at most 12 characters)
subnet=${SUBNET:-10.77.0}
router_port=${ROUTER_PORT:-8000}
log_dir=${LOG_DIR:-log}

two_host_lan "$name" "$subnet" router
trap 'remove_two_host_lan "$name"' EXIT

# fleet SIDE ROLE: one multi-api-server in namespace $name-SIDE, its rank on that namespace's address.
fleet() {
    local side=$1 role=$2 address=$subnet.$(host_number "$1")
    start "$role" ip netns exec "$name-$side" "$bin/multi-api-server" --num-servers 1 --host "$address" \
        --control-port 9000 --log-dir "$log_dir/$role" --router "http://$subnet.254:$router_port" \
        --worker-binary "$bin/api-server" \
        --args --host "$address" --splitwise-role "$role" --cache-transfer-protocol tcp \
        --served-model-name SmolLM2-135M-Instruct --threads "${THREADS:-1}"
}
start router "$bin/router" --host "$subnet.254" --port "$router_port" --splitwise
fleet p prefill
fleet d decode
echo "pd-two-hosts: OpenAI API on http://$subnet.254:$router_port/v1; prefill on $subnet.1, decode on $subnet.2" >&2
run_two_hosts_until_stopped "$name"
