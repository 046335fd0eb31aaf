import FleetPlanning
import Foundation
import Glibc
import Testing
import TestSupport

/// Integration tests: the built multi-api-server supervising real tandem-test-worker
/// processes over real sockets. Each test waits for the state it needs (waitUntil), with a
/// deadline that only bounds a wait for what never comes.
@Suite(.serialized) struct FleetTests {
    /// Fast health and restart settings so faults are seen in seconds.
    static let quick = [
        "--health-interval", "0.2", "--health-timeout", "0.5", "--health-failure-threshold", "3", "--startup-grace", "10",
        "--restart-backoff", "0.1", "--restart-backoff-max", "2", "--shutdown-timeout", "5",
    ]

    static func fleet(ranks: Int, _ extra: [String] = [], workerArgs: [String] = [], environment: [String: String] = [:]) throws -> Fleet {
        try Fleet(arguments: ["--num-servers", "\(ranks)"] + quick + extra + (workerArgs.isEmpty ? [] : ["--args"] + workerArgs),
                  environment: environment)
    }

    @Test func killedRankAloneRestartsOnItsOwnPortsWhileOthersServe() throws {
        let fleet = try Self.fleet(ranks: 2)
        defer { fleet.terminate() }
        #expect(fleet.waitAllReady(count: 2), "\(fleet.output)")
        let before = fleet.ranks()
        let port0 = try #require(fleet.apiPort(ofRank: 0))
        let pid0 = try #require(fleet.pid(ofRank: 0))
        let pid1 = try #require(fleet.pid(ofRank: 1))

        // Rank 0 must answer throughout rank 1's death and restart: asked at every poll.
        var failures = 0
        kill(pid_t(pid1), SIGKILL)
        let restarted = waitUntil {
            if httpGet(port: port0, path: "/health")?.status != 200 { failures += 1 }
            guard let rank = fleet.rank(1), let pid = rank["pid"] as? Int else { return false }
            return pid != pid1 && rank["state"] as? String == "ready"
        }
        #expect(restarted, "\(fleet.output)")
        let after = fleet.ranks()
        #expect(fleet.pid(ofRank: 0) == pid0)
        #expect(fleet.rank(0)?["restarts"] as? Int == 0)
        #expect(fleet.rank(1)?["restarts"] as? Int == 1)
        #expect(fleet.rank(1)?["lastExit"] as? String == "signal 9 (SIGKILL)")
        for index in 0..<2 {
            #expect(NSDictionary(dictionary: after[index]["ports"] as? [String: Any] ?? [:])
                == NSDictionary(dictionary: before[index]["ports"] as? [String: Any] ?? [:]))
        }
        #expect(failures == 0)
        #expect(fleet.health()?.status == 200)
        let metrics = httpGet(port: fleet.controlPort, path: "/metrics")?.body ?? ""
        #expect(metrics.contains("tandem_rank_restarts_total{rank=\"1\"} 1\n"), "\(metrics)")
        #expect(metrics.contains("tandem_rank_restarts_total{rank=\"0\"} 0\n"))
        #expect(metrics.contains("tandem_ranks_up 2.0\n"))
        #expect(metrics.contains("tandem_health_check_duration_seconds_count "))
    }

    @Test func killingTheSupervisorTakesEveryWorkerWithIt() throws {
        let fleet = try Self.fleet(ranks: 2)
        defer { fleet.terminate() }
        #expect(fleet.waitAllReady(count: 2), "\(fleet.output)")
        #expect(fleetProcesses(tag: fleet.tag).count == 3)
        kill(pid_t(fleet.pid), SIGKILL)
        let gone = waitUntil { fleetProcesses(tag: fleet.tag).isEmpty }
        #expect(gone, "still alive: \(fleetProcesses(tag: fleet.tag))")
    }

    @Test func stoppedRankIsDetectedKilledAndReplaced() throws {
        let fleet = try Self.fleet(ranks: 2)
        defer { fleet.terminate() }
        #expect(fleet.waitAllReady(count: 2), "\(fleet.output)")
        let pid1 = try #require(fleet.pid(ofRank: 1))
        kill(pid_t(pid1), SIGSTOP)
        let replaced = waitUntil {
            guard let rank = fleet.rank(1), let pid = rank["pid"] as? Int else { return false }
            return pid != pid1 && rank["state"] as? String == "ready"
        }
        #expect(replaced, "\(fleet.output)")
        let lastExit = fleet.rank(1)?["lastExit"] as? String ?? ""
        #expect(lastExit.hasPrefix("signal 9 (SIGKILL) (killed by the supervisor: 3 failed health checks"), "\(lastExit)")
        #expect(!processExists(pid1))
    }

    @Test func crashLoopBacksOffThenMarksTheRankFailedAndTheRestServes() throws {
        let fleet = try Self.fleet(ranks: 2, ["--crash-loop-restarts", "4", "--crash-loop-window", "120"],
                                   workerArgs: ["--crash-after", "0.3", "--fault-rank", "1"])
        defer { fleet.terminate() }
        let failed = waitUntil { fleet.state(1) == "failed" }
        #expect(failed, "\(fleet.output)")
        #expect(fleet.rank(1)?["detail"] as? String == "crash loop: 4 deaths within 120s")
        #expect(fleet.rank(1)?["restarts"] as? Int == 3)
        // Backoff grows: the delays the supervisor wrote into rank 1's log.
        let log = (try? String(contentsOfFile: fleet.logDirectory + "/log_1/worker.log", encoding: .utf8)) ?? ""
        let delays = log.split(separator: "\n").compactMap { line -> Double? in
            guard let range = line.range(of: "restarting in ") else { return nil }
            return Double(line[range.upperBound...].dropLast())
        }
        #expect(delays.count == 3, "\(log)")
        #expect(zip(delays, delays.dropFirst()).allSatisfy { $0 < $1 }, "\(delays)")
        // The supervisor stays up and rank 0 keeps serving.
        #expect(fleet.process.isRunning)
        #expect(fleet.state(0) == "ready")
        let port0 = try #require(fleet.apiPort(ofRank: 0))
        #expect(httpGet(port: port0, path: "/health")?.status == 200)
        let health = fleet.health()
        #expect(health?.status == 503)
        #expect(health?.body.contains("\"state\":\"failed\"") == true)
    }

    @Test func exitStatus78IsNotRestarted() throws {
        let fleet = try Self.fleet(ranks: 2, workerArgs: ["--exit-code", "78", "--fault-rank", "1"])
        defer { fleet.terminate() }
        #expect(waitUntil { fleet.state(1) == "failed" && fleet.state(0) == "ready" }, "\(fleet.output)")
        #expect(fleet.rank(1)?["detail"] as? String == "exit status 78 (bad configuration): not restarted")
        #expect(fleet.rank(1)?["lastExit"] as? String == "exit status 78")
        // Ten more rounds of health checks (2 s of the supervisor's loop at --health-interval
        // 0.2, twenty times the restart backoff): time for any restart to have begun.
        let probesSoFar = try #require(fleet.healthChecks())
        #expect(waitUntil { (fleet.healthChecks() ?? 0) >= probesSoFar + 10 })
        #expect(fleet.rank(1)?["restarts"] as? Int == 0)
        #expect(fleet.state(1) == "failed")
        #expect(fleet.process.isRunning)
    }

    @Test func portAlreadyTakenIsAClearErrorAndNothingStarts() throws {
        let free = try freeLoopbackPort()
        let holder = try HeldPort()
        defer { withExtendedLifetime(holder) {} }
        let ports = (free, holder.port)
        let fleet = try Self.fleet(ranks: 2, ["--ports", "\(ports.0),\(ports.1)"])
        defer { fleet.terminate() }
        #expect(fleet.waitForExit() == 78)
        #expect(fleet.output.contains("rank 1") && fleet.output.contains("api") && fleet.output.contains("\(ports.1)"), "\(fleet.output)")
        #expect(fleetProcesses(tag: fleet.tag).isEmpty)
        #expect(!FileManager.default.fileExists(atPath: fleet.logDirectory + "/log_0/worker.log"))
    }

    @Test func workerThatFailsToExecIsAClearErrorAndNothingKeepsRunning() throws {
        // Executable, but its interpreter does not exist: execve fails in the child, after fork.
        let path = NSTemporaryDirectory() + "tandem-bad-interpreter-\(UUID().uuidString.prefix(8))"
        _ = FileManager.default.createFile(atPath: path, contents: Data("#!/nonexistent/interpreter\n".utf8),
                                       attributes: [.posixPermissions: 0o755])
        defer { try? FileManager.default.removeItem(atPath: path) }
        let fleet = try Fleet(arguments: ["--num-servers", "2"] + Self.quick, workerBinary: path)
        defer { fleet.terminate() }
        #expect(fleet.waitForExit() == 78)
        #expect(fleet.output.contains("rank 0: cannot execute \(path): No such file or directory"), "\(fleet.output)")
        #expect(fleetProcesses(tag: fleet.tag).isEmpty)
    }

    @Test func systemdNotificationsAndCleanChildEnvironment() throws {
        let notify = NotifySocket()
        let fleet = try Self.fleet(ranks: 2, environment: [
            "NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "400000", "LISTEN_FDS": "0",
        ])
        defer { fleet.terminate() }
        #expect(fleet.waitAllReady(count: 2), "\(fleet.output)")
        #expect(waitUntil { notify.messages().contains("READY=1") })
        #expect(waitUntil { notify.messages().filter { $0 == "WATCHDOG=1" }.count >= 3 })
        let messages = notify.messages()
        #expect(messages.contains("STATUS=2/2 ranks ready"), "\(messages)")
        #expect(messages.contains { $0.hasPrefix("STATUS=0/2 ranks ready; rank 0 starting") }, "\(messages)")
        #expect(messages.contains { $0.hasPrefix("EXTEND_TIMEOUT_USEC=") }, "\(messages)")

        let pid0 = try #require(fleet.pid(ofRank: 0))
        let environ = FileManager.default.contents(atPath: "/proc/\(pid0)/environ").map {
            $0.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        } ?? []
        #expect(!environ.isEmpty)
        #expect(!environ.contains { $0.hasPrefix("NOTIFY_SOCKET=") || $0.hasPrefix("WATCHDOG_") || $0.hasPrefix("LISTEN_") }, "\(environ)")
        #expect(environ.contains("TANDEM_RANK=0"))

        kill(pid_t(fleet.pid), SIGTERM)
        #expect(fleet.waitForExit() == 0)
        #expect(notify.messages().contains("STOPPING=1"))
    }

    /// Each rank runs on the CPUs the planner gives it on this machine (node 0's allowed CPUs,
    /// split between the ranks), in this process's cpuset, with its memory bound to node 0.
    @Test func ranksArePinnedToThePlannedCPUsAndBoundToNode0() throws {
        let placement = ["--numa-bind", "0"]
        let fleet = try Self.fleet(ranks: 2, placement)
        defer { fleet.terminate() }
        #expect(fleet.waitAllReady(count: 2), "\(fleet.output)")
        let plan = try FleetPlanner().plan(SupervisorOptions.parse(["--worker-binary", "/bin/true", "--num-servers", "2"] + placement))
        let ownStatus = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
        let ownMemoryNodes = try #require(ownStatus.split(separator: "\n").first { $0.hasPrefix("Mems_allowed_list:") })
        for rank in plan.ranks {
            let cpus = try #require(rank.cpus, "rank \(rank.rank) is not pinned: \(rank)")
            #expect(rank.numaNodes == [0])
            #expect(fleet.rank(rank.rank)?["cpus"] as? [Int] == cpus)
            let pid = try #require(fleet.pid(ofRank: rank.rank))
            let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
            #expect(status.contains("Cpus_allowed_list:\t\(CPUList.format(cpus))\n"), "\(status)")
            #expect(status.contains(ownMemoryNodes + "\n"), "\(status)")
            // The memory policy itself (Mems_allowed_list is the cpuset's): MPOL_BIND to node 0.
            let maps = try String(contentsOfFile: "/proc/\(pid)/numa_maps", encoding: .utf8)
            #expect(maps.contains(" bind:0 "), "\(maps.prefix(300))")
        }
        #expect(Set(plan.ranks.compactMap(\.cpus).joined()).count == plan.ranks.compactMap(\.cpus).joined().count)
    }

    @Test func gracefulStopEndsEveryRankWithinTheTimeout() throws {
        let fleet = try Self.fleet(ranks: 2)
        defer { fleet.terminate() }
        #expect(fleet.waitAllReady(count: 2), "\(fleet.output)")
        let pids = (0..<2).compactMap { fleet.pid(ofRank: $0) }
        // A stopped (SIGSTOP) rank must still be stopped cleanly: by SIGTERM, without the
        // SIGKILL the supervisor sends (and logs) to a rank still running after the timeout.
        kill(pid_t(pids[1]), SIGSTOP)
        kill(pid_t(fleet.pid), SIGTERM)
        #expect(fleet.waitForExit() == 0, "\(fleet.output)")
        #expect(fleet.output.contains("all ranks stopped"), "\(fleet.output)")
        #expect(!fleet.output.contains("still running after"), "\(fleet.output)")
        #expect(pids.allSatisfy { !processExists($0) })
        #expect(fleetProcesses(tag: fleet.tag).isEmpty)
    }

    @Test func logFloodRotatesWithinTheCapAndTheSupervisorKeepsAnswering() throws {
        let cap = 1 << 20
        let fleet = try Self.fleet(ranks: 2, ["--log-max-bytes", "\(cap)", "--log-backups", "2"],
                                   workerArgs: ["--flood-log", "--fault-rank", "1"])
        defer { fleet.terminate() }
        #expect(fleet.waitAllReady(count: 2), "\(fleet.output)")
        let directory = fleet.logDirectory + "/log_1"
        #expect(waitUntil { FileManager.default.fileExists(atPath: directory + "/worker.log.2") })
        // Through three more rotations (each replaces worker.log.1 with the file worker.log was),
        // the supervisor answers every health check and no file ever passes the cap. Rotation
        // renames worker.log away before reopening it, so a file may be missing for an instant.
        let attributes = { (name: String) in try? FileManager.default.attributesOfItem(atPath: directory + "/" + name) }
        let names = ["worker.log", "worker.log.1", "worker.log.2"]
        var lastRotated = attributes("worker.log.1")?[.systemFileNumber] as? UInt64
        var rotations = 0, unanswered = 0
        var oversized: [String] = []
        let rotated = waitUntil {
            if fleet.health()?.status != 200 { unanswered += 1 }
            for name in names {
                if let bytes = attributes(name)?[.size] as? Int, bytes > cap { oversized.append("\(name): \(bytes) bytes") }
            }
            if let file = attributes("worker.log.1")?[.systemFileNumber] as? UInt64, file != lastRotated {
                rotations += 1
                lastRotated = file
            }
            return rotations >= 3
        }
        #expect(rotated, "\(rotations) rotations")
        #expect(unanswered == 0)
        #expect(oversized.isEmpty, "\(oversized.count) times over the cap of \(cap) bytes, first: \(oversized.prefix(3))")
        #expect(!FileManager.default.fileExists(atPath: directory + "/worker.log.3"))
    }
}

extension Fleet {
    /// How many health checks of its ranks the supervisor has made so far (its /metrics).
    func healthChecks() -> Int? {
        let metrics = httpGet(port: controlPort, path: "/metrics")?.body ?? ""
        let prefix = "tandem_health_check_duration_seconds_count "
        return metrics.split(separator: "\n").first { $0.hasPrefix(prefix) }.flatMap { Double($0.dropFirst(prefix.count)) }.map { Int($0) }
    }
}
