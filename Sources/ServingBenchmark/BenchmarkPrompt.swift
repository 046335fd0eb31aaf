/// One request of a benchmark: the prompt text, its length in tokens (as the benchmark's
/// tokenizer counts it, without BOS), and how many tokens to ask for.
public struct BenchmarkPrompt: Sendable, Equatable {
    public var text: String
    public var promptTokens: Int
    public var outputTokens: Int

    public init(text: String, promptTokens: Int, outputTokens: Int) {
        self.text = text
        self.promptTokens = promptTokens
        self.outputTokens = outputTokens
    }
}

/// A dataset the benchmark cannot use, with the reason.
public struct DatasetError: Error, Equatable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
