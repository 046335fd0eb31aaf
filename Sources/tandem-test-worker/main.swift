// tandem-test-worker: a stand-in for `api-server` in the supervisor's tests. It takes the
// worker flags the supervisor passes, binds every port it is given, serves GET /health
// (503 while "loading", then 200) and GET /metrics, and misbehaves on request: slow start,
// crash, exit with a given status, flood its log, or hang.
import Glibc
import SystemCalls

// A parent may hand down blocked signals (Foundation's Process does, from a thread that
// blocks them); a worker that cannot receive SIGTERM would never stop cleanly.
var noSignals = sigset_t()
sigemptyset(&noSignals)
sigprocmask(SIG_SETMASK, &noSignals, nil)
signal(SIGPIPE, SIG_IGN)
signal(SIGTERM, exitZeroOnSignal)
signal(SIGINT, exitZeroOnSignal)

if CommandLine.arguments.dropFirst().contains(where: { $0 == "--help" || $0 == "-h" }) {
    print(WorkerOptions.usage, terminator: "")
    exit(0)
}

let options: WorkerOptions
do {
    options = try WorkerOptions.parse(Array(CommandLine.arguments.dropFirst()))
} catch {
    writeError("tandem-test-worker: \(error.message)")
    exit(78)
}

let environment = { (name: String) -> String? in getenv(name).map { String(cString: $0) } }
let rank = environment("TANDEM_RANK").flatMap { Int($0) }
let faults = options.faultsApply(toRank: rank)

if faults, let code = options.exitCode {
    writeError("tandem-test-worker: rank \(rank.map(String.init) ?? "-") exiting with status \(code) as told (--exit-code)")
    exit(code)
}

var portsToBind: [(kind: String, port: Int)] = []
if let port = options.apiPort { portsToBind.append(("api", port)) }
if let port = options.metricsPort { portsToBind.append(("metrics", port)) }
if let port = options.engineWorkerQueuePort { portsToBind.append(("engine-worker-queue", port)) }
if let port = options.cacheQueuePort { portsToBind.append(("cache-queue", port)) }
if let port = options.pdCommPort { portsToBind.append(("pd-comm", port)) }
for port in options.rdmaCommPorts { portsToBind.append(("rdma-comm", port)) }

var listeners: [HTTPListener] = []
for (kind, port) in portsToBind {
    do {
        listeners.append(try HTTPListener.bind(kind: kind, host: options.host, port: port))
    } catch {
        writeError("tandem-test-worker: \(error.message)")
        exit(1)
    }
}

let state = WorkerState(startupDelay: faults ? options.startupDelay : 0, rank: rank)
for listener in listeners { listener.serve(state: state) }

let portText = portsToBind.map { "\($0.kind)=\($0.port)" }.joined(separator: " ")
writeLine("tandem-test-worker started rank=\(rank.map(String.init) ?? "-") pid=\(getpid()) "
    + "devices=\(environment("CUDA_VISIBLE_DEVICES") ?? "-") ports: \(portText.isEmpty ? "none" : portText)")

if faults, let delay = options.crashAfter {
    startThread {
        sleepSeconds(delay)
        writeError("tandem-test-worker: rank \(rank.map(String.init) ?? "-") crashing as told (--crash-after)")
        _exit(1)
    }
}
if faults, let delay = options.hangAfter {
    startThread {
        sleepSeconds(delay)
        writeError("tandem-test-worker: rank \(rank.map(String.init) ?? "-") hanging as told (--hang-after)")
        state.hung.store(true, ordering: .relaxed)
    }
}
if faults, options.floodLog {
    startThread {
        let line = Array("tandem-test-worker flood: the quick brown fox jumps over the lazy dog 0123456789\n".utf8)
        let block = Array(repeating: line, count: 64).flatMap { $0 }
        while (try? writeAll(STDOUT_FILENO, block)) != nil {}
        // stdout is gone (SIGPIPE is ignored so sockets cannot kill us): die like a real
        // process would on a broken log pipe.
        writeError("tandem-test-worker: stdout closed while flooding")
        _exit(1)
    }
}
sleepForever()
