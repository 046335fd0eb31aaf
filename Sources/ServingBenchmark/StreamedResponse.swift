import Foundation

/// What one streamed OpenAI completion or chat completion delivered, assembled from its SSE
/// payloads and the time each arrived (seconds after the request was sent). As in `vllm bench
/// serve`: the first chunk that carries generated text sets the time to first token, each
/// later one adds an inter-token latency, and the token counts come from the server's `usage`
/// (sent with `stream_options.include_usage`).
public struct StreamedResponse: Sendable, Equatable {
    public var generatedText = ""
    public var timeToFirstToken: Double?
    public var interTokenLatencies: [Double] = []
    public var promptTokens: Int?
    public var completionTokens: Int?
    public var finishReason: String?
    public private(set) var isDone = false
    private var lastChunkTime = 0.0

    public init() {}

    /// Takes one SSE data payload: `[DONE]` ends the stream, an `error` object is thrown as
    /// its message, anything that is not a JSON object is an error.
    public mutating func receive(_ payload: String, at time: Double) throws {
        if payload.trimmingCharacters(in: .whitespaces) == "[DONE]" {
            isDone = true
            return
        }
        guard let object = (try? JSONSerialization.jsonObject(with: Data(payload.utf8))) as? [String: Any] else {
            throw StreamError("the server sent a chunk that is not a JSON object: \(payload.prefix(200))")
        }
        if let error = object["error"] {
            let message = (error as? [String: Any])?["message"] as? String ?? "\(error)"
            throw StreamError("the server reported an error mid-stream: \(message)")
        }
        if let usage = object["usage"] as? [String: Any] {
            if let prompt = usage["prompt_tokens"] as? Int { promptTokens = prompt }
            if let completion = usage["completion_tokens"] as? Int { completionTokens = completion }
        }
        guard let choice = (object["choices"] as? [Any])?.first as? [String: Any] else { return }
        if let reason = choice["finish_reason"] as? String { finishReason = reason }
        let delta = choice["delta"] as? [String: Any]
        let text = (choice["text"] as? String) ?? (delta?["content"] as? String) ?? (delta?["reasoning_content"] as? String) ?? ""
        guard !text.isEmpty else { return }
        if timeToFirstToken == nil {
            timeToFirstToken = time
        } else {
            interTokenLatencies.append(time - lastChunkTime)
        }
        lastChunkTime = time
        generatedText += text
    }
}

public struct StreamError: Error, Equatable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
