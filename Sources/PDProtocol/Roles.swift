/// What an `api-server` instance does in a prefill–decode deployment
/// (`--splitwise-role`, FastDeploy's names).
public enum SplitwiseRole: String, Codable, CaseIterable, Sendable {
    /// Computes the prompt's KV, pushes it to a decode instance, hands over the first token.
    case prefill
    /// Receives a prompt's KV and the first token, then generates and streams the rest.
    case decode
    /// Serves whole requests (no disaggregation).
    case mixed
}

/// How KV blocks move from a prefill to a decode instance (`--cache-transfer-protocol`,
/// an ordered preference list).
public enum TransferProtocol: String, Codable, CaseIterable, Sendable {
    /// Shared memory between two processes on one host.
    case ipc
    /// A TCP stream to the decode instance's cache-queue port (any host).
    case tcp
    /// RDMA; accepted in lists, refused where no RDMA device exists.
    case rdma
}
