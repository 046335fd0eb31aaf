import Foundation

/// The package's executables as built with the running tests: in the build folder that holds
/// the test binary (`.build/<triple>/<configuration>/`), never a fixed path that can hold a
/// binary of another configuration or an older build.
public enum BuiltProducts {
    /// The folder of the running test binary.
    public static let directory: String = {
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: executable).deletingLastPathComponent().path
    }()

    /// The configuration that folder was built in (`release` or `debug`).
    public static var configuration: String { URL(fileURLWithPath: directory).lastPathComponent }

    /// The executable product `name` next to the test binary; throws naming the command that
    /// builds it when it is not there.
    public static func path(_ name: String) throws -> String {
        let path = directory + "/" + name
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw TestFailure("\(name) is not built next to the tests in \(directory): run `swift build -c \(configuration) --product \(name)`")
        }
        return path
    }
}
