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
    /// Documentation= man pages can be opened: each unit of Examples/systemd (the supervisor's,
    /// the router's, the prefill and decode fleets') is copied with ExecStart pointing at an
    /// existing program and MANPATH at this package's man pages.
    @Test func everyUnitPassesSystemdAnalyzeVerify() throws {
        let folder = NSTemporaryDirectory() + "tandem-unit-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try FileManager.default.createDirectory(atPath: folder + "/man/man1", withIntermediateDirectories: true)
        for page in try FileManager.default.contentsOfDirectory(atPath: packageRoot + "/Man") where page.hasSuffix(".1") {
            try FileManager.default.copyItem(atPath: packageRoot + "/Man/" + page, toPath: folder + "/man/man1/" + page)
        }
        let units = try FileManager.default.contentsOfDirectory(atPath: packageRoot + "/Examples/systemd")
            .filter { $0.hasSuffix(".service") }.sorted()
        #expect(units == ["multi-api-server.service", "tandem-decode.service", "tandem-prefill.service", "tandem-router.service"])
        for name in units {
            let unit = try String(contentsOfFile: packageRoot + "/Examples/systemd/" + name, encoding: .utf8)
                .replacing(#/ExecStart=/usr/local/bin/[a-z-]+ /#, with: "ExecStart=/bin/true ")
            #expect(unit.contains("ExecStart=/bin/true "), "\(name) does not start a program from /usr/local/bin")
            try unit.write(toFile: folder + "/" + name, atomically: true, encoding: .utf8)
            let result = try runProcess("/usr/bin/systemd-analyze", ["verify", folder + "/" + name],
                                        environment: ["MANPATH": folder + "/man"])
            let output = result.stdout + result.stderr
            #expect(result.status == 0, "systemd-analyze verify \(name) failed:\n\(output)")
            let complaints = output.split(separator: "\n").filter {
                $0.contains(name) || $0.contains("tandem") || $0.lowercased().contains("error")
            }
            #expect(complaints.isEmpty, "systemd-analyze verify complained about \(name):\n\(output)")
        }
    }
}
