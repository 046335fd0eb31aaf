import Foundation
import GGUF

/// The default model's path by the same rule as scripts/fetch-model.sh.
func defaultModelPath() -> String {
    let env = ProcessInfo.processInfo.environment
    let cache = env["TANDEM_CACHE_DIR"]
        ?? ((env["XDG_CACHE_HOME"] ?? (NSHomeDirectory() + "/.cache")) + "/tandem")
    return cache + "/models/SmolLM2-135M-Instruct.Q4_1.gguf"
}

/// A fresh temporary folder, removed by the caller.
func temporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("gguf-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}
