import Engine
import Foundation

/// The engine-side settings both APIs derive from `CommonParameters`, validated: every bad
/// value is a 400 naming its parameter.
struct ValidatedParameters: Sendable {
    var sampling: SamplingParameters
    var stopTokenIDs: Set<Int32>
    var logitBias: [Int32: Float]
    var ignoreEOS: Bool
    var stops: [String]
    var n: Int
    var stream: Bool
    var includeUsage: Bool

    static let maxN = 128
    static let maxStops = 16

    init(_ common: CommonParameters, logprobs: Int?, context: ModelContext) throws(OpenAIError) {
        let vocabulary = context.tokenizer.vocabularySize
        var sampling = SamplingParameters(
            temperature: common.temperature ?? 1, topK: common.topK ?? 0, topP: common.topP ?? 1, minP: common.minP ?? 0,
            seed: common.seed.map { UInt64(bitPattern: Int64($0)) },
            repetitionPenalty: common.repetitionPenalty ?? 1, presencePenalty: common.presencePenalty ?? 0,
            frequencyPenalty: common.frequencyPenalty ?? 0, logprobs: logprobs)
        if sampling.topK < 0 { sampling.topK = 0 }  // vLLM: -1 also disables top_k
        do {
            try sampling.validate()
        } catch let error as SamplingError {
            throw OpenAIError.invalidParameter(error.parameter, "Invalid value for '\(error.parameter)': \(error.value) \(error.rule).")
        } catch {
            throw OpenAIError.invalidRequest("\(error)")
        }
        self.sampling = sampling

        n = common.n ?? 1
        guard (1...Self.maxN).contains(n) else {
            throw OpenAIError.invalidParameter("n", "Invalid value for 'n': \(n) must be between 1 and \(Self.maxN).")
        }
        stopTokenIDs = []
        for id in common.stopTokenIDs ?? [] {
            guard id >= 0 && id < vocabulary else {
                throw OpenAIError.invalidParameter("stop_token_ids", "Invalid value for 'stop_token_ids': token id \(id) is outside the vocabulary (0..<\(vocabulary)).")
            }
            stopTokenIDs.insert(Int32(id))
        }
        logitBias = [:]
        for (key, bias) in common.logitBias ?? [:] {
            guard let id = Int(key), id >= 0, id < vocabulary else {
                throw OpenAIError.invalidParameter("logit_bias", "Invalid value for 'logit_bias': key '\(key)' is not a token id in 0..<\(vocabulary).")
            }
            guard (-100...100).contains(bias) else {
                throw OpenAIError.invalidParameter("logit_bias", "Invalid value for 'logit_bias': bias \(bias) for token \(id) must be in [-100, 100].")
            }
            logitBias[Int32(id)] = bias
        }
        stops = common.stop?.strings ?? []
        guard stops.count <= Self.maxStops else {
            throw OpenAIError.invalidParameter("stop", "Invalid value for 'stop': at most \(Self.maxStops) stop strings, got \(stops.count).")
        }
        guard !stops.contains("") else {
            throw OpenAIError.invalidParameter("stop", "Invalid value for 'stop': stop strings must not be empty.")
        }
        ignoreEOS = common.ignoreEOS ?? false
        stream = common.stream ?? false
        includeUsage = common.streamOptions?.includeUsage ?? false
        if common.streamOptions != nil && !stream {
            throw OpenAIError.invalidParameter("stream_options", "Invalid value for 'stream_options': only allowed when 'stream' is true.")
        }
    }

    /// The model named in a request must be the one served (absent means that one).
    static func checkModel(_ model: String?, context: ModelContext) throws(OpenAIError) {
        if let model, model != context.servedModelName { throw OpenAIError.modelNotFound(model) }
    }

    static func checkTokens(_ tokens: [Int], context: ModelContext, param: String) throws(OpenAIError) -> [Int32] {
        let vocabulary = context.tokenizer.vocabularySize
        guard !tokens.isEmpty else {
            throw OpenAIError.invalidParameter(param, "Invalid value for '\(param)': the prompt must not be empty.")
        }
        if let bad = tokens.first(where: { $0 < 0 || $0 >= vocabulary }) {
            throw OpenAIError.invalidParameter(param, "Invalid value for '\(param)': token id \(bad) is outside the vocabulary (0..<\(vocabulary)).")
        }
        return tokens.map(Int32.init)
    }

    func request(id: String, prompt: [Int32], maxTokens: Int, promptLogprobs: Int? = nil) -> GenerationRequest {
        GenerationRequest(id: id, promptTokens: prompt, maxTokens: maxTokens, sampling: sampling, stopTokenIDs: stopTokenIDs,
                          ignoreEOS: ignoreEOS, logitBias: logitBias, promptLogprobs: promptLogprobs)
    }
}

enum ResponseID {
    static func make(_ prefix: String) -> String {
        prefix + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
    }
}
