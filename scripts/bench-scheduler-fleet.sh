#!/usr/bin/env bash
# A small splitwise-scheduler fleet across two "hosts" (network namespaces), against two mixed
# instances on the same hosts, cores and Redis; and Redis commands per request with 2 and with
# 4 nodes.
#
#   Redis $SUBNET.254 (this namespace, on the LAN bridge, password)
#   host A ($NETNS_NAME-p, $SUBNET.1): prefill P1, P2      | mixed M1
#   host B ($NETNS_NAME-d, $SUBNET.2): decode  D1, D2      | mixed M2
#
# Layout: the prefill instances on one host and the decode instances on the other, as
# FastDeploy's users split prefill and decode machines: every KV transfer crosses hosts (tcp,
# D's cache-queue port over the veth LAN), none takes the same-host ipc shortcut, so the figure
# is the cross-machine case the scheduler exists for. The mixed reference (M1 on A, M2 on B)
# goes through the same scheduler (--scheduler-name splitwise, its own topic): the same Redis
# hops and placement, so the two differ only in disaggregation.
# Cores: every PD instance has --threads N (default 1), each mixed one twice as many,
# so both fleets have the same total compute threads (4 at the default).
#
# Throughput: `tandem bench serve` with a fixed number of prompts and concurrency, sent
# round-robin to the instances' API ports: one client per instance, started together, each with
# its share of the prompts and of the concurrency (4 clients of N/4 for PD, 2 of N/2 for mixed).
# Output tokens/s = all output tokens / the longest client's duration; TTFT p50/p99 over every
# request of all clients; TPOT p50 = the mean of the clients' p50 (the clients' JSON has no
# per-request TPOT). Rounds alternate which fleet goes first; each run has a fresh deployment.
#
# Redis commands per request: a deployment of 1P+1D at concurrency 8, then 2P+2D (P's on A,
# D's on B) at concurrency 8 and at 16 (the same load per node), requests round-robin to every
# instance: Redis's total_commands_processed over the run less an idle window as long (as
# scripts/bench-scheduler.sh), / requests (unreliable on a loaded machine: the sync slows while
# the nodes compute, so the idle window holds more sync than the busy one); and,
# from MONITOR over the same two windows, the commands per request by node kind (host A = the
# prefill nodes, host B = the decode nodes) and by command, the periodic sync (HSET, HGETALL,
# LLEN) apart, as it is per period, not per request.
#
#   scripts/bench-scheduler-fleet.sh [--rounds N] [--num-prompts N] [--input-len N] [--output-len N]
#                                    [--concurrency N] [--count-prompts N] [--threads N]
#
# Needs root (ip netns; Debian iproute2) and redis-server (scripts/install-deps.sh installs
# both). $BIN_DIR: api-server and tandem already built (default .build/release, built when
# missing). $NETNS_NAME (default sf<pid>, at most 12 characters), $SUBNET (default 10.79.0).
# Removes its processes, namespaces, links and Redis on exit. Raw JSON, MONITOR logs and logs
# in $OUT_DIR (default .build/bench-scheduler-fleet).
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=2 prompts=32 input_len=128 output_len=32 concurrency=8 count_prompts=32 threads=1
while (($#)); do
    case "$1" in
        --rounds) rounds="$2"; shift 2 ;;
        --num-prompts) prompts="$2"; shift 2 ;;
        --input-len) input_len="$2"; shift 2 ;;
        --output-len) output_len="$2"; shift 2 ;;
        --concurrency) concurrency="$2"; shift 2 ;;
        --count-prompts) count_prompts="$2"; shift 2 ;;
        --threads) threads="$2"; shift 2 ;;
        *) echo "bench-scheduler-fleet: unknown argument $1" >&2; exit 2 ;;
    esac
done
for value in "$prompts" "$concurrency" "$count_prompts"; do
    ((value % 4 == 0 && value > 0)) || { echo "bench-scheduler-fleet: --num-prompts, --concurrency and --count-prompts must be multiples of 4" >&2; exit 2; }
done
if [[ $EUID -ne 0 ]]; then
    echo "bench-scheduler-fleet: needs root (it creates network namespaces)" >&2
    exit 77
fi
command -v redis-server >/dev/null || { echo "bench-scheduler-fleet: redis-server is missing: run scripts/install-deps.sh" >&2; exit 1; }
command -v ip >/dev/null || { echo "bench-scheduler-fleet: ip is missing (iproute2): run scripts/install-deps.sh" >&2; exit 1; }
model="$(scripts/fetch-model.sh)"
bin="${BIN_DIR:-.build/release}"
for program in api-server tandem; do
    [[ -x "$bin/$program" ]] || swift build -c release --product "$program" >&2
done
bin="$(cd "$bin" && pwd)"
out_dir="${OUT_DIR:-.build/bench-scheduler-fleet}"
mkdir -p "$out_dir"
rm -f "$out_dir"/*.json "$out_dir"/*.log "$out_dir"/*.txt

name="${NETNS_NAME:-sf$$}"
subnet="${SUBNET:-10.79.0}"
redis_host="$subnet.254" redis_port=6379 redis_password=bench-scheduler-fleet
rcli() { redis-cli -h "$redis_host" -p "$redis_port" -a "$redis_password" --no-auth-warning "$@"; }

# Processes of the current deployment; Redis and the MONITOR readers apart (they outlive it).
source scripts/bench-processes.sh  # stop_pids; $pids and stop_all for the deployment
source scripts/two-host-lan.sh     # two_host_lan, remove_two_host_lan: hosts p ($SUBNET.1) and d ($SUBNET.2)
host_a="$subnet.$(host_number p)" host_b="$subnet.$(host_number d)"  # A holds the prefills, B the decodes
infra_pids=()
cleanup() {
    stop_all
    if ((${#infra_pids[@]})); then stop_pids "${infra_pids[@]}"; fi
    infra_pids=()
    remove_two_host_lan "$name"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

two_host_lan "$name" "$subnet" redis

redis-server --bind "$redis_host" --port "$redis_port" --requirepass "$redis_password" \
    --save '' --appendonly no --dir /tmp >"$out_dir/redis.log" 2>&1 &
infra_pids+=($!)
for _ in $(seq 100); do [[ $(rcli ping 2>/dev/null) == PONG ]] && break; sleep 0.1; done
[[ $(rcli ping 2>/dev/null) == PONG ]] || { echo "bench-scheduler-fleet: redis-server did not start; $out_dir/redis.log" >&2; exit 1; }

urls=()  # API base URLs of the current deployment, in round-robin order
# instance LOG SIDE ROLE BASE_PORT TOPIC THREADS: one api-server on host SIDE (p: A, d: B).
instance() {
    local log="$1" side="$2" role="$3" port="$4" topic="$5" instance_threads="$6" address extra=()
    address="$subnet.$(host_number "$side")"
    [[ $role == decode ]] && extra=(--pd-comm-port "$((port + 2))" --cache-queue-port "$((port + 3))")
    ip netns exec "$name-$side" "$bin/api-server" --model "$model" --host "$address" --port "$port" \
        --engine-worker-queue-port "$((port + 1))" --threads "$instance_threads" \
        --splitwise-role "$role" --cache-transfer-protocol tcp --kv-transfer-timeout 600 "${extra[@]}" \
        --scheduler-name splitwise --scheduler-host "$redis_host" --scheduler-port "$redis_port" \
        --scheduler-password "$redis_password" --scheduler-topic "$topic" \
        >"$out_dir/$log.log" 2>&1 &
    pids+=($!)
    urls+=("http://$address:$port")
}
# deploy RUN KIND [PREFILLS DECODES]: KIND pd (P's on A, D's on B) or mixed (one on each host).
deploy() {
    local run="$1" kind="$2" prefills="${3:-2}" decodes="${4:-2}" i url healthy
    urls=()
    rcli flushall >/dev/null
    if [[ $kind == pd ]]; then
        for ((i = 1; i <= prefills; i++)); do instance "$run-p$i" p prefill $((8000 + 10 * i)) "$run" "$threads"; done
        for ((i = 1; i <= decodes; i++)); do instance "$run-d$i" d decode $((8000 + 10 * i)) "$run" "$threads"; done
    else
        instance "$run-m1" p mixed 8010 "$run" $((2 * threads))
        instance "$run-m2" d mixed 8010 "$run" $((2 * threads))
    fi
    for url in "${urls[@]}"; do
        for _ in $(seq 600); do
            curl -sf -o /dev/null --max-time 2 "$url/health" && break
            for pid in "${pids[@]}"; do
                kill -0 "$pid" 2>/dev/null || { echo "bench-scheduler-fleet: an api-server exited; logs in $out_dir" >&2; exit 1; }
            done
            sleep 0.2
        done
        curl -sf -o /dev/null --max-time 2 "$url/health" || { echo "bench-scheduler-fleet: $url did not become healthy; logs in $out_dir" >&2; exit 1; }
    done
    for _ in $(seq 300); do
        (($(rcli hlen "$run.cluster") >= ${#urls[@]})) && break
        sleep 0.1
    done
    # A warm-up request through every instance's port (checks each placement path end to end).
    for url in "${urls[@]}"; do
        curl -sf --max-time 120 -H 'Content-Type: application/json' \
            -d '{"prompt": "The capital of France is", "max_tokens": 4, "temperature": 0}' \
            "$url/v1/completions" >/dev/null \
            || { echo "bench-scheduler-fleet: the warm-up request through $url failed; logs in $out_dir" >&2; exit 1; }
    done
}
# clients RUN TOTAL_PROMPTS TOTAL_CONCURRENCY SEED: one bench client per instance, together.
clients() {
    local run="$1" total="$2" total_concurrency="$3" seed="$4" n=${#urls[@]} i client_pids=() status=0
    for ((i = 0; i < n; i++)); do
        "$bin/tandem" bench serve --base-url "${urls[$i]}" --tokenizer-model "$model" \
            --random-input-len "$input_len" --random-output-len "$output_len" --ignore-eos \
            --seed "$((seed * 100 + i))" --num-prompts "$((total / n))" --max-concurrency "$((total_concurrency / n))" \
            --save-result "$out_dir/$run-client$i.json" >"$out_dir/$run-client$i-bench.txt" 2>&1 &
        client_pids+=($!)
    done
    for pid in "${client_pids[@]}"; do wait "$pid" || status=$?; done
    ((status == 0)) || { echo "bench-scheduler-fleet: a bench client of $run failed ($status); see $out_dir/$run-client*-bench.txt" >&2; exit 1; }
}
load() { cut -d' ' -f1-3 /proc/loadavg; }

for round in $(seq "$rounds"); do
    order="pd mixed"
    ((round % 2)) || order="mixed pd"
    for kind in $order; do
        run="$kind-$round"
        deploy "$run" "$kind"
        echo "bench-scheduler-fleet: round $round, $kind (load average $(load))" >&2
        echo "$run $(load)" >>"$out_dir/load.txt"
        clients "$run" "$prompts" "$concurrency" "$round"
        stop_all
    done
done

commands() { rcli INFO stats | tr -d '\r' | sed -n 's/^total_commands_processed://p'; }
monitor() { # log: MONITOR into $out_dir/log until stopped (redis-cli itself in the background, not a subshell)
    redis-cli -h "$redis_host" -p "$redis_port" -a "$redis_password" --no-auth-warning monitor >"$out_dir/$1" 2>/dev/null &
    infra_pids+=($!)
    monitor_pid=$!
}
stop_monitor() {
    stop_pids "$monitor_pid"
    local kept=() pid
    for pid in "${infra_pids[@]}"; do [[ $pid == "$monitor_pid" ]] || kept+=("$pid"); done
    infra_pids=("${kept[@]}")
}
# 2 nodes and 4 at the same total concurrency, and 4 at twice it (the same load per node: result
# writes are batched per sync of the writer, so batching depends on each node's load).
for config in 2:8 4:8 4:16; do
    nodes=${config%:*} count_concurrency=${config#*:}
    run="count$nodes-c$count_concurrency"
    deploy "$run" pd $((nodes / 2)) $((nodes / 2))
    echo "bench-scheduler-fleet: Redis commands, $nodes nodes, concurrency $count_concurrency (load average $(load))" >&2
    monitor "$run-busy-monitor.txt"
    start=$(commands); t0=$(date +%s.%N)
    clients "$run" "$count_prompts" "$count_concurrency" 0
    t1=$(date +%s.%N); busy=$(( $(commands) - start ))
    stop_monitor
    monitor "$run-idle-monitor.txt"
    start=$(commands); sleep "$(python3 -c "print($t1 - $t0)")"; idle=$(( $(commands) - start ))
    stop_monitor
    echo "$nodes $count_concurrency $busy $idle $count_prompts $(python3 -c "print($t1 - $t0)")" >>"$out_dir/commands.txt"
    stop_all
done

python3 - "$out_dir" "$rounds" "$host_a" "$host_b" <<'PY'
import collections, json, glob, re, statistics, sys
d, rounds, host_a, host_b = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]

def percentile(values, p):
    values = sorted(values)
    k = (len(values) - 1) * p / 100
    lo = int(k); hi = min(lo + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)

def fleet_run(run):
    clients = [json.load(open(f)) for f in sorted(glob.glob(f"{d}/{run}-client*.json"))]
    failed = sum(c["failed"] for c in clients)
    if failed:
        errors = [e for c in clients for e in c["errors"] if e][:3]
        sys.exit(f"bench-scheduler-fleet: {run}: {failed} requests failed: {errors}")
    ttfts = [t * 1000 for c in clients for t in c["ttfts"]]
    return {"output_throughput": sum(c["total_output_tokens"] for c in clients) / max(c["duration"] for c in clients),
            "ttft_p50": percentile(ttfts, 50), "ttft_p99": percentile(ttfts, 99),
            "tpot_p50": statistics.mean(c["median_tpot_ms"] for c in clients),
            "requests": sum(c["completed"] for c in clients)}

load = dict(line.split(" ", 1) for line in open(f"{d}/load.txt").read().splitlines())
keys = [("output_throughput", "output tok/s", "{:.1f}"), ("ttft_p50", "TTFT p50 ms", "{:.1f}"),
        ("ttft_p99", "TTFT p99 ms", "{:.1f}"), ("tpot_p50", "TPOT p50 ms", "{:.2f}")]
print("| run | fleet | " + " | ".join(title for _, title, _ in keys) + " | requests | load average (1, 5, 15 min) |")
print("|---|---|" + "---:|" * len(keys) + "---:|---|")
runs = {"pd": [], "mixed": []}
label = {"pd": "2 P + 2 D (P's on A, D's on B, tcp)", "mixed": "2 mixed (one on A, one on B)"}
for r in range(1, rounds + 1):
    for kind in ("pd", "mixed"):
        m = fleet_run(f"{kind}-{r}")
        runs[kind].append(m)
        print(f"| {kind}-{r} | {label[kind]} | " + " | ".join(fmt.format(m[k]) for k, _, fmt in keys)
              + f" | {m['requests']} | {load[f'{kind}-{r}'].strip()} |")
med = {kind: {k: statistics.median(m[k] for m in ms) for k, _, _ in keys} for kind, ms in runs.items()}
for kind in ("pd", "mixed"):
    print(f"| median | {label[kind]} | " + " | ".join(fmt.format(med[kind][k]) for k, _, fmt in keys) + " | | |")
print("| PD / mixed | | " + " | ".join(f"{med['pd'][k] / med['mixed'][k]:.2f}x" for k, _, _ in keys) + " | | |")

line = re.compile(r'^[\d.]+ \[\d+ ([\d.]+):\d+\] "(\w+)"')
SYNC = {"HSET", "HGETALL", "LLEN"}
def monitor_counts(path):
    counts = collections.Counter()
    for text in open(path, errors="replace"):
        m = line.match(text)
        if not m:
            continue
        host = {host_a: "prefill", host_b: "decode"}.get(m.group(1))
        if host:  # this script's own INFO/MONITOR come from the Redis host: not counted
            counts[(host, m.group(2).upper())] += 1
    return counts

print()
print("| nodes | concurrency | commands/request (total_commands_processed, less idle) | request-path commands/request: prefill nodes | decode nodes | all | request-path commands by name (per request) | sync commands/s per node: busy | idle |")
print("|---:|---:|---:|---:|---:|---:|---|---:|---:|")
for row in open(f"{d}/commands.txt").read().splitlines():
    nodes, conc, busy, idle, requests, seconds = row.split()
    nodes, busy, idle, requests, seconds = int(nodes), int(busy), int(idle), int(requests), float(seconds)
    b = monitor_counts(f"{d}/count{nodes}-c{conc}-busy-monitor.txt")
    i = monitor_counts(f"{d}/count{nodes}-c{conc}-idle-monitor.txt")
    per_kind, per_name = collections.Counter(), collections.Counter()
    for key in set(b) | set(i):
        if key[1] in SYNC:
            continue
        extra = b[key] - i[key]
        per_kind[key[0]] += extra
        per_name[key[1]] += extra
    sync_rate = {w: sum(v for k, v in c.items() if k[1] in SYNC) / seconds / nodes for w, c in (("busy", b), ("idle", i))}
    names = ", ".join(f"{n} {v / requests:.2f}" for n, v in sorted(per_name.items()) if abs(v / requests) >= 0.01)
    print(f"| {nodes} | {conc} | {(busy - idle) / requests:.1f} | {per_kind['prefill'] / requests:.2f} | {per_kind['decode'] / requests:.2f} "
          f"| {sum(per_kind.values()) / requests:.2f} | {names} | {sync_rate['busy']:.0f} | {sync_rate['idle']:.0f} |")
PY
