import PDProtocol

/// One live instance of the cluster as the last sync read it.
public struct ClusterNode: Sendable, Hashable {
    public var id: String
    public var info: SchedulerNodeInfo

    public init(id: String, info: SchedulerNodeInfo) {
        self.id = id
        self.info = info
    }
}

/// Where one request runs.
public enum Placement: Sendable, Hashable {
    /// A mixed instance serves the whole request.
    case mixed(ClusterNode)
    /// A prefill and a decode instance, and how the KV moves between them.
    case disaggregated(prefill: ClusterNode, decode: ClusterNode, transfer: TransferProtocol)

    public var nodes: [ClusterNode] {
        switch self {
        case .mixed(let node): [node]
        case .disaggregated(let prefill, let decode, _): [prefill, decode]
        }
    }
}

/// FastDeploy's placement: prefill (and mixed) instances by least outstanding prompt tokens,
/// decode instances by fewest requests, each a random choice among the near-least loaded
/// (within a "blur" step of the least load), so requests arriving between two syncs spread.
public enum PlacementPolicy {
    public static func place(promptTokens: Int, nodes: [ClusterNode], excluding: Set<String> = [],
                             using random: inout some RandomNumberGenerator) -> Placement? {
        let usable = nodes.filter { !excluding.contains($0.id) }
        let firstStage = usable.filter { $0.info.role != .decode }
        var decodes = usable.filter { $0.info.role == .decode }
        guard let first = choose(firstStage, blur: prefillBlur(promptTokens), using: &random) else { return nil }
        if first.info.role == .mixed { return .mixed(first) }
        while let decode = choose(decodes, blur: min(decodes.count, 10), using: &random) {
            if let transfer = transferProtocol(prefill: first.info, decode: decode.info) {
                return .disaggregated(prefill: first, decode: decode, transfer: transfer)
            }
            decodes.removeAll { $0.id == decode.id }
        }
        // No decode instance can take it: a mixed one serves the whole request, if any.
        return choose(firstStage.filter { $0.info.role == .mixed }, blur: prefillBlur(promptTokens), using: &random).map(Placement.mixed)
    }

    /// FastDeploy's prefill blur: half the prompt (a tenth from 1000 tokens on), within 100...500.
    static func prefillBlur(_ promptTokens: Int) -> Int {
        let rate = promptTokens < 1000 ? 2 : 10
        return max(100, min(500, promptTokens / rate))
    }

    static func choose(_ nodes: [ClusterNode], blur: Int, using random: inout some RandomNumberGenerator) -> ClusterNode? {
        guard let least = nodes.map(\.info.load).min() else { return nil }
        let near = nodes.filter { $0.info.load < least + max(blur, 1) }
        return near.randomElement(using: &random)
    }

    /// The transfer protocol for this pair (`TransferProtocol.between`, the PD contract's rule,
    /// as the router applies it to registered workers).
    public static func transferProtocol(prefill: SchedulerNodeInfo, decode: SchedulerNodeInfo) -> TransferProtocol? {
        TransferProtocol.between(prefillHost: prefill.host, offeredByPrefill: prefill.disaggregated.transferProtocols,
                                 decodeHost: decode.host, offeredByDecode: decode.disaggregated.transferProtocols)
    }
}
