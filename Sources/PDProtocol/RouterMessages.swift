/// An instance's load as `GET /load` answers it (on the API port and the engine-worker-queue
/// port; the engine's `EngineLoad` is this type). The router polls it for
/// `free_kv_first`, `BLB` and the load-aware fallbacks.
public struct InstanceLoad: Codable, Hashable, Sendable {
    public var runningRequests: Int
    public var waitingRequests: Int
    public var kvBlocksTotal: Int
    public var kvBlocksUsed: Int
    public var kvBlocksFree: Int
    public var blockSize: Int

    public init(runningRequests: Int, waitingRequests: Int, kvBlocksTotal: Int, kvBlocksUsed: Int, kvBlocksFree: Int,
                blockSize: Int) {
        self.runningRequests = runningRequests
        self.waitingRequests = waitingRequests
        self.kvBlocksTotal = kvBlocksTotal
        self.kvBlocksUsed = kvBlocksUsed
        self.kvBlocksFree = kvBlocksFree
        self.blockSize = blockSize
    }
}

/// `POST /abort` on an instance's engine-worker-queue port: aborts the engine request
/// `request_id` (for a PD leg, `disaggregate_info.request_id`).
public struct AbortRequest: Codable, Hashable, Sendable {
    public var requestID: String

    public init(requestID: String) { self.requestID = requestID }

    enum CodingKeys: String, CodingKey { case requestID = "request_id" }
}

/// The router's answer to `POST /register`: `registered` for a new instance, `refreshed` for a
/// heartbeat of a known one.
public struct RegistrationReply: Codable, Hashable, Sendable {
    public enum Status: String, Codable, Sendable { case registered, refreshed }
    public var status: Status

    public init(status: Status) { self.status = status }
}

/// `POST /deregister`: either a whole `WorkerRegistration` or just `{"url": "http://host:port"}`.
public struct DeregistrationRequest: Decodable, Hashable, Sendable {
    public var url: String

    public init(url: String) { self.url = url }

    enum CodingKeys: String, CodingKey { case url }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        if let url = try c.decodeIfPresent(String.self, forKey: .url) {
            self.url = url
        } else {
            self.url = try PeerEndpoint(from: decoder).url
        }
    }
}
