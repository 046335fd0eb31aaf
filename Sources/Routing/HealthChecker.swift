import Logging
import ServiceLifecycle

/// Checks every worker in the table each `interval`: `GET /health` (bounded by `timeout`) and,
/// when healthy, `GET /load` for the load-aware policies. The thresholds in the table decide
/// when a worker leaves and when it comes back.
public struct HealthChecker: Service {
    public let table: WorkerTable
    public let client: WorkerClient
    public let interval: Duration
    public let timeout: Duration
    public let logger: Logger

    public init(table: WorkerTable, client: WorkerClient, interval: Duration, timeout: Duration, logger: Logger) {
        self.table = table
        self.client = client
        self.interval = interval
        self.timeout = timeout
        self.logger = logger
    }

    public func run() async throws {
        try await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await checkAll()
                try? await Task.sleep(for: interval)
            }
        }
    }

    /// One round over every worker, in parallel.
    public func checkAll() async {
        let urls = table.registrations().map(\.url)
        await withTaskGroup(of: Void.self) { group in
            for url in urls {
                group.addTask { await check(url) }
            }
        }
    }

    func check(_ url: String) async {
        let problem = await client.healthProblem(url, timeout: timeout)
        let load = problem == nil ? await client.load(url, timeout: timeout) : nil
        switch table.recordHealth(url, healthy: problem == nil, load: load) {
        case .joined?: logger.info("worker \(url) is healthy: routed to")
        case .left?: logger.warning("worker \(url) failed its health checks (\(problem ?? "")): no longer routed to")
        case nil: break
        }
    }
}

