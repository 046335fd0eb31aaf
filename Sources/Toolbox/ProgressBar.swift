import Foundation

/// A progress bar on standard error: redrawn in place on a terminal; elsewhere (a log file)
/// one line per tenth of the work, so logs stay short.
struct ProgressBar {
    let total: Int
    private let isTerminal = isatty(STDERR_FILENO) == 1
    private let start = ContinuousClock.now
    private var lastTenth = 0

    init(total: Int) { self.total = total }

    mutating func update(finished: Int) {
        let elapsed = ContinuousClock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        let width = 30
        let filled = total == 0 ? width : finished * width / total
        let line = "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "] "
            + "\(finished)/\(total) requests, " + String(format: "%.1f s", seconds)
        if isTerminal {
            FileHandle.standardError.write(Data(("\r" + line).utf8))
        } else if finished * 10 / max(total, 1) > lastTenth || finished == total {
            lastTenth = finished * 10 / max(total, 1)
            FileHandle.standardError.write(Data((line + "\n").utf8))
        }
    }

    func finish() {
        if isTerminal { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}
