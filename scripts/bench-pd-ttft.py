#!/usr/bin/env python3
"""TTFT of prefill-decode disaggregation against one mixed instance, at concurrency 1.

Starts three api-server processes on the default model: a mixed instance M, a prefill
instance P and a decode instance D, and plays the router itself: for PD it sends P's leg and
D's leg at once (as the contract says) and times the first token on D's stream; for mixed it
times the first token of the same streamed request on M. Requests alternate between M and
PD so both see the same machine load. Prompts are random token ids (no prefix-cache hits).

  scripts/bench-pd-ttft.py [--prompt-tokens 256,2048] [--repetitions 5] [--protocol ipc]
"""
import argparse, http.client, json, os, random, socket, subprocess, sys, tempfile, threading, time

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

def start(binary, args, port):
    log = tempfile.NamedTemporaryFile(prefix="pd-ttft-", suffix=".log", delete=False)
    proc = subprocess.Popen([binary, "--port", str(port)] + args, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/health")
            if c.getresponse().status == 200:
                return proc
        except OSError:
            pass
        if proc.poll() is not None:
            sys.exit(f"api-server exited: see {log.name}")
        time.sleep(0.2)
    sys.exit(f"api-server did not become healthy: see {log.name}")

def stream_ttft(port, body, start_time):
    """Sends a streamed completion; returns seconds from start_time to the first token."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    c.request("POST", "/v1/completions", json.dumps(body), {"Content-Type": "application/json"})
    r = c.getresponse()
    if r.status != 200:
        raise RuntimeError(f"{r.status} {r.read()[:300]}")
    ttft = None
    for line in r:
        if line.startswith(b"data: ") and line.strip() != b"data: [DONE]":
            event = json.loads(line[6:])
            if "error" in event:
                raise RuntimeError(str(event))
            if ttft is None and any(ch.get("text") for ch in event.get("choices", [])):
                ttft = time.perf_counter() - start_time
    return ttft

def post(port, body, out):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    c.request("POST", "/v1/completions", json.dumps(body), {"Content-Type": "application/json"})
    r = c.getresponse()
    out.append((r.status, r.read()))

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=".build/release/api-server")
    ap.add_argument("--prompt-tokens", default="256,2048")
    ap.add_argument("--repetitions", type=int, default=5)
    ap.add_argument("--protocol", default="ipc", choices=["ipc", "tcp"])
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--max-tokens", type=int, default=4)
    a = ap.parse_args()
    common = ["--threads", str(a.threads), "--num-gpu-blocks-override", "512"]
    m_port, p_port, d_port, pd_comm, cache_queue = (free_port() for _ in range(5))
    procs = [start(a.binary, common, m_port),
             start(a.binary, common + ["--splitwise-role", "prefill"], p_port),
             start(a.binary, common + ["--splitwise-role", "decode", "--pd-comm-port", str(pd_comm),
                                       "--cache-queue-port", str(cache_queue)], d_port)]
    try:
        rng = random.Random(7)
        print(f"| prompt tokens | mixed TTFT ms (median) | PD {a.protocol} TTFT ms (median) | PD / mixed |")
        print("| ---: | ---: | ---: | ---: |")
        for n in [int(x) for x in a.prompt_tokens.split(",")]:
            mixed, pd = [], []
            for rep in range(a.repetitions + 1):  # the first round warms up
                prompt = [rng.randrange(300, 20000) for _ in range(n)]
                body = {"prompt": prompt, "max_tokens": a.max_tokens, "temperature": 0, "stream": True}
                t = stream_ttft(m_port, body, time.perf_counter())
                if rep: mixed.append(t)
                prompt = [rng.randrange(300, 20000) for _ in range(n)]
                rid = f"ttft-{n}-{rep}"
                info = {"request_id": rid, "transfer_protocol": a.protocol,
                        "prefill": {"host": "127.0.0.1", "port": p_port},
                        "decode": {"host": "127.0.0.1", "port": d_port, "pd_comm_port": pd_comm, "cache_queue_port": cache_queue}}
                pbody = dict(body, prompt=prompt, stream=False, disaggregate_info=dict(info, role="prefill"))
                dbody = dict(body, prompt=prompt, disaggregate_info=dict(info, role="decode"))
                results = []
                start_time = time.perf_counter()
                leg = threading.Thread(target=post, args=(p_port, pbody, results))
                leg.start()
                t = stream_ttft(d_port, dbody, start_time)
                leg.join()
                if results[0][0] != 200:
                    raise RuntimeError(f"prefill leg: {results[0]}")
                if rep: pd.append(t)
            med = lambda xs: sorted(xs)[len(xs) // 2]
            print(f"| {n} | {med(mixed) * 1000:.1f} | {med(pd) * 1000:.1f} | {med(pd) / med(mixed):.3f} |")
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait()

if __name__ == "__main__":
    main()
