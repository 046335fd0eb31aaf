# Shared by the example deployments' run.sh scripts (sourced, not run): where the binaries
# are, starting the deployment's processes in the background, and stopping all of them, in
# reverse order, when the script is told to stop (Ctrl-C, SIGTERM) or when one of them ends.

set -m # Each process in its own group: Ctrl-C reaches the script only, which stops them in order.

# The folder holding router, multi-api-server and api-server: $TANDEM_BIN, else this
# package's release build (`swift build -c release` first).
tandem_bin() {
    local bin=${TANDEM_BIN:-}
    if [[ -z $bin ]]; then
        bin=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && swift build -c release --show-bin-path)
    fi
    for program in router multi-api-server api-server; do
        if [[ ! -x $bin/$program ]]; then
            echo "$0: $bin/$program is missing: build first (swift build -c release) or set TANDEM_BIN" >&2
            exit 78
        fi
    done
    echo "$bin"
}

started_pids=()
started_names=()

# start NAME COMMAND...: runs COMMAND in the background, its output prefixed with NAME.
start() {
    local name=$1
    shift
    "$@" > >(sed -u "s/^/[$name] /") 2>&1 &
    started_pids+=($!)
    started_names+=("$name")
}

# wait_ready NAME URL: waits until URL (a fleet's control /health) answers 200, so the next
# fleet loads its model only once this one serves (each supervisor holds the ports it planned,
# so two fleets never pick the same one). Stops everything if NAME ends first.
wait_ready() {
    local name=$1 url=$2 pid=${started_pids[-1]} tries
    trap 'stop_all; exit 0' INT TERM
    for ((tries = 0; tries < ${READY_TIMEOUT:-300} * 10; tries++)); do
        curl -fs -o /dev/null "$url" && return 0
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "$0: $name ended before it was ready" >&2
            stop_all
            exit 1
        fi
        sleep 0.1
    done
    echo "$0: $name was not ready after ${READY_TIMEOUT:-300} s" >&2
    stop_all
    exit 1
}

# Stops what start() started, last first (the fleets leave the router before the router
# goes), each with SIGTERM and up to STOP_TIMEOUT seconds (default 30) before SIGKILL.
stop_all() {
    trap - INT TERM EXIT
    local index pid waited
    for ((index = ${#started_pids[@]} - 1; index >= 0; index--)); do
        pid=${started_pids[index]}
        kill -TERM "$pid" 2>/dev/null || continue
        for ((waited = 0; waited < ${STOP_TIMEOUT:-30} * 10; waited++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            echo "$0: ${started_names[index]} (pid $pid) still running: SIGKILL" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
}

# run_until_stopped: waits until told to stop or until one process ends, then stops the rest.
# The exit status is 0 after Ctrl-C or SIGTERM, else that of the process that ended first.
run_until_stopped() {
    local status=0
    trap 'stop_all; exit 0' INT TERM
    trap 'stop_all' EXIT
    wait -n "${started_pids[@]}" || status=$?
    echo "$0: a process of the deployment ended (status $status): stopping the others" >&2
    stop_all
    exit "$status"
}

# Two "hosts" on one machine: network namespaces $NETNS_NAME-p (address $SUBNET.1) and
# $NETNS_NAME-d ($SUBNET.2) on a private LAN, a bridge in a third namespace ($NETNS_NAME-lan),
# joined by veth pairs to both and to this namespace ($SUBNET.254, link $NETNS_NAME-r, whose
# LAN end is named after what runs here). Needs root (ip netns, ip link; Debian iproute2).
#
# two_host_lan NAME SUBNET HERE: builds it (removing leftovers of an earlier run first).
two_host_lan() {
    local name=$1 subnet=$2 here=$3 side
    remove_two_host_lan "$name"
    ip netns add "$name-lan"
    ip -n "$name-lan" link add name br0 type bridge
    ip -n "$name-lan" link set br0 up
    ip link add name "$name-r" type veth peer name "$here" netns "$name-lan"
    ip addr add "$subnet.254/24" dev "$name-r"
    ip link set "$name-r" up
    ip -n "$name-lan" link set "$here" master br0 up
    for side in p d; do
        ip netns add "$name-$side"
        ip -n "$name-lan" link add name "to-$side" type veth peer name eth0 netns "$name-$side"
        ip -n "$name-lan" link set "to-$side" master br0 up
        ip -n "$name-$side" addr add "$subnet.$(host_number "$side")/24" dev eth0
        ip -n "$name-$side" link set eth0 up
        ip -n "$name-$side" link set lo up
    done
}

# remove_two_host_lan NAME: deletes the namespaces and the link (what is missing is skipped).
remove_two_host_lan() {
    local name=$1 namespace
    for namespace in "$name-p" "$name-d" "$name-lan"; do ip netns del "$namespace" 2>/dev/null || true; done
    ip link del "$name-r" 2>/dev/null || true
}

# host_number SIDE: the last byte of side p's (1) or d's (2) address.
host_number() { [[ $1 == p ]] && echo 1 || echo 2; }

# run_two_hosts_until_stopped NAME: like run_until_stopped, and removes the LAN at the end.
run_two_hosts_until_stopped() {
    local name=$1 status=0
    trap "stop_all; remove_two_host_lan $name; exit 0" INT TERM
    trap "stop_all; remove_two_host_lan $name" EXIT
    wait -n "${started_pids[@]}" || status=$?
    echo "$0: a process of the deployment ended (status $status): stopping the others" >&2
    stop_all
    remove_two_host_lan "$name"
    trap - EXIT
    exit "$status"
}
