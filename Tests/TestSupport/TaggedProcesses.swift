import Foundation

/// True while process `pid` runs (a zombie, dead but not yet collected, counts as gone).
public func processExists(_ pid: Int) -> Bool {
    // A zombie still "exists" for kill(0); read the state instead.
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return false }
    return !status.contains("State:\tZ")
}

/// Pids of live processes whose environment carries `TANDEM_TEST_FLEET=<tag>`: how a test
/// finds every process it started, children and grandchildren included (the environment is
/// inherited), even after their parent is gone.
public func fleetProcesses(tag: String) -> [Int] {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return entries.compactMap(Int.init).filter { pid in
        guard let environ = FileManager.default.contents(atPath: "/proc/\(pid)/environ") else { return false }
        return environ.split(separator: 0).contains { String(decoding: $0, as: UTF8.self) == "TANDEM_TEST_FLEET=\(tag)" }
            && processExists(pid)
    }
}
