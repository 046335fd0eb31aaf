// swift-tools-version:6.0
// Tandem: LLM serving with prefill–decode disaggregation and data parallelism.
// Layering (arrows point down only; see DESIGN.md):
//   executables: multi-api-server  tandem  (api-server, router: later)
//   supervisor:  Supervision -> FleetPlanning -> CSpawn, CSystemd, CCurl, CNuma
//   inference:   Toolbox -> Engine -> Tokenization, GGUF, CKernels
//   Toolbox -> ServingBenchmark (bench serve: an HTTP client) -> Tokenization, GGUF
import PackageDescription

let package = Package(
    name: "Tandem",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "multi-api-server", targets: ["multi-api-server"]),
        .executable(name: "tandem", targets: ["tandem"]),
        .library(name: "Engine", targets: ["Engine"]),
        .library(name: "Supervision", targets: ["Supervision"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.0.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
    ],
    targets: [
        // System libraries (Debian: libsystemd-dev, libcurl4-openssl-dev, libnuma-dev).
        .systemLibrary(name: "CSystemd", pkgConfig: "libsystemd", providers: [.apt(["libsystemd-dev"])]),
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        .systemLibrary(name: "CNuma", providers: [.apt(["libnuma-dev"])]),

        // Process creation that Swift cannot express safely: fork/exec with a parent-death
        // signal, its own process group, CPU affinity and memory policy set before exec.
        .target(name: "CSpawn"),

        // Supervisor: plan (pure) and run (processes, health, restarts, systemd, control API).
        .target(
            name: "FleetPlanning",
            dependencies: [
                "CNuma",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .target(
            name: "Supervision",
            dependencies: [
                "FleetPlanning", "CSpawn", "CSystemd", "CCurl", "CNuma",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),

        // Inference core: GGUF files, tokenizers and chat templates, kernels, the model.
        // CKernels: C with runtime CPU dispatch (AVX-512 VNNI / AVX2 / portable): dequantization,
        // quantized dot products and matrix products, attention, the compute thread pool.
        .target(name: "CKernels", cSettings: [.unsafeFlags(["-O3"])]),
        .target(name: "GGUF", dependencies: ["CKernels"]),
        .target(name: "Tokenization", dependencies: ["GGUF"]),
        .target(name: "Engine", dependencies: ["GGUF", "Tokenization", "CKernels"]),
        // Load testing of OpenAI-compatible servers (`tandem bench serve`): datasets, arrival
        // times, the streaming client, the metrics.
        .target(
            name: "ServingBenchmark",
            dependencies: [
                "GGUF", "Tokenization",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        .target(
            name: "Toolbox",
            dependencies: [
                "Engine", "ServingBenchmark",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        // Executables: thin main.swift files over the libraries.
        .executableTarget(name: "multi-api-server", dependencies: ["Supervision"]),
        .executableTarget(name: "tandem", dependencies: ["Toolbox"]),
        // A stand-in worker for the supervisor's integration tests until api-server exists:
        // serves /health and can be told to crash, hang, exit 78 or flood its log.
        .executableTarget(name: "tandem-test-worker"),

        // Helpers shared by the test targets (running a child process to completion).
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "FleetPlanningTests", dependencies: ["FleetPlanning", "TestSupport"]),
        .testTarget(name: "SupervisionTests", dependencies: ["Supervision", "FleetPlanning"]),
        .testTarget(name: "GGUFTests", dependencies: ["GGUF", "Engine", "TestSupport"]),
        .testTarget(
            name: "TokenizationTests", dependencies: ["Tokenization", "GGUF", "Engine", "TestSupport"],
            exclude: ["Python", "Templates"]
        ),
        .testTarget(
            name: "ServingBenchmarkTests", dependencies: ["ServingBenchmark", "Tokenization", "GGUF", "Engine", "TestSupport"]
        ),
        .testTarget(name: "EngineTests", dependencies: ["Engine", "GGUF", "Tokenization", "CKernels", "TestSupport"]),
    ]
)
