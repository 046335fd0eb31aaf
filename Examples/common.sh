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

# two_host_lan, remove_two_host_lan, host_number: one copy, shared with the benchmarks.
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/two-host-lan.sh"

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
