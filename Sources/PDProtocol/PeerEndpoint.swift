/// Where an instance listens: everything a router or a peer instance needs to reach it.
/// JSON keys are FastDeploy's snake_case port names.
public struct PeerEndpoint: Codable, Hashable, Sendable {
    public var host: String
    /// The OpenAI API port (also `/health`, `/load`, `/metrics`).
    public var port: Int
    /// The engine control plane (`GET /load`, `POST /abort`, `POST /drain`).
    public var engineWorkerQueuePort: Int?
    /// PD handoff messages (handshake, block allocation, first token, errors).
    public var pdCommPort: Int?
    /// The KV data plane over TCP.
    public var cacheQueuePort: Int?
    public var rdmaCommPorts: [Int]

    public init(host: String, port: Int, engineWorkerQueuePort: Int? = nil, pdCommPort: Int? = nil,
                cacheQueuePort: Int? = nil, rdmaCommPorts: [Int] = []) {
        self.host = host
        self.port = port
        self.engineWorkerQueuePort = engineWorkerQueuePort
        self.pdCommPort = pdCommPort
        self.cacheQueuePort = cacheQueuePort
        self.rdmaCommPorts = rdmaCommPorts
    }

    /// `http://host:port` of the OpenAI API; the instance's name in the router's table.
    public var url: String {
        let h = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
        return "http://\(h):\(port)"
    }

    enum CodingKeys: String, CodingKey {
        case host, port
        case engineWorkerQueuePort = "engine_worker_queue_port"
        case pdCommPort = "pd_comm_port"
        case cacheQueuePort = "cache_queue_port"
        case rdmaCommPorts = "rdma_comm_ports"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        host = try c.decode(String.self, forKey: .host)
        port = try c.decode(Int.self, forKey: .port)
        engineWorkerQueuePort = try c.decodeIfPresent(Int.self, forKey: .engineWorkerQueuePort)
        pdCommPort = try c.decodeIfPresent(Int.self, forKey: .pdCommPort)
        cacheQueuePort = try c.decodeIfPresent(Int.self, forKey: .cacheQueuePort)
        rdmaCommPorts = try c.decodeIfPresent([Int].self, forKey: .rdmaCommPorts) ?? []
    }
}
