import ArgumentParser
import Engine
import EngineOptions
import ModelStore
import PDProtocol
import Foundation
import Hummingbird
import KVTransfer
import Logging
import PDProtocol
import ServiceLifecycle
import SplitwiseScheduler
import Tokenization

public enum KVCacheDataTypeOption: String, ExpressibleByArgument, CaseIterable, Sendable {
    case float32, float16

    /// nil when the engine cannot store this type.
    var dataType: KVCacheLayout.DataType? { KVCacheLayout.DataType(rawValue: rawValue) }
}

extension SplitwiseRole: ExpressibleByArgument {}

/// `api-server`: one OpenAI-compatible API server over the serving engine (one data-parallel
/// rank of `multi-api-server`). Flags follow FastDeploy's `api_server`.
public struct APIServer: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "api-server",
        abstract: "Serve a GGUF model over the OpenAI API (completions, chat completions) with continuous batching.",
        discussion: "Exit status 78 means a configuration error (flags, model file, a port in use): a supervisor should not restart it.")

    /// The serving flags' defaults are ServingConfiguration's, so the two cannot drift apart.
    private static let servingDefaults = ServingConfiguration()

    @Option(help: "The GGUF model file. Default: the default model (SmolLM2-135M-Instruct Q4_1) in the Tandem cache.")
    var model: String?

    @Option(help: "The model name clients send and responses carry. Default: the model file's name without .gguf.")
    var servedModelName: String?

    @Option(help: "Address the API, metrics and control listeners bind to.")
    var host = "127.0.0.1"

    @Option(help: "Port of the OpenAI API (also serves /health, /load and /metrics).")
    var port = 8000

    @Option(help: "A second port serving only /metrics (Prometheus). Default: none.")
    var metricsPort: Int?

    @Option(help: "Longest prompt plus output, in tokens. Default: the model's context length.")
    var maxModelLen: Int?

    @Option(help: "Most requests in the running batch.")
    var maxNumSeqs = Self.servingDefaults.maxNumSeqs

    @Option(help: "Most tokens (prefill chunks and decode steps) in one forward step.")
    var maxNumBatchedTokens = Self.servingDefaults.maxNumBatchedTokens

    @Option(help: "Tokens per KV cache block.")
    var blockSize = Self.servingDefaults.blockSize

    @Option(help: "KV cache pool size in blocks (wins over --kv-cache-memory).")
    var numGpuBlocksOverride: Int?

    @Option(help: "KV cache pool size as memory, e.g. 512MiB or 2GiB.")
    var kvCacheMemory = "1GiB"

    @Option(help: "Element type of the KV cache: float32 or float16 (half the memory).")
    var kvCacheDtype = KVCacheDataTypeOption.float32

    @Option(help: "Compute threads. Default: the CPUs this process may use.")
    var threads: Int?

    @OptionGroup var kernels: CPUKernelsOption

    @OptionGroup var prefillBatching: PrefillBatchingOptions

    @Option(help: ArgumentHelp("Jinja chat template file used instead of the model's.", valueName: "file"))
    var chatTemplate: String?

    @Option(help: "Require 'Authorization: Bearer <key>' on the /v1 routes.")
    var apiKey: String?

    @Flag(inversion: .prefixedNo, help: "Share KV blocks of identical prompt prefixes between requests.")
    var enablePrefixCaching = Self.servingDefaults.enablePrefixCaching

    @Option(help: "Most requests waiting for a place in the batch; more are refused with 429.")
    var maxWaitingRequests = Self.servingDefaults.maxWaitingRequests

    @Option(help: "Largest request body in bytes; larger ones are refused with 413.")
    var maxBodyBytes = 8 << 20

    @Option(help: "Seconds running requests get to finish after SIGTERM before they are aborted.")
    var drainTimeout: Double = 30

    @Option(help: "Port of the engine control plane (GET /load, POST /abort, POST /drain). Default: none.")
    var engineWorkerQueuePort: Int?

    @Option(help: "Port of the KV cache transfer queue: a decode instance receives tcp KV writes on it.")
    var cacheQueuePort: Int?

    @Option(help: "Port of prefill-decode messages: a decode instance serves the handshake, block reservations and first tokens on it.")
    var pdCommPort: Int?

    @Option(help: "Role in prefill-decode disaggregation: prefill, decode, or mixed (whole requests).")
    var splitwiseRole = SplitwiseRole.mixed

    @Option(help: ArgumentHelp("KV transfer protocols in order of preference, comma separated: ipc (shared memory, same host), tcp (the cache-queue port), rdma (refused where no RDMA device exists).", valueName: "list"))
    var cacheTransferProtocol = "ipc,tcp"

    @Option(help: "Seconds the other side of a prefill-decode transfer may stay silent (the prefill instance reports while the request waits in its queue and while it prefills) before both sides free its blocks.")
    var kvTransferTimeout: Double = 30

    @Option(help: "Ports reserved for RDMA KV transfer, comma separated (one per device); held open.")
    var rdmaCommPorts: String?

    @Option(help: "This rank's number among the data-parallel ranks (set by multi-api-server; shown in /get_server_info).")
    var localDataParallelId = 0

    @Option(help: "Number of data-parallel ranks in the fleet (informational).")
    var dataParallelSize = 1

    @Option(help: "Devices per rank for tensor parallelism; only 1 is supported on CPUs.")
    var tensorParallelSize = 1

    @OptionGroup var registration: RouterRegistrationOptions

    @OptionGroup var scheduling: SchedulerOptions

    public init() {}

    public func validate() throws {
        func check(_ ok: Bool, _ message: String) throws { if !ok { throw ValidationError(message) } }
        try check((1...65535).contains(port), "--port must be a port number (1-65535)")
        try check(maxModelLen.map { $0 >= 2 } ?? true, "--max-model-len must be at least 2")
        try check(maxNumSeqs >= 1, "--max-num-seqs must be at least 1")
        try check(maxNumBatchedTokens >= 1, "--max-num-batched-tokens must be at least 1")
        try check(blockSize >= 1 && blockSize <= 1024, "--block-size must be in 1...1024")
        try check(numGpuBlocksOverride.map { $0 >= 1 } ?? true, "--num-gpu-blocks-override must be at least 1")
        _ = try kvCacheBytes()
        try check(threads.map { $0 >= 1 } ?? true, "--threads must be at least 1")
        try check(maxWaitingRequests >= 0, "--max-waiting-requests must be 0 or more")
        try check(maxBodyBytes >= 1024, "--max-body-bytes must be at least 1024")
        try check(drainTimeout >= 0 && drainTimeout.isFinite, "--drain-timeout must be 0 or more seconds")
        try check(tensorParallelSize == 1, "--tensor-parallel-size \(tensorParallelSize) is not supported: CPU ranks run one device each")
        try check(dataParallelSize >= 1, "--data-parallel-size must be at least 1")
        _ = try rdmaPorts()
        _ = try transferProtocols()
        try check(kvTransferTimeout > 0 && kvTransferTimeout.isFinite, "--kv-transfer-timeout must be more than 0 seconds")
        try check(kvCacheDtype.dataType != nil, "--kv-cache-dtype \(kvCacheDtype.rawValue) is not supported by this engine")
    }

    /// `--kv-cache-memory`: a byte count with an optional K/M/G/T suffix (KiB, MB... all binary).
    func kvCacheBytes() throws -> Int {
        let text = kvCacheMemory.trimmingCharacters(in: .whitespaces)
        let units: [(String, Int)] = [("TIB", 1 << 40), ("GIB", 1 << 30), ("MIB", 1 << 20), ("KIB", 1 << 10),
                                      ("TB", 1 << 40), ("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10),
                                      ("T", 1 << 40), ("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10), ("B", 1)]
        let upper = text.uppercased()
        for (suffix, scale) in units where upper.hasSuffix(suffix) {
            if let value = Double(upper.dropLast(suffix.count).trimmingCharacters(in: .whitespaces)), value > 0 {
                return Int(value * Double(scale))
            }
        }
        if let bytes = Int(text), bytes > 0 { return bytes }
        throw ValidationError("--kv-cache-memory '\(kvCacheMemory)' is not a size such as 512MiB or 2GiB")
    }

    func rdmaPorts() throws -> [Int] {
        guard let rdmaCommPorts, !rdmaCommPorts.isEmpty else { return [] }
        return try rdmaCommPorts.split(separator: ",").map { part in
            guard let port = Int(part.trimmingCharacters(in: .whitespaces)) else {
                throw ValidationError("--rdma-comm-ports '\(rdmaCommPorts)' must be port numbers separated by commas")
            }
            return port
        }
    }

    func transferProtocols() throws -> [TransferProtocol] {
        var list: [TransferProtocol] = []
        for part in cacheTransferProtocol.split(separator: ",", omittingEmptySubsequences: false) {
            let name = part.trimmingCharacters(in: .whitespaces)
            guard let value = TransferProtocol(rawValue: name) else {
                throw ValidationError("--cache-transfer-protocol '\(cacheTransferProtocol)': unknown protocol '\(name)' (ipc, tcp, rdma)")
            }
            guard !list.contains(value) else {
                throw ValidationError("--cache-transfer-protocol '\(cacheTransferProtocol)' lists \(name) twice")
            }
            list.append(value)
        }
        return list
    }

    /// Configuration errors of the PD flags that need the host (devices) or several flags.
    func checkDisaggregation(_ protocols: [TransferProtocol]) throws {
        if protocols.contains(.rdma) {
            let devices = (try? FileManager.default.contentsOfDirectory(atPath: "/sys/class/infiniband")) ?? []
            if devices.isEmpty {
                throw ConfigurationError(message: "--cache-transfer-protocol rdma: this host has no RDMA device (/sys/class/infiniband is empty); use ipc or tcp")
            }
            throw ConfigurationError(message: "--cache-transfer-protocol rdma: RDMA transfer is not implemented yet; use ipc or tcp")
        }
        if splitwiseRole == .decode {
            guard pdCommPort != nil else {
                throw ConfigurationError(message: "--splitwise-role decode needs --pd-comm-port (prefill instances connect to it)")
            }
            guard cacheQueuePort != nil || !protocols.contains(.tcp) else {
                throw ConfigurationError(message: "--splitwise-role decode with tcp in --cache-transfer-protocol needs --cache-queue-port")
            }
        }
    }

    public var servingConfiguration: ServingConfiguration {
        var configuration = ServingConfiguration()
        configuration.blockSize = blockSize
        configuration.numBlocksOverride = numGpuBlocksOverride
        configuration.kvCacheMemoryBytes = (try? kvCacheBytes()) ?? configuration.kvCacheMemoryBytes
        configuration.kvCacheDataType = kvCacheDtype.dataType ?? configuration.kvCacheDataType
        configuration.enablePrefixCaching = enablePrefixCaching
        configuration.maxNumSeqs = maxNumSeqs
        configuration.maxNumBatchedTokens = maxNumBatchedTokens
        configuration.maxModelLength = maxModelLen
        configuration.maxWaitingRequests = maxWaitingRequests
        configuration.threads = threads ?? ProcessInfo.processInfo.activeProcessorCount
        configuration.sharedKVCache = splitwiseRole == .decode && ((try? transferProtocols()) ?? []).contains(.ipc)
        prefillBatching.apply(to: &configuration)
        return configuration
    }

    /// The program's entry point: flag and configuration errors exit 78 (EX_CONFIG), so a
    /// supervisor does not restart the rank; `--help` exits 0.
    public static func runAsMain() async {
        let command: APIServer
        do {
            command = try parse()
        } catch {
            if exitCode(for: error) == .success { exit(withError: error) }
            FileHandle.standardError.write(Data("api-server: \(fullMessage(for: error))\n".utf8))
            Foundation.exit(78)
        }
        do {
            try await command.serve()
        } catch let error as ConfigurationError {
            FileHandle.standardError.write(Data("api-server: \(error.message)\n".utf8))
            Foundation.exit(78)
        } catch {
            FileHandle.standardError.write(Data("api-server: \(error)\n".utf8))
            Foundation.exit(1)
        }
    }

    struct ConfigurationError: Error {
        var message: String
    }

    func serve() async throws {
        do {
            try kernels.apply()
        } catch {
            throw ConfigurationError(message: "\(error)")
        }
        let modelPath = model ?? DefaultModel.path()
        guard FileManager.default.fileExists(atPath: modelPath) else {
            throw ConfigurationError(message: "model file not found: \(modelPath)\(model == nil ? " (fetch it with scripts/fetch-model.sh, or pass --model)" : "")")
        }
        let template: ChatTemplate?
        do {
            template = try chatTemplate.map { try ChatTemplate.fromFile($0) }
        } catch {
            throw ConfigurationError(message: "--chat-template \(chatTemplate ?? ""): \(error)")
        }
        let protocols = try transferProtocols()
        try checkDisaggregation(protocols)
        // The reserved ports are held from here on; the listeners' ports must be free now.
        let host = host, port = port
        var reservations: [PortReservation] = []
        var pdCommListener: PortReservation?, cacheQueueListener: PortReservation?
        do {
            var reserved: [(flag: String, port: Int)] = []
            if let cacheQueuePort { reserved.append(("--cache-queue-port", cacheQueuePort)) }
            if let pdCommPort { reserved.append(("--pd-comm-port", pdCommPort)) }
            for rdmaPort in try rdmaPorts() { reserved.append(("--rdma-comm-ports", rdmaPort)) }
            for (flag, reservedPort) in reserved {
                let reservation = try PortReservation(host: host, port: reservedPort, flag: flag)
                reservations.append(reservation)
                if flag == "--pd-comm-port" { pdCommListener = reservation }
                if flag == "--cache-queue-port" { cacheQueueListener = reservation }
            }
            var listeners: [(flag: String, port: Int)] = [("--port", port)]
            if let metricsPort { listeners.append(("--metrics-port", metricsPort)) }
            if let engineWorkerQueuePort { listeners.append(("--engine-worker-queue-port", engineWorkerQueuePort)) }
            for (flag, listenerPort) in listeners { try PortReservation.check(host: host, port: listenerPort, flag: flag) }
        } catch let failure as PortReservation.Failure {
            throw ConfigurationError(message: failure.description)
        }

        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        var infoLogger = Logger(label: "api-server")
        infoLogger.logLevel = .info
        let logger = infoLogger
        var quietLogger = logger
        quietLogger.logLevel = .warning

        let name = servedModelName ?? URL(fileURLWithPath: modelPath).deletingPathExtension().lastPathComponent
        // The scheduler's Redis is checked before the model loads: a wrong one exits 78 at once.
        let scheduler: SplitwiseScheduler?
        if scheduling.schedulerName == .splitwise {
            let settings = scheduling.settings
            let splitwise = SplitwiseScheduler(settings: settings, role: splitwiseRole,
                                               endpoint: try workerRegistration(servedModelName: name).endpoint,
                                               transferProtocols: protocols, logger: logger)
            do {
                _ = try await splitwise.connect()
            } catch {
                throw ConfigurationError(message: SchedulerClusterOptions.startupProblem(error, address: settings.address))
            }
            scheduler = splitwise
        } else {
            scheduler = nil
        }
        let state = ServerState()
        let metrics = ServingMetrics(modelName: name)
        let configuration = servingConfiguration
        var serverInfo = [
            "model_path": modelPath, "served_model_name": name, "host": host, "port": String(port),
            "max_num_seqs": String(maxNumSeqs), "max_num_batched_tokens": String(maxNumBatchedTokens),
            "block_size": String(blockSize), "kv_cache_dtype": kvCacheDtype.rawValue,
            "enable_prefix_caching": String(enablePrefixCaching), "dp_rank": String(localDataParallelId),
            "data_parallel_size": String(dataParallelSize), "threads": String(configuration.threads),
            "cpu_kernels": CPUKernels.activePath, "cpu_kernel_variant": CPUKernels.activeKernels,
            "splitwise_role": splitwiseRole.rawValue,
            "cache_transfer_protocol": protocols.map(\.rawValue).joined(separator: ","),
            "kv_transfer_timeout": String(kvTransferTimeout),
            "scheduler_name": scheduling.schedulerName.rawValue,
        ]
        if let scheduler {
            serverInfo["scheduler_topic"] = scheduler.settings.topic
            serverInfo["scheduler_node_id"] = scheduler.nodeID
        }
        let role = splitwiseRole
        let transferTimeout = Duration.milliseconds(Int((kvTransferTimeout * 1000).rounded()))
        let pdListeners = (pdCommListener, cacheQueueListener)
        let routes = APIRoutes.router(state: state, metrics: metrics, options: .init(
            apiKey: apiKey, maxBodyBytes: maxBodyBytes, serverInfo: serverInfo, scheduler: scheduler))
        var services: [any Service] = [
            Application(router: routes, configuration: .init(address: .hostname(host, port: port), serverName: "api-server"),
                        logger: quietLogger),
        ]
        if let metricsPort {
            let router = Router()
            router.get("metrics") { [scheduler] _, _ -> Response in
                APIRoutes.metricsResponse(state: state, metrics: metrics, scheduler: scheduler)
            }
            services.append(Application(router: router, configuration: .init(address: .hostname(host, port: metricsPort)),
                                        logger: quietLogger))
        }
        if let engineWorkerQueuePort {
            services.append(Application(router: ControlPlane.router(state: state),
                                        configuration: .init(address: .hostname(host, port: engineWorkerQueuePort)),
                                        logger: quietLogger))
        }
        let group = ServiceGroup(services: services, logger: quietLogger)
        let registrar = try registration.router.map { router in
            RouterRegistrar(routerURL: try RouterRegistrationOptions.baseURL(router), token: registration.token,
                            interval: .milliseconds(Int(registration.registerInterval * 1000)),
                            registration: try workerRegistration(servedModelName: name), state: state, logger: logger)
        }

        let legRunner = scheduler.map { _ in
            ScheduledServing.LegRunner(baseURL: ScheduledServing.LegRunner.loopbackURL(host: host, port: port),
                                       apiKey: apiKey, state: state, timeout: scheduling.settings.ttl)
        }
        let startScheduler: @Sendable () -> Void = { [scheduler] in
            guard let scheduler, let legRunner else { return }
            scheduler.start(runner: { task, results in await legRunner.run(task, results: results) })
        }

        // The model loads while the listeners already answer /health with 503.
        Thread.detachNewThread {
            do {
                let engine = try ServingEngine(modelPath: modelPath, configuration: configuration)
                let context = ModelContext(servedModelName: name, modelPath: modelPath, engine: engine,
                                           chatTemplate: template ?? (try? engine.modelChatTemplate()),
                                           maxModelLength: engine.maxModelLength)
                var disaggregation: Disaggregation?
                if role != .mixed {
                    let layout = ModelFingerprint.layout(engine: engine, modelPath: modelPath)
                    var receiver: KVReceiver?
                    if role == .decode {
                        let kvReceiver = KVReceiver(engine: engine, layout: layout, protocols: protocols, timeout: transferTimeout)
                        if let listener = pdListeners.0 { kvReceiver.serve(listeningDescriptor: listener.descriptor, name: "pd-comm") }
                        if let listener = pdListeners.1 { kvReceiver.serve(listeningDescriptor: listener.descriptor, name: "cache-queue") }
                        receiver = kvReceiver
                    }
                    disaggregation = Disaggregation(role: role, protocols: protocols, timeout: transferTimeout, engine: engine,
                                                    layout: layout, receiver: receiver)
                }
                state.loaded(ServingContext(model: context, service: engine, metrics: metrics, disaggregation: disaggregation))
                logger.info("serving \(name) on http://\(host):\(port)")
                if let registrar { Task { await registrar.start() } }
                startScheduler()
            } catch {
                FileHandle.standardError.write(Data("api-server: cannot load the model \(modelPath): \(error)\n".utf8))
                Foundation.exit(78)
            }
        }

        let drainTimeout = drainTimeout
        let signals = SignalWatcher { [scheduler] signal in
            logger.info("received signal \(signal): draining (up to \(drainTimeout) s)")
            Task {
                // Out of the router first (health already 503), so it sends nothing new here.
                state.beginDrain()
                await registrar?.deregister()
                await scheduler?.stop()
                await Drain.run(state: state, timeout: drainTimeout, logger: logger)
                await group.triggerGracefulShutdown()
            }
        }
        defer { withExtendedLifetime((signals, reservations)) {} }
        do {
            try await group.run()
        } catch {
            throw ConfigurationError(message: "the HTTP listeners stopped: \(error)")
        }
        logger.info("stopped")
    }
}

extension APIServer {
    /// What this instance tells the router about itself (`--router`).
    func workerRegistration(servedModelName: String) throws -> WorkerRegistration {
        let endpoint = PeerEndpoint(host: PeerEndpoint.advertisedHost(listeningOn: host), port: port,
                                    engineWorkerQueuePort: engineWorkerQueuePort, pdCommPort: pdCommPort,
                                    cacheQueuePort: cacheQueuePort, rdmaCommPorts: try rdmaPorts())
        return WorkerRegistration(role: splitwiseRole, endpoint: endpoint, model: servedModelName,
                                  deviceIDs: RouterRegistrar.allowedCPUs().map(String.init),
                                  transferProtocols: try transferProtocols(), rank: localDataParallelId)
    }
}

/// SIGTERM and SIGINT start a drain instead of ending the process.
final class SignalWatcher {
    private let sources: [any DispatchSourceSignal]

    init(_ handler: @escaping @Sendable (Int32) -> Void) {
        sources = [SIGTERM, SIGINT].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { handler(number) }
            source.resume()
            return source
        }
    }
}

/// Stops admission and waits for running and waiting requests to finish, aborting what is left
/// after `timeout` seconds.
enum Drain {
    static func run(state: ServerState, timeout: Double, logger: Logger) async {
        state.beginDrain()
        guard let service = state.context?.service else { return }
        let deadline = ContinuousClock.now + .milliseconds(Int(timeout * 1000))
        while ContinuousClock.now < deadline {
            let load = service.load()
            if load.runningRequests + load.waitingRequests == 0 { return }
            try? await Task.sleep(for: .milliseconds(50))
        }
        if let registry = state.context?.registry {
            logger.warning("drain timeout: aborting the requests still running")
            for id in registry.allEngineIDs() { service.abort(requestID: id) }
        }
    }
}
