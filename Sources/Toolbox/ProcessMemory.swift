import Foundation

/// This process's memory from /proc/self/status (Linux), in bytes; nil elsewhere.
struct ProcessMemory {
    /// Peak resident set size (VmHWM).
    var peakResident: Int?
    /// Resident pages backed by files, such as the memory-mapped model (RssFile).
    var residentFileBacked: Int?
    /// Resident anonymous memory: heap, KV cache, scratch (RssAnon).
    var residentAnonymous: Int?

    static func current() -> ProcessMemory {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else {
            return ProcessMemory()
        }
        func kilobytes(_ key: String) -> Int? {
            guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(key + ":") }) else { return nil }
            let digits = line.dropFirst(key.count + 1).split(whereSeparator: { $0 == " " || $0 == "\t" }).first
            return digits.flatMap { Int($0) }.map { $0 * 1024 }
        }
        return ProcessMemory(peakResident: kilobytes("VmHWM"), residentFileBacked: kilobytes("RssFile"),
                             residentAnonymous: kilobytes("RssAnon"))
    }
}
