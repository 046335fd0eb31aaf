#!/usr/bin/env python3
"""multi-api-server versus supervisord over the same tandem-test-worker.

(a) a rank's SIGKILL -> that rank's GET /health answers 200 again
(b) a rank's SIGSTOP -> the supervisor notices (kills and replaces it)
(c) start of a fleet of 8 ranks -> READY=1 (multi-api-server) / every /health 200 (supervisord),
    versus one worker's own start (exec -> /health 200).
Prints a Markdown report on stdout. Usage: bench.py BUILD_DIR [REPS]
"""
import json, os, signal, socket, statistics, subprocess, sys, tempfile, time, urllib.request

BUILD = sys.argv[1]
REPS = int(sys.argv[2]) if len(sys.argv) > 2 else 10
SUPERVISOR = os.path.join(BUILD, "multi-api-server")
WORKER = os.path.join(BUILD, "tandem-test-worker")
POLL = 0.005

# The supervisor's health and restart settings for this benchmark (see BENCHMARKS.md, "Supervisor").
SUPERVISOR_FLAGS = ["--health-interval", "0.5", "--health-timeout", "0.5", "--health-failure-threshold", "3",
                    "--startup-grace", "10", "--restart-backoff", "0.1", "--stable-period", "1", "--crash-loop-restarts", "1000",
                    "--shutdown-timeout", "5"]


def free_ports(n):
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s); ports.append(s.getsockname()[1])
    for s in socks: s.close()
    return ports


def healthy(port, timeout=0.5):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=timeout) as r:
            return r.status == 200
    except Exception:
        return False


def wait_until(cond, timeout, step=POLL):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond(): return True
        time.sleep(step)
    return cond()


def alive(pid):
    try:
        with open(f"/proc/{pid}/status") as f: return "State:\tZ" not in f.read()
    except OSError:  # gone (ENOENT), or exiting while read (ESRCH)
        return False


def get_json(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
        return json.load(r)


class Tandem:
    def __init__(self, ranks, notify_path=None):
        self.dir = tempfile.mkdtemp(prefix="bench-tandem-")
        self.ranks = ranks
        ports = free_ports(ranks + 1)
        self.control, self.ports = ports[0], ports[1:]
        env = dict(os.environ)
        env.pop("NOTIFY_SOCKET", None)
        if notify_path: env["NOTIFY_SOCKET"] = notify_path
        if ranks > os.cpu_count():
            # CPU mode gives every rank a CPU of its own; with more ranks than CPUs, name one
            # (fake) device per rank instead: the test worker never touches a GPU.
            env["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, range(ranks)))
        self.proc = subprocess.Popen(
            [SUPERVISOR, "--num-servers", str(ranks), "--ports", ",".join(map(str, self.ports)),
             "--control-port", str(self.control), "--log-dir", self.dir, "--worker-binary", WORKER, "--numa-bind", "none"]
            + SUPERVISOR_FLAGS,
            env=env, stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.dir, "supervisor.log"), "w"))

    def rank(self, i):
        return next(r for r in get_json(self.control, "/ranks") if r["rank"] == i)

    def all_ready(self):
        try: return all(r["state"] == "ready" for r in get_json(self.control, "/ranks"))
        except Exception: return False

    def pid(self, i): return self.rank(i)["pid"]

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)


SUPERVISORD_CONF = """[supervisord]
nodaemon=true
logfile={dir}/supervisord.log
pidfile={dir}/supervisord.pid
childlogdir={dir}
[unix_http_server]
file={dir}/supervisor.sock
[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
[supervisorctl]
serverurl=unix://{dir}/supervisor.sock
{programs}"""

PROGRAM = """[program:rank{i}]
command={worker} --port {port}
environment=TANDEM_RANK="{i}"
startsecs=1
startretries=1000
autorestart=true
stopsignal=TERM
stopwaitsecs=5
killasgroup=true
stopasgroup=true
redirect_stderr=true
stdout_logfile={dir}/rank{i}.log
"""


class Supervisord:
    def __init__(self, ranks):
        self.dir = tempfile.mkdtemp(prefix="bench-supervisord-")
        self.ports = free_ports(ranks)
        programs = "".join(PROGRAM.format(i=i, worker=WORKER, port=p, dir=self.dir) for i, p in enumerate(self.ports))
        self.conf = os.path.join(self.dir, "supervisord.conf")
        with open(self.conf, "w") as f:
            f.write(SUPERVISORD_CONF.format(dir=self.dir, programs=programs))
        self.proc = subprocess.Popen(["supervisord", "-c", self.conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def pid(self, i):
        out = subprocess.run(["supervisorctl", "-c", self.conf, "pid", f"rank{i}"], capture_output=True, text=True).stdout
        return int(out.strip()) if out.strip().isdigit() else 0

    def state(self, i):
        return subprocess.run(["supervisorctl", "-c", self.conf, "status", f"rank{i}"], capture_output=True, text=True).stdout.split()[1]

    def all_healthy(self): return all(healthy(p) for p in self.ports)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)


def kill_to_healthy(fleet, rank, port, settle):
    """SIGKILL the rank's worker, time until its port answers /health 200 from a new pid."""
    samples = []
    for _ in range(REPS):
        pid = fleet.pid(rank)
        t0 = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        assert wait_until(lambda: not alive(pid), 5)
        assert wait_until(lambda: healthy(port, 0.2), 30), "rank did not come back"
        samples.append(time.monotonic() - t0)
        time.sleep(settle)
    return samples


def stop_to_detection(fleet, rank, detect_timeout):
    samples = []
    for _ in range(max(3, REPS // 2)):
        pid = fleet.pid(rank)
        t0 = time.monotonic()
        os.kill(pid, signal.SIGSTOP)
        if not wait_until(lambda: not alive(pid), detect_timeout, 0.01):
            os.kill(pid, signal.SIGCONT)
            return None
        samples.append(time.monotonic() - t0)
        wait_until(lambda: healthy(fleet.ports[rank]), 30)
        time.sleep(1.5)
    return samples


def worker_start_times():
    samples = []
    for _ in range(REPS):
        port = free_ports(1)[0]
        t0 = time.monotonic()
        p = subprocess.Popen([WORKER, "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert wait_until(lambda: healthy(port, 0.2), 30)
        samples.append(time.monotonic() - t0)
        p.terminate(); p.wait()
    return samples


def tandem_fleet_ready_times(ranks):
    samples = []
    for _ in range(max(3, REPS // 2)):
        path = os.path.join(tempfile.mkdtemp(prefix="bench-notify-"), "notify.sock")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); sock.bind(path); sock.settimeout(30)
        t0 = time.monotonic()
        fleet = Tandem(ranks, notify_path=path)
        try:
            while True:
                if b"READY=1" in sock.recv(4096).split(b"\n"):
                    samples.append(time.monotonic() - t0); break
        finally:
            fleet.stop(); sock.close()
    return samples


def supervisord_fleet_ready_times(ranks):
    samples = []
    for _ in range(max(3, REPS // 2)):
        t0 = time.monotonic()
        fleet = Supervisord(ranks)
        try:
            assert wait_until(fleet.all_healthy, 60)
            samples.append(time.monotonic() - t0)
        finally:
            fleet.stop()
    return samples


def fmt(samples):
    return "not detected" if samples is None else f"{statistics.median(samples):.3f} s"


def main():
    results = {}
    tandem = Tandem(2)
    try:
        assert wait_until(tandem.all_ready, 60), "multi-api-server fleet did not become ready"
        results["kill_tandem"] = kill_to_healthy(tandem, 1, tandem.ports[1], settle=1.5)
        results["stop_tandem"] = stop_to_detection(tandem, 1, 30)
    finally:
        tandem.stop()
    sd = Supervisord(2)
    try:
        assert wait_until(sd.all_healthy, 60), "supervisord fleet did not become healthy"
        time.sleep(1.5)
        results["kill_supervisord"] = kill_to_healthy(sd, 1, sd.ports[1], settle=1.5)
        pid = sd.pid(1)
        t0 = time.monotonic()
        os.kill(pid, signal.SIGSTOP)
        detected = wait_until(lambda: not alive(pid) or sd.state(1) != "RUNNING", 30, 0.2)
        results["stop_supervisord"] = [time.monotonic() - t0] if detected else None
        results["stop_supervisord_state"] = sd.state(1)
        os.kill(pid, signal.SIGCONT)
    finally:
        sd.stop()
    results["worker_start"] = worker_start_times()
    results["ready8_tandem"] = tandem_fleet_ready_times(8)
    results["ready8_supervisord"] = supervisord_fleet_ready_times(8)

    med = lambda k: statistics.median(results[k])
    print("| measurement | multi-api-server | supervisord | ratio (supervisord / ours) |")
    print("|---|---|---|---|")
    print(f"| (a) SIGKILL of a rank -> its /health 200 again (median of {len(results['kill_tandem'])}) | "
          f"{fmt(results['kill_tandem'])} | {fmt(results['kill_supervisord'])} | {med('kill_supervisord') / med('kill_tandem'):.1f}x |")
    sd_stop = ("never (still " + results["stop_supervisord_state"] + " after 30 s)") if results["stop_supervisord"] is None else fmt(results["stop_supervisord"])
    print(f"| (b) SIGSTOP of a rank -> detected, killed (median of {len(results['stop_tandem'] or [])}) | "
          f"{fmt(results['stop_tandem'])} | {sd_stop} | - |")
    print(f"| (c) fleet of 8 ranks: start -> READY=1 / all /health 200 (median of {len(results['ready8_tandem'])}) | "
          f"{fmt(results['ready8_tandem'])} | {fmt(results['ready8_supervisord'])} | {med('ready8_supervisord') / med('ready8_tandem'):.1f}x |")
    print(f"| one worker's own start: exec -> /health 200 (median of {len(results['worker_start'])}) | "
          f"{fmt(results['worker_start'])} | | |")
    print()
    print(f"(c) minus one worker's own start: multi-api-server {med('ready8_tandem') - med('worker_start'):.3f} s, "
          f"supervisord {med('ready8_supervisord') - med('worker_start'):.3f} s")
    print()
    print("Raw samples (s): " + json.dumps({k: ([round(x, 3) for x in v] if isinstance(v, list) else v) for k, v in results.items()}))


if __name__ == "__main__":
    main()
