import Engine
import Foundation
import Testing

/// Choosing the kernel path: TANDEM_CPU_KERNELS and `--cpu-kernels` (in child processes, so
/// the process-wide choice of this test process never changes under other suites).
@Suite struct CPUKernelsTests {
    static func benchJSON(_ arguments: [String], environment: [String: String]) throws -> [String: Any]? {
        let output = try TandemProcess.run([
            "bench", "engine", "--model", try defaultModelPath(), "--prompt-tokens", "8", "--gen-tokens", "2",
            "--threads", "2", "--repetitions", "1", "--json",
        ] + arguments, environment: environment)
        #expect(output.status == 0, "\(output.stderr)")
        return try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [String: Any]
    }

    @Test func environmentChoosesThePathAndTheFlagOverridesIt() throws {
        var object = try Self.benchJSON([], environment: ["TANDEM_CPU_KERNELS": "portable"])
        #expect(object?["cpu_kernels"] as? String == "portable")
        #expect(object?["cpu_kernel_variant"] as? String == "portable")
        for path in CPUKernels.supportedPaths {
            object = try Self.benchJSON(["--cpu-kernels", path.rawValue], environment: ["TANDEM_CPU_KERNELS": "portable"])
            #expect(object?["cpu_kernels"] as? String == path.rawValue)
        }
        object = try Self.benchJSON(["--cpu-kernels", "auto"], environment: [:])
        #expect(object?["cpu_kernels"] as? String == CPUKernels.supportedPaths.first?.rawValue)
    }

    @Test func unknownPathsAreClearErrors() throws {
        var output = try TandemProcess.run(["bench", "engine", "--prompt-tokens", "8"], environment: ["TANDEM_CPU_KERNELS": "avx3"])
        #expect(output.status != 0)
        #expect(output.stderr == "Error: TANDEM_CPU_KERNELS=avx3 is not a kernel path (choose from: auto, avx512, avx2, portable)\n")
        output = try TandemProcess.run(["bench", "engine", "--cpu-kernels", "sse"])
        #expect(output.status != 0)
        #expect(output.stderr.hasPrefix("Error: The value 'sse' is invalid for '--cpu-kernels <path>'"))
        #expect(throws: EngineError.cpuKernels("TANDEM_CPU_KERNELS=neon is not a kernel path (choose from: auto, avx512, avx2, portable)")) {
            try CPUKernels.selectFromEnvironment(["TANDEM_CPU_KERNELS": "neon"])
        }
    }
}
