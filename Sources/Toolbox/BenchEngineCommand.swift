import ArgumentParser
import Engine
import EngineOptions
import Foundation

/// `tandem bench engine`: prefill and generation tokens/s of the in-process engine.
struct BenchEngineCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "engine",
        abstract: "Measure prefill and generation speed of the engine (like llama-bench).")

    @OptionGroup var model: ModelOption
    @OptionGroup var kernels: CPUKernelsOption

    @Option(help: "Prompt length for the prefill test (0 skips it).")
    var promptTokens = 512

    @Option(help: "Tokens generated per sequence in the generation test (0 skips it).")
    var genTokens = 128

    @Option(help: "Sequences decoding together in the generation test.")
    var batch = 1

    @Option(help: "Tokens of context already in the cache (filled untimed) before each test, like llama-bench's -d.")
    var depth = 0

    @Option(help: "Compute threads.")
    var threads = ProcessInfo.processInfo.activeProcessorCount

    @Option(help: "Repetitions of each test; the mean and standard deviation are reported.")
    var repetitions = 3

    @Flag(help: "Print one JSON line instead of a table.")
    var json = false

    func validate() throws {
        guard promptTokens >= 0 else { throw ValidationError("--prompt-tokens must be 0 or more") }
        guard genTokens >= 0 else { throw ValidationError("--gen-tokens must be 0 or more") }
        guard depth >= 0 else { throw ValidationError("--depth must be 0 or more") }
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1") }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        guard repetitions >= 1 else { throw ValidationError("--repetitions must be at least 1") }
    }

    func run() throws {
        try kernels.apply()
        let path = try model.resolvedPath()
        let weights = try loadModel(path)
        let transformer = Transformer(weights: weights, backend: try CPUBackend(threads: threads))
        let bench = EngineBenchmark(transformer: transformer, promptTokens: promptTokens,
                                    genTokens: genTokens, batch: batch, depth: depth)
        let result = try bench.run(repetitions: repetitions)
        let prefill = meanAndDeviation(result.prefillTokensPerSecond)
        let generation = meanAndDeviation(result.generationTokensPerSecond)
        let memory = ProcessMemory.current()
        let modelName = URL(fileURLWithPath: path).lastPathComponent

        if json {
            var fields: [(String, String)] = [
                ("prefill_tokens_per_s", format(prefill.mean)),
                ("prefill_tokens_per_s_stddev", format(prefill.deviation)),
                ("generation_tokens_per_s", format(generation.mean)),
                ("generation_tokens_per_s_stddev", format(generation.deviation)),
                ("prompt_tokens", "\(promptTokens)"), ("gen_tokens", "\(genTokens)"),
                ("batch", "\(batch)"), ("depth", "\(depth)"), ("threads", "\(threads)"), ("repetitions", "\(repetitions)"),
                ("model", jsonString(modelName)),
                ("cpu_kernels", jsonString(CPUKernels.activePath)),
                ("cpu_kernel_variant", jsonString(CPUKernels.activeKernels)),
            ]
            if let peak = memory.peakResident { fields.append(("peak_rss_bytes", "\(peak)")) }
            if let file = memory.residentFileBacked { fields.append(("rss_file_bytes", "\(file)")) }
            if let anon = memory.residentAnonymous { fields.append(("rss_anon_bytes", "\(anon)")) }
            print("{" + fields.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ") + "}")
        } else {
            print("cpu kernels: \(CPUKernels.activePath) (\(CPUKernels.activeKernels))")
            print("| model | threads | test | t/s |")
            print("| --- | ---: | --- | ---: |")
            let atDepth = depth > 0 ? " @ d\(depth)" : ""
            if promptTokens > 0 {
                print("| \(modelName) | \(threads) | pp\(promptTokens)\(atDepth) | \(format(prefill.mean)) ± \(format(prefill.deviation)) |")
            }
            if genTokens > 0 {
                let test = (batch == 1 ? "tg\(genTokens)" : "tg\(genTokens) × \(batch) sequences") + atDepth
                print("| \(modelName) | \(threads) | \(test) | \(format(generation.mean)) ± \(format(generation.deviation)) |")
            }
            if let peak = memory.peakResident {
                let mib = { (bytes: Int?) in bytes.map { String(format: "%.1f MiB", Double($0) / 1_048_576) } ?? "?" }
                print("peak RSS \(mib(peak)) (now: file-backed \(mib(memory.residentFileBacked)), anonymous \(mib(memory.residentAnonymous)))")
            }
        }
    }

    private func format(_ value: Double) -> String { String(format: "%.2f", value) }
}

func jsonString(_ s: String) -> String {
    var out = "\""
    for scalar in s.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out + "\""
}
