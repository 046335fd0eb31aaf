/// How to pick each next token, with the meanings of vLLM's and OpenAI's parameters.
public struct SamplingParameters: Sendable, Codable, Equatable {
    /// Divides the logits; 0 picks the most likely token (greedy).
    public var temperature: Float
    /// Keep only the k most likely tokens; 0 keeps all.
    public var topK: Int
    /// Keep the smallest set of most likely tokens whose probability reaches topP; 1 keeps all.
    public var topP: Float
    /// Drop tokens less likely than minP times the most likely one; 0 keeps all.
    public var minP: Float
    /// Makes sampling reproducible; nil seeds from the system's random source.
    public var seed: UInt64?
    /// > 1 discourages tokens already in the prompt or output (logit / p if positive, · p if not).
    public var repetitionPenalty: Float
    /// Subtracted once from the logit of every token already in the output.
    public var presencePenalty: Float
    /// Subtracted from a token's logit once per time it occurs in the output.
    public var frequencyPenalty: Float
    /// Number of most likely alternatives to report with each token (their log-probabilities);
    /// nil reports none, not even the sampled token's own (0 reports only that one).
    public var logprobs: Int?

    public static let maxLogprobs = 20

    public init(
        temperature: Float = 1, topK: Int = 0, topP: Float = 1, minP: Float = 0, seed: UInt64? = nil,
        repetitionPenalty: Float = 1, presencePenalty: Float = 0, frequencyPenalty: Float = 0, logprobs: Int? = nil
    ) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.minP = minP
        self.seed = seed
        self.repetitionPenalty = repetitionPenalty
        self.presencePenalty = presencePenalty
        self.frequencyPenalty = frequencyPenalty
        self.logprobs = logprobs
    }

    public static let greedy = SamplingParameters(temperature: 0)

    public var isGreedy: Bool { temperature == 0 || topK == 1 }

    /// Throws a `SamplingError` naming the first parameter out of range.
    public func validate() throws {
        func check(_ ok: Bool, _ name: String, _ value: String, _ rule: String) throws {
            if !ok { throw SamplingError(parameter: name, value: value, rule: rule) }
        }
        try check(temperature >= 0 && temperature.isFinite, "temperature", "\(temperature)", "must be a finite number >= 0")
        try check(topK >= 0, "top_k", "\(topK)", "must be >= 0 (0 disables it)")
        try check(topP > 0 && topP <= 1, "top_p", "\(topP)", "must be in (0, 1]")
        try check(minP >= 0 && minP <= 1, "min_p", "\(minP)", "must be in [0, 1]")
        try check(repetitionPenalty > 0 && repetitionPenalty.isFinite, "repetition_penalty", "\(repetitionPenalty)", "must be a finite number > 0")
        try check(abs(presencePenalty) <= 2, "presence_penalty", "\(presencePenalty)", "must be in [-2, 2]")
        try check(abs(frequencyPenalty) <= 2, "frequency_penalty", "\(frequencyPenalty)", "must be in [-2, 2]")
        if let logprobs {
            try check((0...Self.maxLogprobs).contains(logprobs), "logprobs", "\(logprobs)", "must be in 0...\(Self.maxLogprobs)")
        }
    }
}

/// A sampling parameter out of its range.
public struct SamplingError: Error, Equatable, CustomStringConvertible {
    public let parameter: String
    public let value: String
    public let rule: String
    public var description: String { "invalid sampling parameter \(parameter) = \(value): \(rule)" }
}
