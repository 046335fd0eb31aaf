import ArgumentParser
import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import PDProtocol

/// `api-server`'s flags for registering itself with a router.
public struct RouterRegistrationOptions: ParsableArguments {
    @Option(help: "Router to register with, HOST:PORT or http://HOST:PORT: POST /register once the engine is ready and then every --register-interval seconds; POST /deregister when draining. Default: none.")
    var router: String?

    @Option(help: "Token for the router's --register-token, sent as 'Authorization: Bearer <token>'. Default: $TANDEM_REGISTER_TOKEN.")
    var registerToken: String?

    @Option(help: "Seconds between registration heartbeats.")
    var registerInterval: Double = 5

    public init() {}

    public func validate() throws {
        guard registerInterval.isFinite, registerInterval > 0 else {
            throw ValidationError("--register-interval must be a number of seconds > 0, got \(registerInterval)")
        }
        if let router { _ = try Self.baseURL(router) }
    }

    static func baseURL(_ text: String) throws -> String {
        guard let url = RouterAddress.baseURL(text) else { throw ValidationError(RouterAddress.invalid(text)) }
        return url
    }

    /// The token from the flag, else from the environment (so it need not appear in `ps`).
    var token: String? {
        registerToken ?? ProcessInfo.processInfo.environment["TANDEM_REGISTER_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
    }
}

/// Keeps this instance in the router's table: `POST /register` with its `WorkerRegistration`
/// once the engine serves and then as a heartbeat (so a restarted router rebuilds its table),
/// `POST /deregister` once when it starts draining. A router that is down or answers an error
/// is logged and tried again at the next heartbeat; serving never depends on it.
actor RouterRegistrar {
    let routerURL: String
    let registration: WorkerRegistration
    private let token: String?
    private let interval: Duration
    private let state: ServerState
    private let logger: Logger
    private var heartbeat: Task<Void, Never>?
    /// The registration being sent, which a deregistration waits for, so the router never
    /// sees a heartbeat after the deregistration.
    private var inFlight: Task<Void, Never>?
    private var deregistered = false
    /// The last outcome logged: a heartbeat logs only when it changes.
    private var lastOutcome: String?

    init(routerURL: String, token: String?, interval: Duration, registration: WorkerRegistration, state: ServerState,
         logger: Logger) {
        self.routerURL = routerURL
        self.token = token
        self.interval = interval
        self.registration = registration
        self.state = state
        self.logger = logger
    }

    /// Starts the heartbeat (call once the engine is loaded).
    func start() {
        guard heartbeat == nil, !deregistered else { return }
        heartbeat = Task { await self.beat() }
    }

    private func beat() async {
        while !deregistered && !Task.isCancelled {
            switch state.phase {
            case .draining, .failed:
                await deregister()
                return
            case .serving where state.isHealthy:
                let body = (try? JSONEncoder().encode(registration)) ?? Data()
                let send = Task { await self.send("/register", body: body) }
                inFlight = send
                await send.value
                inFlight = nil
            case .serving, .loading:
                break // The engine loop has stopped or not started: the router would refuse it.
            }
            try? await Task.sleep(for: interval)
        }
    }

    /// Takes this instance out of the router, once; later heartbeats stop.
    func deregister() async {
        guard !deregistered else { return }
        deregistered = true
        heartbeat?.cancel()
        await inFlight?.value
        await send("/deregister", body: (try? JSONEncoder().encode(["url": registration.url])) ?? Data())
    }

    private func send(_ path: String, body: Data) async {
        let outcome: String
        do {
            var request = HTTPClientRequest(url: routerURL + path)
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
            request.body = .bytes(ByteBuffer(bytes: body))
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(Int64(max(2, interval.inSecondsRoundedUp))))
            let text = String(buffer: try await response.body.collect(upTo: 1 << 16))
            // 404 to a deregistration: the router no longer lists it (its supervisor took it out).
            let removed = path == "/deregister" && response.status.code == 404
            outcome = response.status.code == 200 || removed ? "ok" : "HTTP \(response.status.code): \(text)"
        } catch {
            outcome = "\(error)"
        }
        let what = path == "/register" ? "registration" : "deregistration"
        defer { lastOutcome = outcome }
        if outcome == "ok" {
            if path == "/deregister" || lastOutcome != "ok" {
                logger.info("router \(routerURL): \(what) of \(registration.url) (\(registration.role.rawValue)) accepted")
            }
        } else if outcome != lastOutcome || path == "/deregister" {
            logger.warning("router \(routerURL): \(what) of \(registration.url) failed: \(outcome)\(path == "/register" ? "; trying again every \(interval)" : "")")
        }
    }

    /// CPUs this process may run on (its devices on a CPU-only host), from the kernel's
    /// `Cpus_allowed_list` ("0-3,8").
    static func allowedCPUs() -> [Int] {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Cpus_allowed_list:") }) else { return [] }
        return line.dropFirst("Cpus_allowed_list:".count).split(separator: ",").flatMap { range -> [Int] in
            let bounds = range.split(separator: "-").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard let first = bounds.first, let last = bounds.last, first <= last else { return [] }
            return Array(first...last)
        }
    }
}

private extension Duration {
    var inSecondsRoundedUp: Int64 {
        let (seconds, attoseconds) = components
        return seconds + (attoseconds > 0 ? 1 : 0)
    }
}
