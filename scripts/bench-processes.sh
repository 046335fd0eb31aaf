# Sourced by the benchmark scripts that start servers: a free loopback port, launch (in the
# background, output to $out_dir/NAME.log), and stop_all (SIGTERM, then SIGKILL after 10 s),
# run on exit and between runs; stop_pids for processes kept apart from $pids.

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# stop_pids PID...: SIGTERM to each, then SIGKILL to any still running after 10 s.
stop_pids() {
    local pid waited
    for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "$@"; do
        for ((waited = 0; waited < 100; waited++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
}

pids=()
stop_all() { if ((${#pids[@]})); then stop_pids "${pids[@]}"; fi; pids=(); }
trap stop_all EXIT

launch() { # log name, command...
    local name="$1"; shift
    "$@" >"$out_dir/$name.log" 2>&1 &
    pids+=($!)
}
