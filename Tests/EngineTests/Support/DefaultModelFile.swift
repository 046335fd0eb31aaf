import Foundation

/// The default model's path by the rule of scripts/fetch-model.sh: `$TANDEM_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/tandem`, else `~/.cache/tandem`, then `models/`.
func defaultModelPath() -> String {
    let env = ProcessInfo.processInfo.environment
    let cache = env["TANDEM_CACHE_DIR"]
        ?? env["XDG_CACHE_HOME"].map { $0 + "/tandem" }
        ?? NSHomeDirectory() + "/.cache/tandem"
    return cache + "/models/SmolLM2-135M-Instruct.Q4_1.gguf"
}
