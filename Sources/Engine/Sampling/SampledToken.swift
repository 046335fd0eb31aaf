/// A token with its log-probability.
public struct TokenLogprob: Sendable, Equatable {
    public let token: Int32
    public let logprob: Float

    public init(token: Int32, logprob: Float) {
        self.token = token
        self.logprob = logprob
    }
}

/// One sampling step's result. Log-probabilities are those of the model's own distribution
/// (log-softmax of the raw logits, before penalties, temperature and filtering), as vLLM
/// reports by default.
public struct SampledToken: Sendable, Equatable {
    public let token: Int32
    /// nil unless `logprobs` was asked for (computing it costs a pass over the vocabulary).
    public let logprob: Float?
    /// The most likely tokens, most likely first, when `logprobs` was asked for.
    public let topLogprobs: [TokenLogprob]

    public init(token: Int32, logprob: Float?, topLogprobs: [TokenLogprob]) {
        self.token = token
        self.logprob = logprob
        self.topLogprobs = topLogprobs
    }
}
