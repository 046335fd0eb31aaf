/// The kernel's CPU list format (`0-3,8,10-11`), as in sysfs `cpulist` files and
/// `/proc/PID/status` `Cpus_allowed_list`.
public enum CPUList {
    /// Parses a CPU list; nil when it is malformed.
    public static func parse(_ text: String) -> [Int]? {
        let trimmed = text.trimmingWhitespace()
        if trimmed.isEmpty { return [] }
        var cpus: [Int] = []
        for part in trimmed.split(separator: ",") {
            let bounds = part.split(separator: "-", omittingEmptySubsequences: false)
            switch bounds.count {
            case 1:
                guard let cpu = Int(bounds[0]), cpu >= 0 else { return nil }
                cpus.append(cpu)
            case 2:
                guard let low = Int(bounds[0]), let high = Int(bounds[1]), low >= 0, low <= high else { return nil }
                cpus.append(contentsOf: low...high)
            default:
                return nil
            }
        }
        return Array(Set(cpus)).sorted()
    }

    /// Formats CPUs as a list with ranges, e.g. `[0,1,2,5]` → `0-2,5`.
    public static func format(_ cpus: [Int]) -> String {
        let sorted = Array(Set(cpus)).sorted()
        var parts: [String] = []
        var index = 0
        while index < sorted.count {
            var end = index
            while end + 1 < sorted.count && sorted[end + 1] == sorted[end] + 1 { end += 1 }
            parts.append(end == index ? "\(sorted[index])" : "\(sorted[index])-\(sorted[end])")
            index = end + 1
        }
        return parts.joined(separator: ",")
    }
}

extension StringProtocol {
    func trimmingWhitespace() -> String {
        var scalars = Substring(self)
        while let first = scalars.first, first.isWhitespace { scalars = scalars.dropFirst() }
        while let last = scalars.last, last.isWhitespace { scalars = scalars.dropLast() }
        return String(scalars)
    }
}
