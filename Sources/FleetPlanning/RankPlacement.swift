/// `--numa-bind`: how ranks' CPUs and memory are tied to NUMA nodes.
public enum NUMABind: Equatable, Sendable {
    case auto
    case none
    /// One node per rank, or one node for all ranks.
    case nodes([Int])

    public static func parse(_ text: String) throws(PlanningError) -> NUMABind {
        switch text {
        case "auto": return .auto
        case "none": return NUMABind.none
        default:
            let items = text.split(separator: ",", omittingEmptySubsequences: false)
            let nodes = items.compactMap { Int($0.trimmingWhitespace()) }
            guard !items.isEmpty, nodes.count == items.count, nodes.allSatisfy({ $0 >= 0 }) else {
                throw PlanningError("--numa-bind must be auto, none or NUMA node numbers separated by commas, got '\(text)'")
            }
            return .nodes(nodes)
        }
    }
}

/// Where one rank runs: the CPUs it is pinned to and the nodes its memory is bound to
/// (nil: inherited, unbound).
struct RankPlacement: Equatable {
    var cpus: [Int]?
    var numaNodes: [Int]?
}

enum RankPlacer {
    /// GPU mode: `gpuNodes[rank]` are the NUMA nodes of the rank's GPUs (nil where unknown
    /// or `-1`). A rank is bound only when every one of its GPUs has a known node.
    static func placeGPURanks(gpuNodes: [[Int?]], allowedCPUs: [Int], topology: NUMATopology,
                              bind: NUMABind) throws(PlanningError) -> [RankPlacement] {
        switch bind {
        case .none:
            return gpuNodes.map { _ in RankPlacement(cpus: nil, numaNodes: nil) }
        case .auto:
            return gpuNodes.map { nodes in
                let known = nodes.compactMap { $0 }
                guard !known.isEmpty, known.count == nodes.count else { return RankPlacement(cpus: nil, numaNodes: nil) }
                let rankNodes = Array(Set(known)).sorted()
                let cpus = cpusOf(rankNodes, allowedCPUs: allowedCPUs, topology: topology)
                guard !cpus.isEmpty else { return RankPlacement(cpus: nil, numaNodes: nil) }
                return RankPlacement(cpus: cpus, numaNodes: rankNodes)
            }
        case .nodes(let list):
            let nodes = try explicitNodes(list, ranks: gpuNodes.count, topology: topology)
            return try nodes.map { node throws(PlanningError) in
                let cpus = cpusOf([node], allowedCPUs: allowedCPUs, topology: topology)
                guard !cpus.isEmpty else {
                    throw PlanningError("--numa-bind: NUMA node \(node) has none of the allowed CPUs (\(CPUList.format(allowedCPUs)))")
                }
                return RankPlacement(cpus: cpus, numaNodes: [node])
            }
        }
    }

    /// CPU mode: every rank gets its own disjoint share of the allowed CPUs.
    static func placeCPURanks(count: Int, allowedCPUs: [Int], topology: NUMATopology,
                              bind: NUMABind) throws(PlanningError) -> [RankPlacement] {
        let allowed = Array(Set(allowedCPUs)).sorted()
        guard allowed.count >= count else {
            throw PlanningError("CPU mode needs at least one CPU per rank: \(count) ranks but only \(allowed.count) allowed CPUs (\(CPUList.format(allowed)))")
        }
        switch bind {
        case .none:
            return evenSplit(allowed, into: count).map { RankPlacement(cpus: $0, numaNodes: nil) }
        case .auto:
            let usable = topology.nodeNumbers.filter { !cpusOf([$0], allowedCPUs: allowed, topology: topology).isEmpty }
            if usable.isEmpty {
                return evenSplit(allowed, into: count).map { RankPlacement(cpus: $0, numaNodes: nil) }
            }
            // Consecutive ranks share a node; nodes get as equal a number of ranks as possible.
            let nodes = (0..<count).map { usable[$0 * usable.count / count] }
            if let placements = try? shareNodes(nodes, allowedCPUs: allowed, topology: topology) {
                return placements
            }
            // A node has fewer CPUs than ranks: split the whole set, binding memory to the
            // nodes each share's CPUs belong to.
            return evenSplit(allowed, into: count).map { share in
                RankPlacement(cpus: share, numaNodes: usable.filter { node in
                    !Set(topology.nodes[node] ?? []).isDisjoint(with: share)
                })
            }
        case .nodes(let list):
            let nodes = try explicitNodes(list, ranks: count, topology: topology)
            return try shareNodes(nodes, allowedCPUs: allowed, topology: topology)
        }
    }

    /// Ranks on the same node split that node's allowed CPUs between them.
    private static func shareNodes(_ nodes: [Int], allowedCPUs: [Int], topology: NUMATopology) throws(PlanningError) -> [RankPlacement] {
        var placements = Array(repeating: RankPlacement(cpus: nil, numaNodes: nil), count: nodes.count)
        for node in Array(Set(nodes)).sorted() {
            let ranks = nodes.indices.filter { nodes[$0] == node }
            let cpus = cpusOf([node], allowedCPUs: allowedCPUs, topology: topology)
            guard cpus.count >= ranks.count else {
                throw PlanningError("--numa-bind: NUMA node \(node) has \(cpus.count) allowed CPUs for \(ranks.count) ranks")
            }
            for (rank, share) in zip(ranks, evenSplit(cpus, into: ranks.count)) {
                placements[rank] = RankPlacement(cpus: share, numaNodes: [node])
            }
        }
        return placements
    }

    private static func explicitNodes(_ list: [Int], ranks: Int, topology: NUMATopology) throws(PlanningError) -> [Int] {
        guard list.count == 1 || list.count == ranks else {
            throw PlanningError("--numa-bind gives \(list.count) nodes for \(ranks) ranks; give one per rank or one for all")
        }
        for node in list where topology.nodes[node] == nil {
            let known = topology.nodeNumbers.map(String.init).joined(separator: ",")
            throw PlanningError("--numa-bind: NUMA node \(node) does not exist (this host has \(known.isEmpty ? "no NUMA nodes" : "nodes \(known)"))")
        }
        return list.count == 1 ? Array(repeating: list[0], count: ranks) : list
    }

    private static func cpusOf(_ nodes: [Int], allowedCPUs: [Int], topology: NUMATopology) -> [Int] {
        let allowed = Set(allowedCPUs)
        return Array(Set(nodes.flatMap { topology.nodes[$0] ?? [] }).intersection(allowed)).sorted()
    }

    /// Contiguous shares whose sizes differ by at most one.
    static func evenSplit(_ items: [Int], into parts: Int) -> [[Int]] {
        let base = items.count / parts
        let extra = items.count % parts
        var shares: [[Int]] = []
        var start = 0
        for part in 0..<parts {
            let size = base + (part < extra ? 1 : 0)
            shares.append(Array(items[start..<start + size]))
            start += size
        }
        return shares
    }
}
