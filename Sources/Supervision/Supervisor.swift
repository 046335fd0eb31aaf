#if canImport(Glibc)
import Glibc
#endif
import FleetPlanning
import Foundation
import Logging
import SystemCalls

/// Runs a FleetPlan: spawns one worker per rank, probes their health, restarts only the
/// rank that failed (same RankPlan: same ports and devices), reports to systemd, and stops
/// the fleet on request. All rank state lives in this actor; blocking work (fork, waitpid,
/// log copying, HTTP probes) happens on threads of its own and reports back here.
///
/// Naming: `index` is a rank's position in `ranks` (and in the plan's array); `rank` or
/// `rankID` is its id as the plan, the logs and `/ranks` name it.
public actor Supervisor {
    public let plan: FleetPlan
    private var ranks: [RankRuntime]
    private let logger: Logger
    private let notifier = SystemdNotifier()
    private let prober: HealthProber
    private let deregistration: RouterDeregistration?
    let metrics: SupervisorMetrics
    private let clock = ContinuousClock()
    /// Each rank's full worker environment, by rank id, computed once.
    private let workerEnvironment: [Int: [String: String]]

    private var announcedReady = false
    private var stopRequested = false
    private var lastStatusLine = ""
    private var lastWatchdog: ContinuousClock.Instant?
    private var lastExtend: ContinuousClock.Instant?

    /// How often the loop runs (restarts due, probes due, systemd messages).
    private let tick = Duration.milliseconds(25)
    /// How often a starting rank is probed, so readiness is seen quickly.
    private var startupProbeInterval: Duration { min(plan.health.interval, .milliseconds(50)) }

    public init(plan: FleetPlan, logger: Logger) throws(SupervisorError) {
        self.plan = plan
        self.logger = logger
        metrics = SupervisorMetrics(rankIDs: plan.ranks.map(\.rank))
        prober = HealthProber(host: plan.host)
        deregistration = plan.router.map { RouterDeregistration(settings: $0) }
        let now = ContinuousClock.now
        var runtimes: [RankRuntime] = []
        for rank in plan.ranks {
            let log = try RankLog(directory: rank.logDirectory, maxBytes: plan.logMaxBytes, backups: plan.logBackups)
            runtimes.append(RankRuntime(plan: rank, log: log, policy: RestartPolicy(settings: plan.restart),
                                        health: HealthTracker(settings: plan.health, startedAt: now), nextProbeAt: now))
        }
        ranks = runtimes
        let inherited = ProcessInfo.processInfo.environment
        var environments: [Int: [String: String]] = [:]
        for rank in plan.ranks {
            environments[rank.rank] = WorkerProcess.environment(for: rank, inherited: inherited)
        }
        workerEnvironment = environments
    }

    // MARK: Start and run

    /// Spawns every rank. If one cannot be spawned, the ones already started are stopped
    /// and the error is thrown: a fleet is never left half-started.
    public func start() async throws(SupervisorError) {
        for index in ranks.indices {
            do {
                try launch(index)
            } catch {
                _ = await stopAll()
                throw error
            }
        }
        publishStatus()
    }

    /// Runs the supervision loop until `requestStop()`, then stops every rank (SIGTERM, wait
    /// the shutdown timeout, SIGKILL). Returns true when every rank exited within the timeout.
    public func run() async -> Bool {
        while !stopRequested && !Task.isCancelled {
            step()
            try? await Task.sleep(for: tick)
        }
        // A fresh task: the stop sequence must wait out the timeout even when this task was
        // cancelled (a cancelled Task.sleep would return at once).
        return await Task { await self.stopAll() }.value
    }

    /// Asks the loop to stop the fleet (from the SIGTERM/SIGINT handler).
    public func requestStop() {
        guard !stopRequested else { return }
        stopRequested = true
        notifier.stopping()
        notifier.status("stopping \(ranks.count) ranks")
        logger.info("stopping: SIGTERM to every rank, shutdown timeout \(seconds(plan.shutdownTimeout))")
    }

    public func statuses() -> [RankStatus] {
        let now = clock.now
        return ranks.map { $0.status(now: now) }
    }

    public func metricsText() -> String { metrics.text() }

    // MARK: The loop

    private func step() {
        let now = clock.now
        for index in ranks.indices where ranks[index].phase == .backingOff {
            if let at = ranks[index].restartAt, at <= now, !ranks[index].leavingRouter { relaunch(index) }
        }
        startProbes(now: now)
        for index in ranks.indices where ranks[index].phase == .ready && ranks[index].policy.consecutiveDeaths > 0 {
            if ranks[index].health.isStable(at: now, stablePeriod: plan.restart.stablePeriod) {
                ranks[index].policy.resetBackoff()
                ranks[index].log.note("stable for \(seconds(plan.restart.stablePeriod)): backoff reset")
            }
        }
        reportLogProblems()
        if !announcedReady && ranks.allSatisfy({ $0.phase == .ready }) {
            announcedReady = true
            notifier.ready()
            logger.info("all \(ranks.count) ranks ready")
        }
        if !announcedReady, ranks.contains(where: { $0.phase == .starting || $0.phase == .backingOff }),
           lastExtend.map({ now - $0 >= .seconds(1) }) ?? true {
            // Keep systemd's start timeout from firing while ranks are still loading.
            notifier.extendTimeout(plan.health.startupGrace + .seconds(5))
            lastExtend = now
        }
        if let interval = notifier.watchdogInterval, lastWatchdog.map({ now - $0 >= interval }) ?? true {
            notifier.watchdog()
            lastWatchdog = now
        }
        publishStatus()
    }

    private func startProbes(now: ContinuousClock.Instant) {
        var targets: [(index: Int, port: Int)] = []
        var incarnations: [Int: Int] = [:]
        for index in ranks.indices {
            let rank = ranks[index]
            guard rank.phase == .starting || rank.phase == .ready, !rank.probeInFlight, rank.nextProbeAt <= now else { continue }
            ranks[index].probeInFlight = true
            targets.append((index, rank.plan.ports.api))
            incarnations[index] = rank.incarnation
        }
        guard !targets.isEmpty else { return }
        let prober = prober
        let timeout = plan.health.timeout
        Task {
            let results = await prober.probe(targets, timeout: timeout)
            self.apply(results, incarnations: incarnations)
        }
    }

    private func apply(_ results: [ProbeResult], incarnations: [Int: Int]) {
        let now = clock.now
        for result in results {
            let index = result.index
            guard ranks[index].incarnation == incarnations[index] else { continue }
            ranks[index].probeInFlight = false
            guard ranks[index].phase == .starting || ranks[index].phase == .ready else { continue }
            metrics.recordProbe(result.latency)
            if !result.healthy { ranks[index].detail = "health check failed: \(result.problem)" }
            switch ranks[index].health.record(healthy: result.healthy, at: now) {
            case .becameReady:
                ranks[index].phase = .ready
                ranks[index].detail = nil
                let took = seconds(now - ranks[index].health.startedAt)
                ranks[index].log.note("ready after \(took)")
                logger.info("rank \(ranks[index].plan.rank) ready (pid \(ranks[index].pid ?? 0), \(took) after start)")
                ranks[index].nextProbeAt = now + plan.health.interval
            case .healthy, .failed:
                ranks[index].nextProbeAt = now + plan.health.interval
            case .failedInGrace:
                ranks[index].nextProbeAt = now + startupProbeInterval
            case .unhealthy(let failures):
                ranks[index].nextProbeAt = now + plan.health.interval
                killUnhealthy(index, reason: "\(failures) failed health checks, last: \(result.problem)")
            }
        }
        updateMetrics()
    }

    private func killUnhealthy(_ index: Int, reason: String) {
        guard let pid = ranks[index].pid else { return }
        ranks[index].phase = .unhealthy
        ranks[index].killReason = reason
        guard deregistration != nil else { return killRank(index, pid: pid, reason: reason) }
        Task {
            await self.takeOutOfRouter(index)
            self.killRank(index, pid: pid, reason: reason)
        }
    }

    private func killRank(_ index: Int, pid: Int32, reason: String) {
        guard ranks[index].pid == pid else { return } // It ended meanwhile.
        ranks[index].log.note("killing pid \(pid): \(reason)")
        logger.warning("rank \(ranks[index].plan.rank): killing pid \(pid): \(reason)")
        WorkerProcess.signalGroup(pid, SIGKILL)
    }

    /// Takes the rank's current incarnation out of the router (`--router`), once; a restart
    /// waits for it (`leavingRouter`), and the new incarnation registers itself.
    private func takeOutOfRouter(_ index: Int) async {
        guard let url = startLeavingRouter(index) else { return }
        await finishLeavingRouter(index, url: url)
    }

    /// Marks the deregistration as begun (so no restart starts before it ends); the URL to
    /// deregister, or nil when there is nothing to do.
    private func startLeavingRouter(_ index: Int) -> String? {
        guard let router = plan.router, !ranks[index].outOfRouter, !ranks[index].leavingRouter else { return nil }
        ranks[index].leavingRouter = true
        return router.workerURL(apiPort: ranks[index].plan.ports.api)
    }

    private func finishLeavingRouter(_ index: Int, url: String) async {
        guard let deregistration else { return }
        let router = deregistration.settings.baseURL
        let problem = await deregistration.deregister(workerURL: url, timeout: max(plan.health.timeout, .seconds(2)))
        ranks[index].leavingRouter = false
        ranks[index].outOfRouter = true
        if let problem {
            ranks[index].log.note("could not take \(url) out of the router \(router): \(problem)")
            logger.warning("rank \(ranks[index].plan.rank): could not take \(url) out of the router \(router): \(problem)")
        } else {
            ranks[index].log.note("taken out of the router \(router) (\(url))")
            logger.info("rank \(ranks[index].plan.rank): taken out of the router \(router) (\(url))")
        }
    }

    // MARK: Spawning and exits

    private func launch(_ index: Int) throws(SupervisorError) {
        let plan = ranks[index].plan
        let (pid, output) = try WorkerProcess.spawn(binary: self.plan.workerBinary, rank: plan,
                                                    environment: workerEnvironment[plan.rank] ?? [:])
        LogPump.start(readingFrom: output, into: ranks[index].log)
        ChildReaper.watch(pid) { [weak self] exit in
            guard let self else { return }
            Task { await self.childExited(pid: pid, exit: exit) }
        }
        let now = clock.now
        ranks[index].pid = pid
        ranks[index].incarnation += 1
        ranks[index].phase = .starting
        ranks[index].health = HealthTracker(settings: self.plan.health, startedAt: now)
        ranks[index].restartAt = nil
        ranks[index].probeInFlight = false
        ranks[index].nextProbeAt = now
        ranks[index].killReason = nil
        ranks[index].outOfRouter = false
        ranks[index].log.note("started pid \(pid): \(self.plan.workerBinary) \(plan.arguments.joined(separator: " "))")
        logger.info("rank \(plan.rank) started, pid \(pid), api port \(plan.ports.api)")
    }

    private func relaunch(_ index: Int) {
        ranks[index].restarts += 1
        metrics.countRestart(index: index)
        do {
            try launch(index)
        } catch {
            ranks[index].log.note(error.description)
            logger.error("\(error.description)")
            died(index, exitStatus: nil)
        }
    }

    private func childExited(pid: Int32, exit: WorkerExit) {
        guard let index = ranks.firstIndex(where: { $0.pid == pid }) else { return }
        ranks[index].pid = nil
        ranks[index].probeInFlight = false
        var description = exit.description
        if let reason = ranks[index].killReason { description += " (killed by the supervisor: \(reason))" }
        ranks[index].lastExit = description
        ranks[index].log.note("pid \(pid) ended: \(description)")
        if stopRequested || ranks[index].phase == .stopping {
            ranks[index].phase = .stopped
            return
        }
        logger.warning("rank \(ranks[index].plan.rank): pid \(pid) ended: \(description)")
        died(index, exitStatus: exit.exitStatus)
        publishStatus()
    }

    private func died(_ index: Int, exitStatus: Int?) {
        let now = clock.now
        // A rank that died by itself is still in the router's table: out before the restart.
        if let url = startLeavingRouter(index) { Task { await self.finishLeavingRouter(index, url: url) } }
        switch ranks[index].policy.recordDeath(at: now, exitStatus: exitStatus) {
        case .restart(let delay):
            ranks[index].phase = .backingOff
            ranks[index].restartAt = now + delay
            ranks[index].log.note("restarting in \(seconds(delay))")
        case .markFailed(let reason):
            ranks[index].phase = .failed
            ranks[index].detail = reason
            ranks[index].log.note("rank marked failed: \(reason)")
            logger.error("rank \(ranks[index].plan.rank) marked failed: \(reason); the other ranks keep serving")
        }
        updateMetrics()
    }

    // MARK: Stopping

    private func stopAll() async -> Bool {
        stopRequested = true
        // Out of the router before SIGTERM: it sends nothing more to ranks about to drain.
        if deregistration != nil {
            await withTaskGroup(of: Void.self) { group in
                for index in ranks.indices where ranks[index].pid != nil {
                    group.addTask { await self.takeOutOfRouter(index) }
                }
            }
        }
        for index in ranks.indices {
            if let pid = ranks[index].pid {
                ranks[index].phase = .stopping
                WorkerProcess.signalGroup(pid, SIGTERM)
                WorkerProcess.signalGroup(pid, SIGCONT) // A stopped worker must run to handle SIGTERM.
            } else {
                ranks[index].phase = ranks[index].phase == .failed ? .failed : .stopped
            }
        }
        let deadline = clock.now + plan.shutdownTimeout
        while ranks.contains(where: { $0.pid != nil }) && clock.now < deadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
        let stragglers = ranks.filter { $0.pid != nil }
        for rank in stragglers {
            logger.warning("rank \(rank.plan.rank): still running after \(seconds(plan.shutdownTimeout)): SIGKILL")
            WorkerProcess.signalGroup(rank.pid!, SIGKILL)
        }
        let killDeadline = clock.now + .seconds(5)
        while ranks.contains(where: { $0.pid != nil }) && clock.now < killDeadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
        updateMetrics()
        logger.info("all ranks stopped")
        return stragglers.isEmpty
    }

    // MARK: Reporting

    private func updateMetrics() {
        metrics.setUp(ranks.map { $0.phase == .ready })
    }

    /// "3/4 ranks ready; rank 2 backing off 8s; rank 3 failed: crash loop: …"
    func statusLine(now: ContinuousClock.Instant) -> String {
        var parts = ["\(ranks.filter { $0.phase == .ready }.count)/\(ranks.count) ranks ready"]
        for rank in ranks {
            switch rank.phase {
            case .ready, .stopped, .stopping: continue
            case .starting: parts.append("rank \(rank.plan.rank) starting")
            case .unhealthy: parts.append("rank \(rank.plan.rank) unhealthy, restarting")
            case .backingOff:
                let left = max(.zero, (rank.restartAt ?? now) - now)
                parts.append("rank \(rank.plan.rank) backing off \(Int(left.inSeconds.rounded(.up)))s")
            case .failed: parts.append("rank \(rank.plan.rank) failed: \(rank.detail ?? "")")
            }
        }
        return parts.joined(separator: "; ")
    }

    /// Logs each change of a rank's log problem once: when output starts being dropped, and
    /// when its log file is written again.
    private func reportLogProblems() {
        for index in ranks.indices {
            let problem = ranks[index].log.problem
            guard problem != ranks[index].reportedLogProblem else { continue }
            let rank = ranks[index].plan.rank
            if let problem {
                logger.error("rank \(rank): \(problem); its output is dropped, and every write tries again")
            } else {
                logger.info("rank \(rank): writing \(ranks[index].log.path) again")
            }
            ranks[index].reportedLogProblem = problem
        }
    }

    private func publishStatus() {
        guard !stopRequested else { return }
        let line = statusLine(now: clock.now)
        if line != lastStatusLine {
            lastStatusLine = line
            notifier.status(line)
        }
    }
}
