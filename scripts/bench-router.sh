#!/usr/bin/env bash
# Router overhead side by side in one run: Tandem's router, vllm-router and sglang-router
# (PyPI) each in front of the same fast static backend (nginx answering every request with a
# fixed completion JSON), and that backend hit directly, all driven by the same client (wrk,
# POSTing one small /v1/completions body). Two phases per target:
#   saturation: $CONNECTIONS connections for $SECONDS_EACH s -> requests/s
#   latency:    1 connection for $SECONDS_EACH s -> p50 / p99, reported as added to the direct ones
# Prints a Markdown table; raw wrk output in $OUT_DIR (default .build/bench-router).
#
#   scripts/bench-router.sh [--seconds N] [--connections N] [--threads N] [--no-vllm] [--no-sglang]
#                           [--baseline ROUTER_BINARY]
#
# --baseline adds another Tandem router binary (say, main's before a change) as one more row.
# nginx-light, wrk, vllm-router and sglang-router come from scripts/install-deps.sh.
# The router is .build/release/router (built when missing).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=10 connections=64 wrk_threads=1 run_vllm=1 run_sglang=1 baseline=""
while (($#)); do
    case "$1" in
        --seconds) seconds="$2"; shift 2 ;;
        --connections) connections="$2"; shift 2 ;;
        --threads) wrk_threads="$2"; shift 2 ;;
        --no-vllm) run_vllm=0; shift ;;
        --no-sglang) run_sglang=0; shift ;;
        --baseline) baseline="$2"; shift 2 ;;
        *) echo "bench-router: unknown argument $1" >&2; exit 2 ;;
    esac
done
for tool in nginx wrk; do
    command -v "$tool" >/dev/null || PATH="$PATH:/usr/sbin"
    command -v "$tool" >/dev/null || { echo "bench-router: $tool is missing: run scripts/install-deps.sh" >&2; exit 1; }
done
router="${ROUTER_BIN:-.build/release/router}"
[[ -x "$router" ]] || swift build -c release --product router >&2

out_dir="${OUT_DIR:-.build/bench-router}"
mkdir -p "$out_dir"
work="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() { # url
    for _ in $(seq 1 300); do
        curl -sf -o /dev/null --max-time 1 "$1" && return 0
        sleep 0.1
    done
    echo "bench-router: $1 did not answer" >&2
    return 1
}

# The backend: one nginx worker answering every path with the same completion.
backend_port="$(free_port)"
cat >"$work/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path $work;
    proxy_temp_path $work;
    fastcgi_temp_path $work;
    uwsgi_temp_path $work;
    scgi_temp_path $work;
    server {
        listen 127.0.0.1:$backend_port;
        location / {
            default_type application/json;
            return 200 '{"id":"cmpl-bench","object":"text_completion","created":0,"model":"bench","choices":[{"index":0,"text":" Paris.","logprobs":null,"finish_reason":"length"}],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}';
        }
    }
}
EOF
nginx -p "$work" -c "$work/nginx.conf" &
pids+=($!)
backend="http://127.0.0.1:$backend_port"
wait_for "$backend/health"

cat >"$work/post.lua" <<'EOF'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"bench","prompt":"The capital of France is","max_tokens":2,"temperature":0}'
EOF

# measure NAME URL: both phases; appends "NAME rps p50_us p99_us" to $work/results.
measure() {
    local name="$1" url="$2"
    wrk -t"$wrk_threads" -c"$connections" -d"${seconds}s" -s "$work/post.lua" "$url/v1/completions" >"$out_dir/$name-saturation.txt"
    wrk -t1 -c1 -d"${seconds}s" --latency -s "$work/post.lua" "$url/v1/completions" >"$out_dir/$name-latency.txt"
    python3 - "$name" "$out_dir/$name-saturation.txt" "$out_dir/$name-latency.txt" >>"$work/results" <<'PY'
import re, sys
name, saturation, latency = sys.argv[1:4]
text = open(saturation).read()
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
if errors:
    sys.exit(f"bench-router: {name}: {errors.group(1)} failed responses at saturation")
def micros(value, unit):
    return float(value) * {"us": 1, "ms": 1e3, "s": 1e6}[unit]
lat = open(latency).read()
p = {k: micros(v, u) for k, v, u in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)$", lat, re.M)}
print(name, rps, p["50"], p["99"])
PY
}

start_and_measure() { # name port command...
    local name="$1" port="$2"
    shift 2
    "$@" >"$out_dir/$name.log" 2>&1 &
    local pid=$!
    pids+=("$pid")
    wait_for "http://127.0.0.1:$port/v1/models" || wait_for "http://127.0.0.1:$port/health"
    # Until the router sees the backend healthy, requests fail: wait for one to pass.
    for _ in $(seq 1 300); do
        curl -sf -o /dev/null --max-time 1 -H 'Content-Type: application/json' \
            -d '{"model":"bench","prompt":"x","max_tokens":1}' "http://127.0.0.1:$port/v1/completions" && break
        sleep 0.1
    done
    measure "$name" "http://127.0.0.1:$port"
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

: >"$work/results"
measure direct "$backend"
port="$(free_port)"
start_and_measure tandem-router "$port" "$router" --port "$port" --worker-urls "$backend" --log-level warning
port="$(free_port)"
start_and_measure tandem-router-1-thread "$port" "$router" --port "$port" --worker-urls "$backend" --log-level warning --threads 1
if [[ -n "$baseline" ]]; then
    port="$(free_port)"
    start_and_measure tandem-router-baseline "$port" "$baseline" --port "$port" --worker-urls "$backend" --log-level warning
fi
if ((run_vllm)); then
    port="$(free_port)"
    start_and_measure vllm-router "$port" vllm-router --host 127.0.0.1 --port "$port" --worker-urls "$backend" \
        --policy round_robin --log-level warning --prometheus-host 127.0.0.1 --prometheus-port "$(free_port)"
fi
if ((run_sglang)); then
    port="$(free_port)"
    start_and_measure sglang-router "$port" python3 -m sglang_router.launch_router --host 127.0.0.1 --port "$port" \
        --worker-urls "$backend" --policy round_robin --log-level warn --prometheus-host 127.0.0.1 --prometheus-port "$(free_port)"
fi

python3 - "$work/results" "$connections" "$seconds" <<'PY'
import sys
rows = [line.split() for line in open(sys.argv[1])]
results = {name: (float(rps), float(p50), float(p99)) for name, rps, p50, p99 in rows}
direct = results["direct"]
print(f"wrk, {sys.argv[3]} s per phase; saturation at {sys.argv[2]} connections, latency at 1 connection; backend: nginx, fixed JSON")
print()
print("| target | requests/s | p50 | p99 | added p50 | added p99 |")
print("| --- | ---: | ---: | ---: | ---: | ---: |")
for name, (rps, p50, p99) in results.items():
    added = "" if name == "direct" else f"{p50 - direct[1]:.0f} us | {p99 - direct[2]:.0f} us"
    print(f"| {name} | {rps:.0f} | {p50:.0f} us | {p99:.0f} us | {added or ' | '} |")
for mine in ("tandem-router", "tandem-router-1-thread", "tandem-router-baseline"):
    tandem = results.get(mine)
    for other in ("vllm-router", "sglang-router"):
        if tandem and other in results:
            o = results[other]
            print(f"\n{mine} vs {other}: requests/s {tandem[0] / o[0]:.2f}x, "
                  f"added p50 {tandem[1] - direct[1]:.0f} us vs {o[1] - direct[1]:.0f} us, "
                  f"added p99 {tandem[2] - direct[2]:.0f} us vs {o[2] - direct[2]:.0f} us")
PY
