import ArgumentParser
import FleetPlanning
import Foundation
import Logging

/// `multi-api-server`: plans a fleet of data-parallel API server ranks from the command line,
/// the environment and the host, then runs it until SIGTERM/SIGINT.
public struct MultiAPIServer: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "multi-api-server",
        abstract: "Run one API server per data-parallel rank: split devices, plan ports, spawn, health-check and restart them.")

    @OptionGroup public var options: SupervisorOptions

    public init() {}

    /// The program's entry point (for a `main.swift`: ArgumentParser's own static `main()`
    /// resolves to its synchronous variant there, which refuses async commands).
    public static func runAsMain() async {
        do {
            let command = try parse()
            try await command.run()
        } catch {
            exit(withError: error)
        }
    }

    public func run() async throws {
        let plan: FleetPlan
        do {
            plan = try FleetPlanner().plan(options)
        } catch {
            // Nothing has been started: a planning error is a configuration error.
            FileHandle.standardError.write(Data("multi-api-server: \(error.message)\n".utf8))
            throw ExitCode(78)
        }
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        var logger = Logger(label: "multi-api-server")
        logger.logLevel = .info
        let status = await FleetRunner.run(plan: plan, logger: logger)
        if status != 0 { throw ExitCode(status) }
    }
}
