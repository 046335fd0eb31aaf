/// The worker flags (`--args …`) taken apart: the per-rank port lists the supervisor splits,
/// the parallel sizes it checks, and everything else, passed to every worker as given.
struct WorkerFlags: Equatable {
    var engineWorkerQueuePorts: String?
    var cacheQueuePorts: String?
    var pdCommPorts: String?
    var rdmaCommPorts: String?
    var dataParallelSize: Int?
    var tensorParallelSize: Int?
    /// `--router`, `--register-token` and `--host`, kept in `passthrough` too: the supervisor
    /// deregisters ranks from that router under the URL they register with.
    var router: String?
    var registerToken: String?
    var host: String?
    /// Flags kept as given, in order (including the parallel sizes).
    var passthrough: [String] = []

    /// Flags the supervisor sets for each rank itself; giving them is a mistake.
    static let supervisorOwned: [String: String] = [
        "--port": "give the API ports with --ports",
        "--metrics-port": "give the metrics ports with --metrics-ports",
        "--local-data-parallel-id": "the supervisor numbers the ranks itself",
    ]

    static func parse(_ flags: [String]) throws(PlanningError) -> WorkerFlags {
        var result = WorkerFlags()
        var index = 0
        while index < flags.count {
            let token = flags[index]
            var name = token
            var inlineValue: String?
            if token.hasPrefix("--"), let equals = token.firstIndex(of: "=") {
                name = String(token[..<equals])
                inlineValue = String(token[token.index(after: equals)...])
            }
            func value() throws(PlanningError) -> String {
                if let inlineValue { index += 1; return inlineValue }
                guard index + 1 < flags.count else { throw PlanningError("worker flag \(name) needs a value") }
                index += 2
                return flags[index - 1]
            }
            func kept() throws(PlanningError) -> String {
                let start = index
                let text = try value()
                result.passthrough += flags[start..<index]
                return text
            }
            func size() throws(PlanningError) -> Int {
                let start = index
                let text = try value()
                guard let number = Int(text), number >= 1 else {
                    throw PlanningError("worker flag \(name) needs a whole number >= 1, got '\(text)'")
                }
                result.passthrough += flags[start..<index]
                return number
            }
            if let advice = supervisorOwned[name] {
                throw PlanningError("worker flag \(name) is set per rank by the supervisor: \(advice)")
            }
            switch name {
            case "--engine-worker-queue-port": result.engineWorkerQueuePorts = try value()
            case "--cache-queue-port": result.cacheQueuePorts = try value()
            case "--pd-comm-port": result.pdCommPorts = try value()
            case "--rdma-comm-ports": result.rdmaCommPorts = try value()
            case "--data-parallel-size": result.dataParallelSize = try size()
            case "--tensor-parallel-size": result.tensorParallelSize = try size()
            case "--router": result.router = try kept()
            case "--register-token": result.registerToken = try kept()
            case "--host": result.host = try kept()
            default:
                result.passthrough.append(token)
                index += 1
            }
        }
        return result
    }
}
