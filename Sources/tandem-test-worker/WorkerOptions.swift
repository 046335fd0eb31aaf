import Glibc

/// The command line of the test worker: the flags the supervisor passes to a real
/// `api-server`, plus fault controls that make it misbehave on purpose.
struct WorkerOptions: Sendable {
    var host = "0.0.0.0"
    var apiPort: Int?
    var metricsPort: Int?
    var engineWorkerQueuePort: Int?
    var cacheQueuePort: Int?
    var pdCommPort: Int?
    var rdmaCommPorts: [Int] = []
    /// Rank bookkeeping flags a real api-server takes; recorded in the startup line only.
    var localDataParallelID: Int?
    var dataParallelSize: Int?
    var tensorParallelSize: Int?
    /// `--router`, `--register-token`: accepted as api-server takes them; this worker does not register.
    var router: String?

    var startupDelay: Double = 0
    var crashAfter: Double?
    var exitCode: Int32?
    var floodLog = false
    var hangAfter: Double?
    var faultRank: Int?

    /// Fault flags apply to every rank unless `--fault-rank` names one.
    func faultsApply(toRank rank: Int?) -> Bool {
        guard let faultRank else { return true }
        return rank == faultRank
    }
}

struct UsageError: Error {
    let message: String
}

extension WorkerOptions {
    static let usage = """
        USAGE: tandem-test-worker [--port N] [<flags>]

        A stand-in for api-server in the supervisor's tests: binds every port it is given,
        serves GET /health and GET /metrics, and misbehaves on request. Exit 78 on a bad flag.

        WORKER FLAGS (as multi-api-server passes them):
          --host ADDRESS                  Address to bind (default 0.0.0.0).
          --port N                        API port: GET /health (503 while starting, then 200).
          --metrics-port N                GET /metrics (Prometheus text).
          --engine-worker-queue-port N    Bound and held.
          --cache-queue-port N            Bound and held.
          --pd-comm-port N                Bound and held.
          --rdma-comm-ports A,B,...       Bound and held.
          --local-data-parallel-id I      Recorded in the startup line.
          --data-parallel-size N          Recorded in the startup line.
          --tensor-parallel-size N        Recorded in the startup line.
          --router URL                    Accepted; this worker does not register (the supervisor deregisters).
          --register-token TOKEN          Accepted and ignored.

        FAULTS (apply to every rank unless --fault-rank names one, via env TANDEM_RANK):
          --startup-delay SECONDS         Answer /health with 503 this long after start.
          --crash-after SECONDS           Exit with status 1 after this long.
          --exit-code N                   Exit at once with status N (78: bad configuration).
          --flood-log                     Write to stdout as fast as possible while serving.
          --hang-after SECONDS            Stop answering any request after this long.
          --fault-rank R                  Apply the faults only where TANDEM_RANK is R.
          -h, --help                      Show this text.

        """

    static func parse(_ arguments: [String]) throws(UsageError) -> WorkerOptions {
        var options = WorkerOptions()
        var index = 0
        while index < arguments.count {
            var flag = arguments[index]
            var inlineValue: String?
            if flag.hasPrefix("--"), let equals = flag.firstIndex(of: "=") {
                inlineValue = String(flag[flag.index(after: equals)...])
                flag = String(flag[..<equals])
            }
            index += 1
            func value() throws(UsageError) -> String {
                if let inlineValue { return inlineValue }
                guard index < arguments.count else { throw UsageError(message: "\(flag) needs a value") }
                defer { index += 1 }
                return arguments[index]
            }
            func port() throws(UsageError) -> Int { try parsePort(try value(), flag: flag) }
            func seconds() throws(UsageError) -> Double {
                let text = try value()
                guard let seconds = Double(text), seconds >= 0, seconds.isFinite else {
                    throw UsageError(message: "\(flag) needs a number of seconds >= 0, got '\(text)'")
                }
                return seconds
            }
            func integer() throws(UsageError) -> Int {
                let text = try value()
                guard let number = Int(text) else { throw UsageError(message: "\(flag) needs an integer, got '\(text)'") }
                return number
            }
            switch flag {
            case "--host": options.host = try value()
            case "--port": options.apiPort = try port()
            case "--metrics-port": options.metricsPort = try port()
            case "--engine-worker-queue-port": options.engineWorkerQueuePort = try port()
            case "--cache-queue-port": options.cacheQueuePort = try port()
            case "--pd-comm-port": options.pdCommPort = try port()
            case "--rdma-comm-ports":
                let text = try value()
                var ports: [Int] = []
                for item in text.split(separator: ",", omittingEmptySubsequences: false) {
                    ports.append(try parsePort(String(item), flag: flag))
                }
                options.rdmaCommPorts = ports
            case "--local-data-parallel-id": options.localDataParallelID = try integer()
            case "--data-parallel-size": options.dataParallelSize = try integer()
            case "--tensor-parallel-size": options.tensorParallelSize = try integer()
            case "--router": options.router = try value()
            case "--register-token": _ = try value()
            case "--startup-delay": options.startupDelay = try seconds()
            case "--crash-after": options.crashAfter = try seconds()
            case "--hang-after": options.hangAfter = try seconds()
            case "--exit-code":
                let code = try integer()
                guard (0...255).contains(code) else { throw UsageError(message: "--exit-code must be 0...255, got \(code)") }
                options.exitCode = Int32(code)
            case "--fault-rank": options.faultRank = try integer()
            case "--flood-log":
                if inlineValue != nil { throw UsageError(message: "--flood-log takes no value") }
                options.floodLog = true
            default:
                throw UsageError(message: "unknown flag '\(flag)'")
            }
        }
        return options
    }
}

private func parsePort(_ text: String, flag: String) throws(UsageError) -> Int {
    guard let port = Int(text), (1...65535).contains(port) else {
        throw UsageError(message: "\(flag) needs a port 1...65535, got '\(text)'")
    }
    return port
}
