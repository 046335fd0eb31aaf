import Foundation
import TestSupport

/// Runs the `tandem` executable built with these tests and collects its output.
struct TandemProcess {
    static func run(_ arguments: [String], environment: [String: String] = [:]) throws -> ProcessOutput {
        try runProcess(try BuiltProducts.path("tandem"), arguments, environment: environment)
    }
}
