import FleetPlanning
import Foundation
import Glibc
import Synchronization
import Testing

/// A fake machine under a temporary folder: NUMA nodes and NVIDIA PCI devices in sysfs.
final class FakeHost {
    let root: String

    init() throws {
        root = NSTemporaryDirectory() + "tandem-fake-host-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: root + "/sys/bus/pci/devices", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: root + "/sys/devices/system/node", withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: root) }

    func addNode(_ node: Int, cpulist: String) throws {
        try write("sys/devices/system/node/node\(node)/cpulist", cpulist + "\n")
    }

    func addPCIDevice(_ busID: String, vendor: String = "0x10de", pciClass: String = "0x030200", numaNode: Int) throws {
        try write("sys/bus/pci/devices/\(busID)/vendor", vendor + "\n")
        try write("sys/bus/pci/devices/\(busID)/class", pciClass + "\n")
        try write("sys/bus/pci/devices/\(busID)/numa_node", "\(numaNode)\n")
    }

    func system(allowedCPUs: [Int], nvidiaSMI: String? = nil) -> HostSystem {
        HostSystem(root: root, allowedCPUs: { allowedCPUs }, queryGPUs: { nvidiaSMI })
    }

    private func write(_ relative: String, _ text: String) throws {
        let path = root + "/" + relative
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }
}

/// A mock port prober (no sockets): hands out ports from a counter and reports `taken` as in use.
func fakeProber(taken: Set<Int> = [], firstFree: Int = 20000) -> @Sendable (String) -> PortProber {
    { _ in
        let next = Counter(firstFree)
        return PortProber(isFree: { !taken.contains($0) }, freePort: { next.take() })
    }
}

final class Counter: Sendable {
    private let value: Mutex<Int>
    init(_ start: Int) { value = Mutex(start) }
    func take() -> Int {
        value.withLock { value in
            defer { value += 1 }
            return value
        }
    }
}

func planner(_ system: HostSystem, environment: [String: String] = [:],
             prober: @escaping @Sendable (String) -> PortProber = fakeProber()) -> FleetPlanner {
    FleetPlanner(system: system, environment: environment, prober: prober, executablePath: "/usr/bin/multi-api-server")
}

/// Options with an existing worker binary, so tests exercise only what they mean to.
func options(_ arguments: [String]) throws -> SupervisorOptions {
    try SupervisorOptions.parse(["--worker-binary", "/bin/true"] + arguments)
}

func expectPlanningError(_ message: String, _ arguments: [String], planner: FleetPlanner,
                         sourceLocation: SourceLocation = #_sourceLocation) throws {
    let parsed = try options(arguments)
    #expect(throws: PlanningError(message), sourceLocation: sourceLocation) { try planner.plan(parsed) }
}
