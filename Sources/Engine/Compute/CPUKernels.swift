import CKernels
import Foundation

/// The instruction-set path of the C kernels: `auto` picks the fastest this CPU runs.
public enum CPUKernelPath: String, CaseIterable, Sendable, CustomStringConvertible {
    case auto, avx512, avx2, portable

    public var description: String { rawValue }
}

/// The process-wide choice of kernel path (matrix products, attention, norms, activations).
/// `TANDEM_CPU_KERNELS=auto|avx512|avx2|portable` chooses it for every tool that starts an
/// engine; a command-line flag (`--cpu-kernels`) chooses it explicitly.
public enum CPUKernels {
    public static let environmentVariable = "TANDEM_CPU_KERNELS"

    /// The path in use: "avx512", "avx2" or "portable".
    public static var activePath: String { String(cString: tk_cpu_path()) }

    /// The kernels of that path: "avx512-vnni", "avx2-vnni", "avx2-maddubs" or "portable".
    public static var activeKernels: String { String(cString: tk_cpu_backend()) }

    /// Whether this CPU can run `path`.
    public static func supports(_ path: CPUKernelPath) -> Bool { tk_cpu_supports_path(path.rawValue) == 1 }

    /// The concrete paths (not `auto`) this CPU runs, fastest first.
    public static var supportedPaths: [CPUKernelPath] {
        [.avx512, .avx2, .portable].filter(supports)
    }

    /// Uses `path` from now on; call it before an engine starts. Throws, changing nothing,
    /// when this CPU cannot run it.
    public static func select(_ path: CPUKernelPath) throws {
        guard tk_select_path(path.rawValue) == 0 else { throw unsupported(path, source: "cpu kernels '\(path)'") }
    }

    /// Applies `TANDEM_CPU_KERNELS` when it is set; throws for an unknown value or a path this
    /// CPU cannot run.
    public static func selectFromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        guard let value = environment[environmentVariable] else { return }
        guard let path = CPUKernelPath(rawValue: value) else {
            throw EngineError.cpuKernels("\(environmentVariable)=\(value) is not a kernel path (choose from: \(CPUKernelPath.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        guard tk_select_path(path.rawValue) == 0 else { throw unsupported(path, source: "\(environmentVariable)=\(value)") }
    }

    static func unsupported(_ path: CPUKernelPath, source: String) -> EngineError {
        let needs = String(cString: tk_path_requirements(path.rawValue))
        return .cpuKernels("\(source): this CPU cannot run the \(path) kernels (they need \(needs)); it runs: \(supportedPaths.map(\.rawValue).joined(separator: ", "))")
    }
}
