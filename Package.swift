// swift-tools-version:6.0
// Tandem: LLM serving with prefill–decode disaggregation and data parallelism.
//
// Linux only (Debian/Ubuntu, x86-64 or any CPU with the portable kernels): the code uses
// prctl, futex, close_range, sched_setaffinity, libnuma and systemd. SwiftPM has no Linux
// entry for `platforms`, so none is listed; other systems stop here:
#if !os(Linux)
#error("Tandem builds on Linux only (it uses prctl, futex, close_range, libnuma, systemd)")
#endif
//
// Layering: each target depends only on the targets after its arrow (its dependency list
// below, less the external packages); see docs/DESIGN.md.
//   executables:  multi-api-server -> Supervision
//                 tandem -> Toolbox
//                 api-server -> Serving
//                 tandem-test-worker -> SystemCalls
//                 router -> Routing
//   wire types:   PDProtocol (no dependencies: what workers, the router and the supervisor send
//                 each other: roles, endpoints, registration, disaggregate_info, PD messages)
//   router:       Routing (worker table, health checks, policies, PD pairing, relay, retries,
//                 circuit breakers, admission queue, metrics, the router's flags, discovery of
//                 workers in the splitwise scheduler's cluster hash) -> PDProtocol, SplitwiseScheduler
//   supervisor:   Supervision -> FleetPlanning, CSpawn, CSystemd, CCurl, CNuma, SystemCalls, PDProtocol
//                 FleetPlanning -> CNuma, PDProtocol
//   serving:      Serving (OpenAI HTTP API) -> Engine, EngineOptions, Tokenization, GGUF, ModelStore,
//                 PDProtocol, KVTransfer, SplitwiseScheduler
//                 SplitwiseScheduler (FastDeploy's Redis scheduler: cluster hash, request and result
//                 lists, placement, the --scheduler-* flags api-server and router share)
//                 -> CHiredis, PDProtocol
//                 KVTransfer (PD: KV blocks and the first token between P and D) -> Engine, PDProtocol,
//                 SystemCalls
//   toolbox:      Toolbox -> Engine, EngineOptions, Tokenization, ModelStore, ServingBenchmark, KVTransfer,
//                 PDProtocol
//                 EngineOptions (flags of engine-starting executables) -> Engine
//                 ServingBenchmark (bench serve: an HTTP load client) -> Engine, Tokenization, GGUF
//                 ModelStore (no dependencies: the default model's cache and download)
//   inference:    Engine -> Tokenization, GGUF, CKernels, PDProtocol
//                 Tokenization -> GGUF, Jinja
//                 GGUF -> CKernels, SystemCalls
//                 Jinja, CKernels, SystemCalls (no dependencies)
//   tests:        TestSupport -> ModelStore; GGUFTestSupport -> GGUF, CKernels
// The supervisor never links the inference core: it stays small and must not die.
import PackageDescription

let package = Package(
    name: "Tandem",
    products: [
        .executable(name: "multi-api-server", targets: ["multi-api-server"]),
        .executable(name: "tandem", targets: ["tandem"]),
        .executable(name: "api-server", targets: ["api-server"]),
        .executable(name: "router", targets: ["router"]),
        .library(name: "Engine", targets: ["Engine"]),
        .library(name: "Supervision", targets: ["Supervision"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.0.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
        // NIOHTTPTypes: the request and response parts of Hummingbird's HTTP/1 pipeline, which
        // the router's relay handler sits in (already built as Hummingbird's dependency).
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.24.0"),
        .package(url: "https://github.com/apple/swift-async-algorithms", from: "1.0.0"),
    ],
    targets: [
        // System calls made the same way everywhere: EINTR retried, errno turned into an error
        // named after the call; and the one Duration → seconds conversion.
        .target(name: "SystemCalls"),

        // System libraries (Debian: libsystemd-dev, libcurl4-openssl-dev, libnuma-dev).
        .systemLibrary(name: "CSystemd", pkgConfig: "libsystemd", providers: [.apt(["libsystemd-dev"])]),
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        .systemLibrary(name: "CNuma", providers: [.apt(["libnuma-dev"])]),
        // Debian libhiredis-dev: the Redis client of the splitwise scheduler.
        .systemLibrary(name: "CHiredis", pkgConfig: "hiredis", providers: [.apt(["libhiredis-dev"])]),

        // Process creation that Swift cannot express safely: fork/exec with a parent-death
        // signal, its own process group, CPU affinity and memory policy set before exec.
        .target(name: "CSpawn"),

        // Supervisor: plan (pure) and run (processes, health, restarts, systemd, control API).
        .target(
            name: "FleetPlanning",
            dependencies: [
                "CNuma", "PDProtocol",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .target(
            name: "Supervision",
            dependencies: [
                "FleetPlanning", "CSpawn", "CSystemd", "CCurl", "CNuma", "SystemCalls", "PDProtocol",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),

        // Wire types shared by processes (worker registration, the router's disaggregate_info,
        // PD handoff messages): written once, imported by both ends.
        .target(name: "PDProtocol"),

        // FastDeploy's splitwise scheduler over Redis (--scheduler-name splitwise): the cluster
        // hash of instances, per-instance request lists, result lists, placement. Never links
        // the inference core: an api-server plugs its own request running in.
        .target(
            name: "SplitwiseScheduler",
            dependencies: [
                "CHiredis", "PDProtocol",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // The router in front of api-server instances (mixed, or prefill and decode pairs):
        // registration, health, policies, the relay and its reliability rules, discovery in the
        // splitwise scheduler's cluster hash. Never links the inference core.
        .target(
            name: "Routing",
            dependencies: [
                "PDProtocol", "SplitwiseScheduler",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncAlgorithms", package: "swift-async-algorithms"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),

        // Inference core: GGUF files, tokenizers and chat templates, kernels, the model.
        // CKernels: C with runtime CPU dispatch (AVX-512 VNNI / AVX2 / portable, chosen per
        // process or pool): matrix products, attention and element-wise ops (compiled once per
        // path, TK_PATH_VARIANTS); dequantization, the compute thread pool.
        // -O3 instead of release's -O2: generation 1.09x faster, prefill 1.05x (BENCHMARKS.md,
        // "CKernels at -O3"). unsafeFlags keeps other packages from depending on Engine by
        // version; drop it when a re-measurement shows no gain.
        .target(name: "CKernels", cSettings: [.unsafeFlags(["-O3"])]),
        .target(name: "GGUF", dependencies: ["CKernels", "SystemCalls"]),
        // A Jinja interpreter (the subset chat templates use); Tokenization's ChatTemplate is on top.
        .target(name: "Jinja"),
        .target(name: "Tokenization", dependencies: ["GGUF", "Jinja"]),
        .target(name: "Engine", dependencies: ["GGUF", "Tokenization", "CKernels", "PDProtocol"]),
        // Prefill–decode KV transfer between two instances: the handshake, D's reservation, KV
        // pushed layer by layer (tcp frames or ipc shared memory), checksums, the first token.
        .target(name: "KVTransfer", dependencies: ["Engine", "PDProtocol", "SystemCalls"]),
        // The default model's place in the cache and its download (pip): the toolbox layer's,
        // so the inference core does no downloading.
        .target(name: "ModelStore"),
        // Command-line options shared by the executables that start an engine (--cpu-kernels).
        .target(
            name: "EngineOptions",
            dependencies: ["Engine", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        // Load testing of OpenAI-compatible servers (`tandem bench serve`): datasets, arrival
        // times, the streaming client, the metrics.
        .target(
            name: "ServingBenchmark",
            dependencies: [
                "Engine", "GGUF", "Tokenization",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        .target(
            name: "Toolbox",
            dependencies: [
                "Engine", "EngineOptions", "Tokenization", "ModelStore", "ServingBenchmark", "KVTransfer", "PDProtocol",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        // The OpenAI-compatible HTTP API over the serving engine: request and response types,
        // validation, streaming, stop strings, metrics, the control plane and api-server's flags.
        .target(
            name: "Serving",
            dependencies: [
                "Engine", "EngineOptions", "Tokenization", "GGUF", "ModelStore", "PDProtocol", "KVTransfer",
                "SplitwiseScheduler",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),

        // Executables: thin main.swift files over the libraries.
        .executableTarget(name: "api-server", dependencies: ["Serving"]),
        .executableTarget(name: "multi-api-server", dependencies: ["Supervision"]),
        .executableTarget(name: "router", dependencies: ["Routing"]),
        .executableTarget(name: "tandem", dependencies: ["Toolbox"]),
        // A stand-in worker for the supervisor's integration tests until api-server exists:
        // serves /health and can be told to crash, hang, exit 78 or flood its log.
        .executableTarget(name: "tandem-test-worker", dependencies: ["SystemCalls"]),

        // Helpers shared by the test targets: built products, child processes (api-server and
        // other servers: APIServerProcess, PDInstance), ports and HTTP, waiting for a condition,
        // comparisons with references.
        .target(name: "TestSupport", dependencies: ["ModelStore"], path: "Tests/TestSupport"),
        // Writing GGUF files for tests: the writer, reference quantizers and random valid blocks.
        .target(name: "GGUFTestSupport", dependencies: ["GGUF", "CKernels", "SystemCalls"], path: "Tests/GGUFTestSupport"),
        .testTarget(name: "FleetPlanningTests", dependencies: ["FleetPlanning", "TestSupport", "SystemCalls"]),
        .testTarget(
            name: "SupervisionTests",
            dependencies: ["Supervision", "FleetPlanning", "SystemCalls", "TestSupport", "ModelStore", .product(name: "Logging", package: "swift-log")]
        ),
        .testTarget(name: "SystemCallsTests", dependencies: ["SystemCalls"]),
        // The example deployments (scripts/serve.sh, Examples/*/run.sh) run as written.
        .testTarget(name: "ExamplesTests", dependencies: ["TestSupport"]),
        .testTarget(
            name: "RouterTests",
            dependencies: ["Routing", "PDProtocol", "Engine", "ModelStore", "TestSupport", .product(name: "NIOCore", package: "swift-nio")],
            exclude: ["Python"]
        ),
        .testTarget(name: "GGUFTests", dependencies: ["GGUF", "GGUFTestSupport", "Engine", "ModelStore", "TestSupport"]),
        .testTarget(
            name: "TokenizationTests", dependencies: ["Tokenization", "GGUF", "GGUFTestSupport", "ModelStore", "TestSupport"],
            exclude: ["Python", "Templates"]
        ),
        .testTarget(name: "ServingTests", dependencies: ["Serving", "Engine", "ModelStore", "TestSupport", "PDProtocol"], exclude: ["Python"]),
        .testTarget(
            name: "SplitwiseSchedulerTests",
            dependencies: ["SplitwiseScheduler", "PDProtocol", "ModelStore", "TestSupport"]
        ),
        .testTarget(name: "KVTransferTests", dependencies: ["KVTransfer", "PDProtocol", "Engine"]),
        .testTarget(
            name: "ServingBenchmarkTests", dependencies: ["ServingBenchmark", "Engine", "Tokenization", "GGUF", "ModelStore", "TestSupport"]
        ),
        .testTarget(
            name: "EngineTests",
            dependencies: ["Engine", "GGUF", "GGUFTestSupport", "Tokenization", "CKernels", "ModelStore", "TestSupport"]
        ),
    ]
)
