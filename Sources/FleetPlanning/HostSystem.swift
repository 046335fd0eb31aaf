import CNuma
import Foundation

/// The parts of the host the planner reads, behind one seam so tests can fake a machine:
/// a file system root for sysfs, the allowed CPU set, and `nvidia-smi`.
public struct HostSystem: Sendable {
    /// Where `sys/…` is read from: `/` on the live system, a fake tree in tests.
    public var root: String
    /// The CPUs this process may run on (`sched_getaffinity` on the live system).
    public var allowedCPUs: @Sendable () -> [Int]
    /// The output of `nvidia-smi --query-gpu=index,uuid,pci.bus_id --format=csv,noheader`,
    /// or nil when it is absent or fails.
    public var queryGPUs: @Sendable () -> String?
    /// Whether libnuma confirms the NUMA nodes read from sysfs (only true for the live system).
    public var usesLibnuma: Bool

    public init(root: String, allowedCPUs: @escaping @Sendable () -> [Int],
                queryGPUs: @escaping @Sendable () -> String? = { nil }, usesLibnuma: Bool = false) {
        self.root = root
        self.allowedCPUs = allowedCPUs
        self.queryGPUs = queryGPUs
        self.usesLibnuma = usesLibnuma
    }

    /// The machine this process runs on.
    public static var live: HostSystem {
        HostSystem(root: "/", allowedCPUs: liveAllowedCPUs, queryGPUs: runNvidiaSMI, usesLibnuma: true)
    }

    func path(_ relative: String) -> String {
        root.hasSuffix("/") ? root + relative : root + "/" + relative
    }

    func readTrimmed(_ relative: String) -> String? {
        (try? String(contentsOfFile: path(relative), encoding: .utf8))?.trimmingWhitespace()
    }

    func listDirectory(_ relative: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: path(relative))) ?? []).sorted()
    }
}

/// sched_getaffinity(2) through libnuma (Glibc's Swift module hides the GNU CPU-set macros).
private func liveAllowedCPUs() -> [Int] {
    guard let mask = numa_allocate_cpumask() else { return [] }
    defer { numa_bitmask_free(mask) }
    guard numa_sched_getaffinity(0, mask) >= 0 else { return [] }
    let possible = Int(mask.pointee.size)
    return (0..<possible).filter { numa_bitmask_isbitset(mask, UInt32($0)) != 0 }
}

private func runNvidiaSMI() -> String? {
    let searchPath = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
    guard let binary = searchPath.split(separator: ":").map({ "\($0)/nvidia-smi" })
        .first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else { return nil }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: binary)
    process.arguments = ["--query-gpu=index,uuid,pci.bus_id", "--format=csv,noheader"]
    let output = Pipe()
    process.standardOutput = output
    process.standardError = FileHandle.nullDevice
    do { try process.run() } catch { return nil }
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else { return nil }
    return String(decoding: data, as: UTF8.self)
}
