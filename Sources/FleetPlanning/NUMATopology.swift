import CNuma

/// The host's NUMA nodes and their CPUs, read from `<root>/sys/devices/system/node`.
public struct NUMATopology: Equatable, Sendable {
    /// Node number → its CPUs.
    public var nodes: [Int: [Int]]

    public init(nodes: [Int: [Int]]) {
        self.nodes = nodes
    }

    public var nodeNumbers: [Int] { nodes.keys.sorted() }

    static func read(_ system: HostSystem) -> NUMATopology {
        let folder = "sys/devices/system/node"
        var nodes: [Int: [Int]] = [:]
        for entry in system.listDirectory(folder) where entry.hasPrefix("node") {
            guard let node = Int(entry.dropFirst(4)),
                  let text = system.readTrimmed("\(folder)/\(entry)/cpulist"),
                  let cpus = CPUList.parse(text) else { continue }
            nodes[node] = cpus
        }
        if system.usesLibnuma {
            // libnuma is the authority on the live system: no NUMA support means no nodes to
            // bind to, and nodes beyond numa_max_node() cannot be used in a memory policy.
            guard numa_available() >= 0 else { return NUMATopology(nodes: [:]) }
            let maxNode = Int(numa_max_node())
            nodes = nodes.filter { $0.key <= maxNode }
        }
        return NUMATopology(nodes: nodes)
    }

    /// The node of a PCI device; nil when sysfs says -1 (no affinity) or does not say.
    static func node(ofPCIDevice busID: String, _ system: HostSystem) -> Int? {
        guard let text = system.readTrimmed("sys/bus/pci/devices/\(busID)/numa_node"),
              let node = Int(text), node >= 0 else { return nil }
        return node
    }
}
