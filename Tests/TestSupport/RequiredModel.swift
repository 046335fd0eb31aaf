import Foundation

/// The missing-model policy of every test target: a test that needs a model fails (it is never
/// skipped) with the command that installs it. Returns `path` when the file is there.
public func requireModel(at path: String) throws -> String {
    guard FileManager.default.fileExists(atPath: path) else {
        throw TestFailure("the default model is not at \(path): install it with `bash scripts/fetch-model.sh`")
    }
    return path
}
