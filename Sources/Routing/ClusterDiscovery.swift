import Foundation
import Logging
import PDProtocol
import ServiceLifecycle
import SplitwiseScheduler

/// `--scheduler-name splitwise`: the worker table follows the splitwise scheduler's
/// `{topic}.cluster` hash. Every sync period one `HGETALL` (one round trip, whatever the number
/// of nodes): a node whose heartbeat is fresher than the expire period joins through the
/// registration path (added once its `/health` answers 200), a node whose heartbeat is stale or
/// which left the hash is removed. While Redis does not answer the table stays as it was, and
/// for one expire period after it answers again no node is judged dead (every heartbeat is old
/// until its node could publish again), as the scheduler's own nodes do.
struct ClusterDiscovery: Service {
    let redis: RedisClient
    let topic: String
    let syncPeriod: Duration
    let expirePeriod: Duration
    let registrations: RegistrationRoutes
    let metrics: RouterMetrics
    let logger: Logger

    func run() async throws {
        await cancelWhenGracefulShutdown {
            var progress = Progress()
            while !Task.isCancelled {
                await sync(&progress)
                try? await Task.sleep(for: syncPeriod)
            }
        }
    }

    struct Progress {
        /// The workers this reader added (others are left to their registration or flags).
        var discovered: Set<String> = []
        /// nil while Redis answers.
        var problem: String?
        /// Stale nodes are removed only from then on.
        var judgingFrom = ContinuousClock.now
        /// A node whose /health refused is tried again from then on (not every sync period).
        var retryAt: [String: ContinuousClock.Instant] = [:]
    }

    private func sync(_ progress: inout Progress) async {
        let reply: RedisReply
        do {
            reply = try await redis.command(["HGETALL", SchedulerKeys.cluster(topic: topic)])
        } catch {
            let text = "\(error)"
            if progress.problem != text {
                logger.error("splitwise scheduler: Redis at \(redis.address.description) is unreachable (\(text)): keeping the \(progress.discovered.count) workers found so far")
            }
            progress.problem = text
            metrics.setSchedulerRedisUp(false)
            return
        }
        if progress.problem != nil {
            logger.info("splitwise scheduler: Redis at \(redis.address.description) answers again")
            progress.judgingFrom = .now + expirePeriod
        }
        progress.problem = nil
        metrics.setSchedulerRedisUp(true)

        let oldest = Date().timeIntervalSince1970 - expirePeriod.seconds
        var fresh: [String: WorkerRegistration] = [:]
        var stale: Set<String> = []
        let fields = reply.array ?? []
        for pair in stride(from: 0, to: fields.count - 1, by: 2) {
            guard let value = fields[pair + 1].data, let info = try? JSONDecoder().decode(SchedulerNodeInfo.self, from: value) else { continue }
            let registration = WorkerRegistration(role: info.role, endpoint: info.disaggregated.endpoint, model: "",
                                                  transferProtocols: info.disaggregated.transferProtocols)
            if info.ts >= oldest { fresh[registration.url] = registration } else { stale.insert(registration.url) }
        }
        let now = ContinuousClock.now
        progress.retryAt = progress.retryAt.filter { fresh[$0.key] != nil }
        let judging = now >= progress.judgingFrom
        for url in progress.discovered where fresh[url] == nil && (judging || !stale.contains(url)) {
            progress.discovered.remove(url)
            if registrations.table.remove(url) {
                logger.info("worker \(url) removed: no heartbeat in \(SchedulerKeys.cluster(topic: topic)) for \(expirePeriod)")
            }
        }
        for (url, var registration) in fresh {
            if progress.discovered.contains(url) {
                // Ports or protocols may change when a node restarts; the model name stays.
                registration.model = registrations.table.registration(url)?.model ?? ""
                if registrations.table.registration(url) != registration {
                    registrations.table.upsert(registration, source: .scheduler, admitted: false)
                }
                continue
            }
            // Registered or configured otherwise: theirs.
            if registrations.table.contains(url) || progress.retryAt[url].map({ now < $0 }) == true { continue }
            registration.model = await registrations.client.modelName(url, timeout: registrations.healthTimeout) ?? ""
            if (try? await registrations.admit(registration, source: .scheduler)) != nil {
                progress.discovered.insert(url)
                progress.retryAt[url] = nil
            } else {
                progress.retryAt[url] = .now + max(syncPeriod, .seconds(1))
            }
        }
    }
}
