/// What an instance sends to the router's `POST /register` (and again as its heartbeat, so a
/// restarted router rebuilds its table), and what `GET /registered` lists. Also one entry of a
/// `--cluster-config` file.
public struct WorkerRegistration: Codable, Hashable, Sendable {
    public var role: SplitwiseRole
    public var endpoint: PeerEndpoint
    /// The served model name (`--served-model-name`).
    public var model: String
    /// Devices of the rank (GPU ids, or CPU ids on a CPU-only host); informational.
    public var deviceIDs: [String]
    /// In order of preference.
    public var transferProtocols: [TransferProtocol]
    /// `--local-data-parallel-id`, when the instance is a rank of `multi-api-server`.
    public var rank: Int?

    public init(role: SplitwiseRole, endpoint: PeerEndpoint, model: String, deviceIDs: [String] = [],
                transferProtocols: [TransferProtocol] = [], rank: Int? = nil) {
        self.role = role
        self.endpoint = endpoint
        self.model = model
        self.deviceIDs = deviceIDs
        self.transferProtocols = transferProtocols
        self.rank = rank
    }

    public var url: String { endpoint.url }

    // Flat JSON, as FastDeploy's register payload: {"role": "prefill", "host": ..., "port": ...,
    // "pd_comm_port": ..., "transfer_protocol": ["ipc", "tcp"], "model": ..., "device_ids": [...]}.
    enum CodingKeys: String, CodingKey {
        case role, model, rank
        case deviceIDs = "device_ids"
        case transferProtocols = "transfer_protocol"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        role = try c.decode(SplitwiseRole.self, forKey: .role)
        model = try c.decode(String.self, forKey: .model)
        deviceIDs = try c.decodeIfPresent([String].self, forKey: .deviceIDs) ?? []
        transferProtocols = try c.decodeIfPresent([TransferProtocol].self, forKey: .transferProtocols) ?? []
        rank = try c.decodeIfPresent(Int.self, forKey: .rank)
        endpoint = try PeerEndpoint(from: decoder)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(role, forKey: .role)
        try c.encode(model, forKey: .model)
        try c.encode(deviceIDs, forKey: .deviceIDs)
        try c.encode(transferProtocols, forKey: .transferProtocols)
        try c.encodeIfPresent(rank, forKey: .rank)
        try endpoint.encode(to: encoder)
    }
}
