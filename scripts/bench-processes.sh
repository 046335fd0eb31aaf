# Sourced by the benchmark scripts that start servers: a free loopback port, launch (in the
# background, output to $out_dir/NAME.log), and stop_all (SIGTERM, then SIGKILL after 10 s),
# run on exit and between runs.

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

pids=()
stop_all() {
    local pid waited
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do
        for ((waited = 0; waited < 100; waited++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    pids=()
}
trap stop_all EXIT

launch() { # log name, command...
    local name="$1"; shift
    "$@" >"$out_dir/$name.log" 2>&1 &
    pids+=($!)
}
