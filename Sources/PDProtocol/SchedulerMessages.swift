import Foundation

/// One instance's entry in the splitwise scheduler's `{topic}.cluster` Redis hash (field: the
/// node id), written by the instance every sync period. FastDeploy's keys (`ts`, `role`,
/// `load`, `host`, `disaggregated`), so `redis-cli HGETALL fd.cluster` reads the same on both.
public struct SchedulerNodeInfo: Codable, Hashable, Sendable {
    /// Seconds since 1970 when the entry was written: its heartbeat.
    public var ts: Double
    public var role: SplitwiseRole
    /// Prefill and mixed: outstanding prompt tokens; decode: outstanding requests.
    public var load: Int
    public var host: String
    /// What peers need to reach the instance: its ports and transfer protocols.
    public var disaggregated: Disaggregated
    /// Requests waiting in this node's `ReqQ_` list at its last sync (Tandem's addition).
    public var queued: Int

    public struct Disaggregated: Codable, Hashable, Sendable {
        public var endpoint: PeerEndpoint
        /// In order of preference.
        public var transferProtocols: [TransferProtocol]

        public init(endpoint: PeerEndpoint, transferProtocols: [TransferProtocol]) {
            self.endpoint = endpoint
            self.transferProtocols = transferProtocols
        }

        enum CodingKeys: String, CodingKey { case transferProtocols = "transfer_protocol" }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            transferProtocols = try c.decodeIfPresent([TransferProtocol].self, forKey: .transferProtocols) ?? []
            endpoint = try PeerEndpoint(from: decoder)
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(transferProtocols, forKey: .transferProtocols)
            try endpoint.encode(to: encoder)
        }
    }

    public init(ts: Double, role: SplitwiseRole, load: Int, host: String, disaggregated: Disaggregated, queued: Int = 0) {
        self.ts = ts
        self.role = role
        self.load = load
        self.host = host
        self.disaggregated = disaggregated
        self.queued = queued
    }

    enum CodingKeys: String, CodingKey { case ts, role, load, host, disaggregated, queued }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        ts = try c.decode(Double.self, forKey: .ts)
        role = try c.decode(SplitwiseRole.self, forKey: .role)
        load = try c.decode(Int.self, forKey: .load)
        host = try c.decode(String.self, forKey: .host)
        disaggregated = try c.decode(Disaggregated.self, forKey: .disaggregated)
        queued = try c.decodeIfPresent(Int.self, forKey: .queued) ?? 0
    }
}

/// One entry of a node's `ReqQ_{node id}` list: a request leg to run (or to abort), pushed by the
/// instance that received the client's request.
public struct ScheduledTask: Codable, Hashable, Sendable {
    public enum Kind: String, Codable, Sendable {
        /// Run `body` on `route` here and write the response into the `group` list.
        case request
        /// Abort the leg `request_id` if it runs here (its other leg failed, or the client left).
        case abort
    }

    public var kind: Kind
    public var requestID: String
    /// The leg the node plays: prefill or decode (with `disaggregate_info` in `body`), or mixed.
    public var role: SplitwiseRole
    /// `/v1/completions` or `/v1/chat/completions`.
    public var route: String
    /// The client's OpenAI body, with `disaggregate_info` for a prefill or decode leg.
    public var body: Data
    /// The result list the receiving instance reads (`{node id}-0`, FastDeploy's reader group).
    public var group: String
    public var promptTokenIDsLen: Int
    /// Seconds since 1970 when the receiving instance placed it.
    public var arrivalTime: Double

    public init(kind: Kind, requestID: String, role: SplitwiseRole = .mixed, route: String = "", body: Data = Data(), group: String, promptTokenIDsLen: Int = 0,
                arrivalTime: Double) {
        self.kind = kind
        self.requestID = requestID
        self.role = role
        self.route = route
        self.body = body
        self.group = group
        self.promptTokenIDsLen = promptTokenIDsLen
        self.arrivalTime = arrivalTime
    }

    enum CodingKeys: String, CodingKey {
        case kind, role, route, body, group
        case requestID = "request_id"
        case promptTokenIDsLen = "prompt_token_ids_len"
        case arrivalTime = "arrival_time"
    }
}

/// One entry of a result list: a piece of a leg's HTTP response, written by the node that runs
/// the leg, read by the instance that answers the client.
public struct ScheduledResult: Codable, Hashable, Sendable {
    public enum Kind: String, Codable, Sendable {
        /// The response's status and content type (the decode or mixed leg).
        case head
        /// Bytes of the response body, in order.
        case data
        /// The response ended.
        case end
        /// The leg failed before or while answering (`status`, `message`).
        case error
        /// The prefill leg's whole answer (`PrefillLegResult` or an OpenAI error).
        case prefill
        /// The task was taken out of a dead node's queue without running: place it again.
        case lost
    }

    public var kind: Kind
    public var requestID: String
    /// The node id that wrote it.
    public var node: String
    public var status: Int?
    public var contentType: String?
    public var data: Data?
    public var message: String?
    /// The item's place among its leg's items (1, 2, ...): a batch written again after a lost
    /// reply is read once.
    public var sequence: Int?

    public init(kind: Kind, requestID: String, node: String, status: Int? = nil, contentType: String? = nil, data: Data? = nil,
                message: String? = nil, sequence: Int? = nil) {
        self.kind = kind
        self.requestID = requestID
        self.node = node
        self.status = status
        self.contentType = contentType
        self.data = data
        self.message = message
        self.sequence = sequence
    }

    enum CodingKeys: String, CodingKey {
        case kind, node, status, data, message
        case sequence = "seq"
        case requestID = "request_id"
        case contentType = "content_type"
    }
}
