import FleetPlanning
import Foundation
import Glibc
import Logging
import Supervision
import Synchronization
import SystemCalls
import TestSupport
import Testing

/// The lines a logger was given, for a test to read.
final class CapturedLines: Sendable {
    private let lines = Mutex<[String]>([])
    func append(_ line: String) { lines.withLock { $0.append(line) } }
    var all: [String] { lines.withLock { $0 } }
    func contains(_ text: String) -> Bool { all.contains { $0.contains(text) } }
}

struct CapturingLogHandler: LogHandler {
    let lines: CapturedLines
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        lines.append("\(event.level): \(event.message)")
    }
}

func capturingLogger(_ lines: CapturedLines) -> Logger {
    Logger(label: "test") { _ in CapturingLogHandler(lines: lines) }
}

/// A plan for a Supervisor run inside the test process: tandem-test-worker ranks with the
/// given rank ids (not their indices, so the two cannot be confused), tagged `tag`.
func inProcessPlan(rankIDs: [Int], workerArgs: [String] = [], logDirectory: String, tag: String) throws -> FleetPlan {
    let options = try SupervisorOptions.parse(
        ["--num-servers", "\(rankIDs.count)", "--worker-binary", try BuiltProducts.path("tandem-test-worker"), "--log-dir", logDirectory, "--numa-bind", "none"]
            + FleetTests.quick + (workerArgs.isEmpty ? [] : ["--args"] + workerArgs))
    let system = HostSystem(root: "/nonexistent", allowedCPUs: HostSystem.live.allowedCPUs)
    var plan = try FleetPlanner(system: system, environment: [:]).plan(options)
    for index in plan.ranks.indices {
        plan.ranks[index].rank = rankIDs[index]
        plan.ranks[index].environment["TANDEM_TEST_FLEET"] = tag
    }
    return plan
}

extension FleetTests {
    @Test func twoSupervisorsInOneProcessEachCollectTheirOwnWorkersExits() async throws {
        let tag = UUID().uuidString
        let logDirectory = NSTemporaryDirectory() + "tandem-two-supervisors-\(tag.prefix(8))"
        defer {
            for pid in fleetProcesses(tag: tag) { kill(pid_t(pid), SIGKILL) }
            try? FileManager.default.removeItem(atPath: logDirectory)
        }
        let linesA = CapturedLines(), linesB = CapturedLines()
        let a = try Supervisor(plan: inProcessPlan(rankIDs: [10, 11], logDirectory: logDirectory + "/a", tag: tag),
                               logger: capturingLogger(linesA))
        let b = try Supervisor(plan: inProcessPlan(rankIDs: [20], workerArgs: ["--exit-code", "78"],
                                                   logDirectory: logDirectory + "/b", tag: tag),
                               logger: capturingLogger(linesB))
        try await a.start()
        let runA = Task { await a.run() }
        try await b.start()
        let runB = Task { await b.run() }

        // B's only rank exits with status 78 at once: B collects that exit and gives up on it.
        #expect(await waitUntil { await b.statuses().first?.state == .failed }, "\(linesB.all)")
        let rankB = try #require(await b.statuses().first)
        #expect(rankB.rank == 20)
        #expect(rankB.lastExit == "exit status 78")
        #expect(rankB.detail == "exit status 78 (bad configuration): not restarted")
        #expect(linesB.contains("rank 20 marked failed: exit status 78 (bad configuration): not restarted"), "\(linesB.all)")

        // A's ranks come up; a killed one is collected by A and restarted on its own.
        #expect(await waitUntil { await a.statuses().allSatisfy { $0.state == .ready } }, "\(linesA.all)")
        #expect(await a.statuses().map(\.rank) == [10, 11])
        let survivor = await a.statuses()[0].pid
        let killed = try #require(await a.statuses()[1].pid)

        // A child neither supervisor started: its exit status stays for the code that started it.
        let words: [String] = ["/bin/sh", "-c", "exit 7"]
        let argv = words.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var foreign = pid_t()
        try #require(posix_spawn(&foreign, "/bin/sh", nil, nil, argv, nil) == 0)

        kill(pid_t(killed), SIGKILL)
        #expect(await waitUntil {
            let rank = await a.statuses()[1]
            return rank.restarts == 1 && rank.state == .ready && rank.pid != killed
        }, "\(linesA.all)")
        let ranksA = await a.statuses()
        #expect(ranksA[1].lastExit == "signal 9 (SIGKILL)")
        #expect(ranksA[0].restarts == 0)
        #expect(ranksA[0].pid == survivor)
        #expect(linesA.contains("rank 11: pid \(killed) ended: signal 9 (SIGKILL)"), "\(linesA.all)")
        #expect(await a.metricsText().contains("tandem_rank_restarts_total{rank=\"11\"} 1\n"))
        #expect(await a.metricsText().contains("tandem_rank_restarts_total{rank=\"10\"} 0\n"))

        var status: Int32 = 0
        let reaped = try systemCall("waitpid") { waitpid(foreign, &status, 0) }
        #expect(reaped == foreign)
        #expect(WorkerExit(waitStatus: status) == .exited(status: 7))
        // B saw nothing of A's exits.
        #expect(await b.statuses().first?.restarts == 0)
        #expect(!linesB.contains("pid \(killed)"))

        await a.requestStop()
        await b.requestStop()
        #expect(await runA.value)
        #expect(await runB.value)
        #expect(await a.statuses().allSatisfy { $0.state == .stopped && $0.pid == nil })
        #expect(fleetProcesses(tag: tag).isEmpty)
    }

    @Test func aLogFileThatCannotBeReopenedIsReportedOnRanksAndInTheSupervisorsLog() throws {
        let fleet = try Self.fleet(ranks: 1, ["--log-max-bytes", "65536", "--log-backups", "1"],
                                   workerArgs: ["--flood-log"])
        defer { fleet.terminate() }
        #expect(fleet.waitAllReady(count: 1), "\(fleet.output)")
        #expect(fleet.rank(0)?["logProblem"] == nil)

        // The rank's log folder becomes a file: the next rotation cannot reopen worker.log.
        let directory = fleet.logDirectory + "/log_0"
        try FileManager.default.moveItem(atPath: directory, toPath: directory + ".away")
        #expect(FileManager.default.createFile(atPath: directory, contents: Data()))
        let problem = "cannot reopen \(directory)/worker.log after rotation: Not a directory"
        #expect(waitUntil { fleet.rank(0)?["logProblem"] as? String == problem }, "\(fleet.ranks())")
        #expect(waitUntil {
            fleet.output.contains("rank 0: \(problem); its output is dropped, and every write tries again")
        }, "\(fleet.output)")

        // The folder is back: writing resumes, and the problem is cleared.
        try FileManager.default.removeItem(atPath: directory)
        try FileManager.default.moveItem(atPath: directory + ".away", toPath: directory)
        #expect(waitUntil { fleet.rank(0) != nil && fleet.rank(0)?["logProblem"] == nil }, "\(fleet.ranks())")
        #expect(waitUntil { fleet.output.contains("rank 0: writing \(directory)/worker.log again") }, "\(fleet.output)")
        #expect(waitUntil { FileManager.default.fileExists(atPath: directory + "/worker.log.1") })
        #expect(fleet.state(0) == "ready")
        #expect(fleet.rank(0)?["restarts"] as? Int == 0)
    }
}
