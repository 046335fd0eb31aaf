import FleetPlanning
import Foundation
import Testing
import TestSupport

/// The package root, found from this file's path (Tests/FleetPlanningTests/…).
private let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path

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
        let result = try runProcess(try BuiltProducts.path("tandem-test-worker"), ["--help"])
        #expect(result.status == 0)
        let help = result.stdout
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

        let result = try runProcess("/usr/bin/systemd-analyze", ["verify", folder + "/multi-api-server.service"],
                                    environment: ["MANPATH": folder + "/man"])
        let output = result.stdout + result.stderr
        #expect(result.status == 0, "systemd-analyze verify failed:\n\(output)")
        let complaints = output.split(separator: "\n").filter { $0.contains("multi-api-server") || $0.lowercased().contains("error") }
        #expect(complaints.isEmpty, "systemd-analyze verify complained:\n\(output)")
    }
}
