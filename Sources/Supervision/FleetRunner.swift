import FleetPlanning
import Hummingbird
import Logging
import ServiceLifecycle

/// Runs a planned fleet until SIGTERM/SIGINT: the Supervisor and its control endpoint as
/// one ServiceGroup. On the signal the supervisor stops first (STOPPING=1, SIGTERM to every
/// rank, SIGKILL after the shutdown timeout), then the control endpoint.
public enum FleetRunner {
    /// Returns the process exit status: 0 after a clean stop; 78 (EX_CONFIG) when a worker
    /// could not be started as configured (nothing is left running); 1 when the control
    /// endpoint failed.
    public static func run(plan: FleetPlan, logger: Logger) async -> Int32 {
        let supervisor: Supervisor
        do {
            supervisor = try Supervisor(plan: plan, logger: logger)
        } catch {
            // The rank log folders could not be prepared: a configuration error, nothing started.
            logger.error("multi-api-server: \(error.description)")
            return 78
        }
        let control = ControlServer.application(supervisor: supervisor, host: plan.host, port: plan.controlPort, logger: logger)
        let group = ServiceGroup(configuration: .init(
            services: [.init(service: control), .init(service: SupervisorService(supervisor: supervisor))],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        do {
            try await group.run()
            return 0
        } catch let error as SupervisorError {
            logger.error("multi-api-server: \(error.description)")
            return 78
        } catch {
            logger.error("multi-api-server stopped: \(error)")
            return 1
        }
    }
}

/// The Supervisor as a service: start every rank, supervise until graceful shutdown, stop.
struct SupervisorService: Service {
    let supervisor: Supervisor

    func run() async throws {
        try await supervisor.start()
        await withGracefulShutdownHandler {
            _ = await supervisor.run()
        } onGracefulShutdown: {
            Task { await supervisor.requestStop() }
        }
    }
}
