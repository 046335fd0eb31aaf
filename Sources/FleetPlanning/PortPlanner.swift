/// The ports the user asked for, as comma lists straight from the command line
/// (nil: choose free ports).
struct PortRequest {
    var api: String?
    var metrics: String?
    var engineWorkerQueue: String?
    var cacheQueue: String?
    var pdComm: String?
    var rdmaComm: String?
    var control: Int?
}

/// Decides every port of the fleet: explicit lists checked for count, range and duplicates
/// (across every kind, rank and the control port), the rest filled with free ports, and all
/// of them checked free with a real bind, before anything starts.
enum PortPlanner {
    struct Use: Equatable {
        var rank: Int?
        var kind: PortKind

        var description: String { rank.map { "rank \($0) \(kind)" } ?? "\(kind)" }
    }

    static func plan(_ request: PortRequest, ranks: Int, devicesPerRank: Int,
                     prober: PortProber) throws(PlanningError) -> (ranks: [RankPorts], control: Int) {
        // Per kind: the flag it comes from, how many ports, and whom each one serves.
        let rankUses = { (kind: PortKind) in (0..<ranks).map { Use(rank: $0, kind: kind) } }
        let rdmaUses = (0..<ranks).flatMap { rank in (0..<devicesPerRank).map { _ in Use(rank: rank, kind: .rdmaComm) } }
        let kinds: [(kind: PortKind, flag: String, text: String?, uses: [Use])] = [
            (.api, "--ports", request.api, rankUses(.api)),
            (.metrics, "--metrics-ports", request.metrics, rankUses(.metrics)),
            (.engineWorkerQueue, "--engine-worker-queue-port", request.engineWorkerQueue, rankUses(.engineWorkerQueue)),
            (.cacheQueue, "--cache-queue-port", request.cacheQueue, rankUses(.cacheQueue)),
            (.pdComm, "--pd-comm-port", request.pdComm, rankUses(.pdComm)),
            (.rdmaComm, "--rdma-comm-ports", request.rdmaComm, rdmaUses),
            (.control, "--control-port", request.control.map(String.init), [Use(rank: nil, kind: .control)]),
        ]

        var assigned: [PortKind: [Int]] = [:]
        var owners: [Int: Use] = [:]
        for entry in kinds {
            guard let text = entry.text else { continue }
            let ports = try parseList(text, flag: entry.flag)
            guard ports.count == entry.uses.count else {
                throw PlanningError(countMessage(flag: entry.flag, given: ports.count, ranks: ranks,
                                                 devicesPerRank: entry.kind == .rdmaComm ? devicesPerRank : nil))
            }
            for (port, use) in zip(ports, entry.uses) {
                if let owner = owners[port] {
                    throw PlanningError("port \(port) is given twice: \(owner.description) and \(use.description)")
                }
                owners[port] = use
            }
            assigned[entry.kind] = ports
        }

        for entry in kinds where assigned[entry.kind] == nil {
            var ports: [Int] = []
            for use in entry.uses {
                let port = try freePort(avoiding: owners, prober: prober)
                owners[port] = use
                ports.append(port)
            }
            assigned[entry.kind] = ports
        }

        for entry in kinds {
            for (port, use) in zip(assigned[entry.kind]!, entry.uses) where !prober.isFree(port) {
                throw PlanningError("\(use.description) port \(port) is already in use")
            }
        }

        let rankPorts = (0..<ranks).map { rank in
            RankPorts(api: assigned[.api]![rank], metrics: assigned[.metrics]![rank],
                      engineWorkerQueue: assigned[.engineWorkerQueue]![rank], cacheQueue: assigned[.cacheQueue]![rank],
                      pdComm: assigned[.pdComm]![rank],
                      rdmaComm: Array(assigned[.rdmaComm]![rank * devicesPerRank..<(rank + 1) * devicesPerRank]))
        }
        return (rankPorts, assigned[.control]![0])
    }

    static func parseList(_ text: String, flag: String) throws(PlanningError) -> [Int] {
        var ports: [Int] = []
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            let trimmed = item.trimmingWhitespace()
            guard let port = Int(trimmed) else {
                throw PlanningError("\(flag): '\(trimmed)' is not a port number")
            }
            guard (1...65535).contains(port) else {
                throw PlanningError("\(flag): port \(port) is out of range 1-65535")
            }
            ports.append(port)
        }
        return ports
    }

    private static func countMessage(flag: String, given: Int, ranks: Int, devicesPerRank: Int?) -> String {
        let portWord = given == 1 ? "port" : "ports"
        let rankWord = ranks == 1 ? "rank" : "ranks"
        if let devicesPerRank {
            return "\(flag) gives \(given) \(portWord) but \(ranks) \(rankWord) × \(devicesPerRank) devices need \(ranks * devicesPerRank) (one per device)"
        }
        return "\(flag) gives \(given) \(portWord) for \(ranks) \(rankWord); give one per rank"
    }

    /// A kernel-chosen free port not already planned (retried on collision).
    private static func freePort(avoiding owners: [Int: Use], prober: PortProber) throws(PlanningError) -> Int {
        for _ in 0..<1000 {
            guard let port = prober.freePort() else { break }
            if owners[port] == nil { return port }
        }
        throw PlanningError("cannot find a free port on this host")
    }
}
