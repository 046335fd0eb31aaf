import ArgumentParser
import AsyncHTTPClient
import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOPosix
import PDProtocol
import ServiceLifecycle
import SplitwiseScheduler

/// `router`: one OpenAI endpoint in front of api-server instances, mixed ones or prefill and
/// decode pairs (FastDeploy's router, sglang-router's and vllm-router's flags where they have one).
public struct RouterCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "router",
        abstract: "Route OpenAI requests to api-server instances: mixed workers, or prefill-decode pairs with --splitwise.",
        discussion: """
            Workers register themselves (POST /register, repeated as a heartbeat) or are given with --worker-urls, \
            --prefill, --decode or --cluster-config. A worker URL may carry its other ports as query parameters: \
            http://HOST:PORT?engine_worker_queue_port=P&pd_comm_port=P&cache_queue_port=P&transfer_protocol=ipc,tcp. \
            Exit status 78 means a configuration error.
            """)

    @Option(help: "Address the router listens on.")
    var host = "127.0.0.1"

    @Option(help: "Port of the router (OpenAI API, registration, health, metrics).")
    var port = 8109

    @Flag(help: "Prefill-decode disaggregation: send each request to a prefill and a decode instance (mixed workers still serve when no pair is available).")
    var splitwise = false

    @Option(help: ArgumentHelp("A prefill instance (repeatable; needs --splitwise).", valueName: "url"))
    var prefill: [String] = []

    @Option(help: ArgumentHelp("A decode instance (repeatable; needs --splitwise).", valueName: "url"))
    var decode: [String] = []

    @Option(help: ArgumentHelp("Mixed instances, comma separated (repeatable).", valueName: "urls"))
    var workerUrls: [String] = []

    @Option(help: ArgumentHelp("A JSON file listing prefill, decode and mixed instances (hosts, ports, devices).", valueName: "file"))
    var clusterConfig: String?

    @Option(help: "Require 'Authorization: Bearer <token>' on /register, /deregister, POST /workers and DELETE /workers.")
    var registerToken: String?

    @Option(help: "Policy for mixed workers, and the default for prefill and decode: round_robin, random, power_of_two, least_requests, free_kv_first, cache_aware, fewest_queued, bucket.")
    var policy = PolicyName.roundRobin

    @Option(help: "Policy for prefill instances (default: --policy).")
    var prefillPolicy: PolicyName?

    @Option(help: "Policy for decode instances (default: --policy; bucket is for prefill only).")
    var decodePolicy: PolicyName?

    @Option(help: "Ascend's names for the prefill policy: RoundRobin, FreeKVFirst, BLB (fewest queued requests).")
    var prefillRoutingPolicy: AscendPrefillPolicy?

    @Option(help: "cache_aware: share of a prompt's prefix blocks a worker must hold to be preferred (0-1).")
    var cacheThreshold = 0.5

    @Option(help: "cache_aware: characters per prefix block (the router hashes text: it has no tokenizer).")
    var cacheBlockChars = 64

    @Option(help: "cache_aware: the load is imbalanced when the busiest worker has this many more requests than the least busy...")
    var balanceAbsThreshold = 32

    @Option(help: "...and more than this factor times its requests; then the least busy worker is chosen.")
    var balanceRelThreshold = 1.5

    @Option(help: "bucket: prompt-length boundaries in characters, comma separated (n boundaries, n+1 buckets).")
    var bucketBoundaries = "1024,4096"

    @Option(help: "Seconds between health checks of each worker.")
    var healthCheckInterval: Double = 5

    @Option(help: "Seconds a health check (GET /health) may take.")
    var healthCheckTimeout: Double = 2

    @Option(help: "Consecutive failed health checks that take a worker out of the table.")
    var healthFailureThreshold = 3

    @Option(help: "Consecutive passed health checks that bring a worker back.")
    var healthSuccessThreshold = 2

    @Option(help: "Most requests relayed at once; more wait in a queue (0: no limit).")
    var maxConcurrentRequests = 0

    @Option(help: "Most requests waiting for a slot; more are refused with 429.")
    var queueSize = 100

    @Option(help: "Seconds a request may wait for a slot before it is refused with 408.")
    var queueTimeout: Double = 60

    @Option(help: "Seconds a request may take from the router to the end of its response.")
    var requestTimeout: Double = 600

    @Option(help: "Retries of a request that has sent no token yet, each on another instance.")
    var retryMaxRetries = 3

    @Option(help: "Delay before the first retry, in milliseconds.")
    var retryInitialBackoffMs = 50

    @Option(help: "Longest delay between retries, in milliseconds.")
    var retryMaxBackoffMs = 2000

    @Option(help: "Factor between successive retry delays.")
    var retryBackoffMultiplier = 2.0

    @Option(help: "Random spread of each retry delay, as a fraction of it (0-1).")
    var retryJitterFactor = 0.2

    @Option(help: "Consecutive failed requests that open a worker's circuit breaker.")
    var cbFailureThreshold = 5

    @Option(help: "Successful trial requests that close a half-open circuit breaker.")
    var cbSuccessThreshold = 2

    @Option(help: "Seconds an open circuit breaker keeps its worker out before a trial request.")
    var cbTimeout: Double = 10

    @Option(help: "Largest request body in bytes; larger ones are refused with 413.")
    var maxBodyBytes = 8 << 20

    @Option(help: "Event loop threads (they also run the router's tasks). Default: the CPUs.")
    var threads: Int?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel = "info"

    @OptionGroup(title: "Splitwise scheduler (FastDeploy's flags; with splitwise the workers are found in {topic}.cluster)")
    var scheduling: SchedulerClusterOptions

    public init() {}

    public func validate() throws {
        func check(_ ok: Bool, _ message: String) throws { if !ok { throw ValidationError(message) } }
        try check((1...65535).contains(port), "--port must be a port number (1-65535)")
        try check(splitwise || (prefill.isEmpty && decode.isEmpty), "--prefill and --decode need --splitwise")
        try check(prefillRoutingPolicy == nil || prefillPolicy == nil, "give --prefill-policy or --prefill-routing-policy, not both")
        try check((decodePolicy ?? policy) != .bucket, "bucket routes prefill instances by prompt length: use it with --prefill-policy")
        try check(policy != .bucket || splitwise, "bucket routes prefill instances: use --splitwise --prefill-policy bucket")
        try check((0...1).contains(cacheThreshold), "--cache-threshold must be in 0...1")
        try check(cacheBlockChars >= 1, "--cache-block-chars must be at least 1")
        try check(balanceAbsThreshold >= 0 && balanceRelThreshold >= 1, "--balance-abs-threshold must be 0 or more and --balance-rel-threshold at least 1")
        _ = try boundaries()
        try check(healthCheckInterval > 0 && healthCheckTimeout > 0, "--health-check-interval and --health-check-timeout must be more than 0")
        try check(healthFailureThreshold >= 1 && healthSuccessThreshold >= 1, "--health-failure-threshold and --health-success-threshold must be at least 1")
        try check(maxConcurrentRequests >= 0 && queueSize >= 0, "--max-concurrent-requests and --queue-size must be 0 or more")
        try check(queueTimeout > 0 && requestTimeout > 0, "--queue-timeout and --request-timeout must be more than 0")
        try check(retryMaxRetries >= 0 && retryInitialBackoffMs >= 0 && retryMaxBackoffMs >= retryInitialBackoffMs,
                  "--retry-max-retries and --retry-initial-backoff-ms must be 0 or more, --retry-max-backoff-ms at least the initial backoff")
        try check(retryBackoffMultiplier >= 1 && (0...1).contains(retryJitterFactor), "--retry-backoff-multiplier must be at least 1 and --retry-jitter-factor in 0...1")
        try check(cbFailureThreshold >= 1 && cbSuccessThreshold >= 1 && cbTimeout > 0, "--cb-failure-threshold and --cb-success-threshold must be at least 1, --cb-timeout more than 0")
        try check(maxBodyBytes >= 1024, "--max-body-bytes must be at least 1024")
        try check(threads.map { $0 >= 1 } ?? true, "--threads must be at least 1")
        try check(Logger.Level(rawValue: logLevel) != nil, "--log-level '\(logLevel)' is not one of trace, debug, info, notice, warning, error, critical")
        _ = try staticWorkers()
    }

    func boundaries() throws -> [Int] {
        try bucketBoundaries.split(separator: ",").map {
            guard let value = Int($0.trimmingCharacters(in: .whitespaces)), value > 0 else {
                throw ValidationError("--bucket-boundaries '\(bucketBoundaries)' must be positive lengths separated by commas")
            }
            return value
        }
    }

    /// Workers from --worker-urls, --prefill, --decode and --cluster-config.
    func staticWorkers() throws -> [WorkerRegistration] {
        do {
            var workers = try workerUrls.flatMap { $0.split(separator: ",") }.map {
                try StaticWorker.parse(String($0).trimmingCharacters(in: .whitespaces), role: .mixed)
            }
            workers += try prefill.map { try StaticWorker.parse($0, role: .prefill) }
            workers += try decode.map { try StaticWorker.parse($0, role: .decode) }
            if let clusterConfig { workers += try ClusterConfig.load(path: clusterConfig).workers }
            if !splitwise, let pd = workers.first(where: { $0.role != .mixed }) {
                throw ValidationError("\(pd.url) is a \(pd.role.rawValue) instance: prefill and decode instances need --splitwise")
            }
            return workers
        } catch let failure as ClusterConfig.Failure {
            throw ValidationError(failure.description)
        }
    }

    var policySettings: PolicySettings {
        var settings = PolicySettings()
        settings.cacheThreshold = cacheThreshold
        settings.cacheBlockChars = cacheBlockChars
        settings.balanceAbsThreshold = balanceAbsThreshold
        settings.balanceRelThreshold = balanceRelThreshold
        settings.bucketBoundaries = (try? boundaries()) ?? settings.bucketBoundaries
        return settings
    }

    var relaySettings: RelaySettings {
        var settings = RelaySettings()
        settings.splitwise = splitwise
        settings.requestTimeout = .milliseconds(Int64(requestTimeout * 1000))
        settings.retry = RetryBackoff(maxRetries: retryMaxRetries, initial: .milliseconds(retryInitialBackoffMs),
                                      maximum: .milliseconds(retryMaxBackoffMs), multiplier: retryBackoffMultiplier,
                                      jitter: retryJitterFactor)
        settings.maxBodyBytes = maxBodyBytes
        return settings
    }

    /// The program's entry point: flag and configuration errors exit 78 (EX_CONFIG); `--help` exits 0.
    public static func runAsMain() async {
        let command: RouterCommand
        do {
            command = try parse()
        } catch {
            if exitCode(for: error) == .success { exit(withError: error) }
            FileHandle.standardError.write(Data("router: \(fullMessage(for: error))\n".utf8))
            Foundation.exit(78)
        }
        // Swift concurrency runs on NIO's event loop threads: a relayed request then does not
        // hop between the concurrency pool and the loops of the server and of the client to the
        // worker. Done before any task runs, on the main thread, as NIO requires.
        if let threads = command.threads { NIOSingletons.groupLoopCountSuggestion = threads }
        NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
        do {
            try await command.serve()
        } catch let error as ConfigurationError {
            FileHandle.standardError.write(Data("router: \(error.message)\n".utf8))
            Foundation.exit(78)
        } catch {
            FileHandle.standardError.write(Data("router: \(error)\n".utf8))
            Foundation.exit(1)
        }
    }

    struct ConfigurationError: Error {
        var message: String
    }

    /// With `--scheduler-name splitwise`: the cluster hash's reader, once Redis answered (a
    /// Redis that cannot serve is a configuration error, as for api-server).
    func clusterReader() async throws -> RedisClient? {
        guard scheduling.schedulerName == .splitwise else { return nil }
        let redis = RedisClient(address: scheduling.address, timeout: .seconds(2), label: "discovery")
        do {
            _ = try await redis.checkVersion()
        } catch {
            throw ConfigurationError(message: SchedulerClusterOptions.startupProblem(error, address: scheduling.address))
        }
        return redis
    }

    func serve() async throws {
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        var routerLogger = Logger(label: "router")
        routerLogger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        let logger = routerLogger
        var quietLogger = logger
        quietLogger.logLevel = .warning

        var httpConfiguration = HTTPClient.Configuration()
        httpConfiguration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 4096)
        httpConfiguration.timeout = .init(connect: .seconds(5))
        httpConfiguration.redirectConfiguration = .disallow
        httpConfiguration.decompression = .disabled
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: httpConfiguration)

        let table = WorkerTable(failureThreshold: healthFailureThreshold, successThreshold: healthSuccessThreshold,
                                breaker: .init(failureThreshold: cbFailureThreshold, successThreshold: cbSuccessThreshold,
                                               openDuration: .milliseconds(Int64(cbTimeout * 1000))))
        for worker in try staticWorkers() { table.upsert(worker, source: .configured, admitted: false) }
        let settings = policySettings
        let prefillName = prefillRoutingPolicy?.policyName ?? prefillPolicy ?? policy
        let redis = try await clusterReader()
        let metrics = RouterMetrics(scheduler: redis != nil)
        let admission = AdmissionQueue(settings: .init(maxConcurrent: maxConcurrentRequests, maxWaiting: queueSize,
                                                       queueTimeout: .milliseconds(Int64(queueTimeout * 1000))))
        let client = WorkerClient(http: http)
        let upstream = UpstreamClient(connectTimeout: .seconds(5))
        let relay = Relay(table: table, upstream: upstream, workers: client, mixedPolicy: policy.make(settings: settings),
                          prefillPolicy: prefillName.make(settings: settings),
                          decodePolicy: (decodePolicy ?? policy).make(settings: settings), admission: admission,
                          metrics: metrics, settings: relaySettings, logger: logger)
        let healthTimeout = Duration.milliseconds(Int64(healthCheckTimeout * 1000))

        let router = Router()
        RouterRoutes(relay: relay, splitwise: splitwise).add(to: router)
        let registrations = RegistrationRoutes(table: table, client: client, token: registerToken, healthTimeout: healthTimeout,
                                               logger: logger)
        registrations.add(to: router)
        let (host, port, mode, policyName) = (host, port, splitwise ? "splitwise" : "mixed", policy.rawValue)
        // The relayed routes are answered in each connection's pipeline, before Hummingbird.
        let application = Application(router: router,
                                      server: .http1(configuration: .init(additionalChannelHandlers: [RelayChannelHandler(relay: relay)])),
                                      configuration: .init(address: .hostname(host, port: port), serverName: "router"),
                                      onServerRunning: { _ in
                                          logger.info("routing on http://\(host):\(port) (\(mode), policy \(policyName))")
                                      },
                                      logger: quietLogger)
        let checker = HealthChecker(table: table, client: client, interval: .milliseconds(Int64(healthCheckInterval * 1000)),
                                    timeout: healthTimeout, logger: logger)
        var services: [any Service] = [application, checker]
        if let redis {
            logger.info("workers from \(SchedulerKeys.cluster(topic: scheduling.schedulerTopic)) at \(redis.address.description)")
            services.append(ClusterDiscovery(redis: redis, topic: scheduling.schedulerTopic, syncPeriod: scheduling.syncPeriod,
                                             expirePeriod: scheduling.expirePeriod, registrations: registrations, metrics: metrics,
                                             logger: logger))
        }
        let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint],
                                                      logger: quietLogger))
        do {
            try await group.run()
        } catch {
            upstream.shutdown()
            try? await http.shutdown()
            throw error
        }
        upstream.shutdown()
        try await http.shutdown()
        logger.info("stopped")
    }
}
