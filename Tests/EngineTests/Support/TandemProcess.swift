import Foundation
import TestSupport

/// Runs the built `tandem` executable (.build/release/tandem of this package) and collects
/// its output.
struct TandemProcess {
    static var executable: String {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent(".build/release/tandem").path
    }

    static func run(_ arguments: [String], environment: [String: String] = [:]) throws -> ProcessOutput {
        try runProcess(executable, arguments, environment: environment)
    }
}
