import FleetPlanning
import Foundation
import Testing

/// The package root, found from this file's path (Tests/FleetPlanningTests/…).
private let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path

private func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

@Suite struct ManPageTests {
    @Test func everyFlagInTheHelpIsInTheManPage() throws {
        let help = SupervisorOptions.helpMessage(columns: 10_000)
        let flags = Set(help.matches(of: /--[a-z][a-z-]*[a-z]/).map { String($0.output) })
        #expect(flags.count >= 25)
        #expect(flags.contains("--numa-bind") && flags.contains("--args") && flags.contains("--crash-loop-window"))
        let manPage = try String(contentsOfFile: packageRoot + "/Man/multi-api-server.1", encoding: .utf8)
            .replacingOccurrences(of: "\\-", with: "-")
        for flag in flags.sorted() {
            #expect(manPage.contains(flag), "\(flag) is in --help but not in Man/multi-api-server.1")
        }
    }

    @Test func everyFlagOfTheTestWorkerIsInItsManPage() throws {
        let worker = URL(fileURLWithPath: FleetPlanner.runningExecutablePath()).deletingLastPathComponent()
            .appendingPathComponent("tandem-test-worker").path
        let (status, help) = try run(worker, ["--help"])
        #expect(status == 0)
        let flags = Set(help.matches(of: /--[a-z][a-z-]*[a-z]/).map { String($0.output) })
        #expect(flags.count >= 16)
        #expect(flags.contains("--fault-rank") && flags.contains("--rdma-comm-ports"))
        let manPage = try String(contentsOfFile: packageRoot + "/Man/tandem-test-worker.1", encoding: .utf8)
            .replacingOccurrences(of: "\\-", with: "-")
        for flag in flags.sorted() {
            #expect(manPage.contains(flag), "\(flag) is in --help but not in Man/tandem-test-worker.1")
        }
    }
}

@Suite(.serialized) struct SystemdUnitTests {
    let unitPath = packageRoot + "/Examples/systemd/multi-api-server.service"

    @Test func theUnitHasTheSupervisorSettings() throws {
        let unit = try String(contentsOfFile: unitPath, encoding: .utf8)
        for line in ["Type=notify", "NotifyAccess=main", "KillMode=mixed", "Restart=on-failure",
                     "RestartPreventExitStatus=78", "WatchdogSec=10"] {
            #expect(unit.split(separator: "\n").contains { $0 == line }, "missing \(line)")
        }
        #expect(unit.contains("ExecStart=/usr/local/bin/multi-api-server "))
    }

    /// `systemd-analyze verify` checks that ExecStart's program exists and that the
    /// Documentation= man page can be opened: the copy points ExecStart at an existing
    /// program and MANPATH at this package's man page.
    @Test func theUnitPassesSystemdAnalyzeVerify() throws {
        let folder = NSTemporaryDirectory() + "tandem-unit-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try FileManager.default.createDirectory(atPath: folder + "/man/man1", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: packageRoot + "/Man/multi-api-server.1",
                                         toPath: folder + "/man/man1/multi-api-server.1")
        let unit = try String(contentsOfFile: unitPath, encoding: .utf8)
            .replacingOccurrences(of: "ExecStart=/usr/local/bin/multi-api-server ", with: "ExecStart=/bin/true ")
        try unit.write(toFile: folder + "/multi-api-server.service", atomically: true, encoding: .utf8)

        let result = try run("/usr/bin/systemd-analyze", ["verify", folder + "/multi-api-server.service"],
                             environment: ["MANPATH": folder + "/man"])
        #expect(result.status == 0, "systemd-analyze verify failed:\n\(result.output)")
        let complaints = result.output.split(separator: "\n").filter { $0.contains("multi-api-server") || $0.lowercased().contains("error") }
        #expect(complaints.isEmpty, "systemd-analyze verify complained:\n\(result.output)")
    }
}
