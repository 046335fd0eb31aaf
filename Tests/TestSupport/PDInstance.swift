import Foundation

/// A prefill or decode api-server with every PD port: engine-worker-queue (`/abort`, `/load`),
/// PD-comm and cache-queue.
public final class PDInstance: @unchecked Sendable {
    // @unchecked Sendable: every stored property is a let; other threads only send HTTP
    // requests through the (Sendable) client; the test's own thread starts and stops it.
    public let server: APIServerProcess
    public let role: String
    public let protocols: String
    public let controlPort: Int
    public let pdCommPort: Int
    public let cacheQueuePort: Int

    /// Starts it (`arguments` after the PD flags); `waitUntilHealthy: false` returns at once
    /// (see `waitUntilHealthy()`), so several can start side by side.
    public init(_ role: String, protocols: String = "ipc,tcp", arguments: [String] = [], waitUntilHealthy: Bool = true) throws {
        let ports = try freeLoopbackPorts(3)
        self.role = role
        self.protocols = protocols
        (controlPort, pdCommPort, cacheQueuePort) = (ports[0], ports[1], ports[2])
        server = try APIServerProcess(["--splitwise-role", role, "--cache-transfer-protocol", protocols,
                                       "--engine-worker-queue-port", String(ports[0]), "--pd-comm-port", String(ports[1]),
                                       "--cache-queue-port", String(ports[2])] + arguments, waitUntilHealthy: false)
        if waitUntilHealthy { try self.waitUntilHealthy() }
    }

    public func waitUntilHealthy() throws {
        try server.waitUntil("/health is 200") { (try? server.client.get("/health"))?.status == 200 }
    }

    /// The URL a router is given for it (`--prefill`, `--decode`): the ports as query items.
    public var routerURL: String {
        "http://127.0.0.1:\(server.port)?engine_worker_queue_port=\(controlPort)&pd_comm_port=\(pdCommPort)"
            + "&cache_queue_port=\(cacheQueuePort)&transfer_protocol=\(protocols)"
    }

    /// Its part of a `disaggregate_info` (`PeerEndpoint`'s keys).
    public var endpoint: [String: Any] {
        ["host": "127.0.0.1", "port": server.port, "pd_comm_port": pdCommPort, "cache_queue_port": cacheQueuePort]
    }
}
