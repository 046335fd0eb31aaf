import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Tokenization

/// The two OpenAI text-generation endpoints a benchmark can drive.
public enum CompletionEndpoint: String, Sendable, CaseIterable {
    case completions, chat

    public var path: String { self == .completions ? "/v1/completions" : "/v1/chat/completions" }
}

/// A client of any OpenAI-compatible server (Tandem's api-server, llama-server, vLLM) that
/// sends streamed generation requests and times their chunks.
public final class OpenAIStreamingClient: Sendable {
    private let http: HTTPClient
    private let baseURL: String
    private let apiKey: String?
    private let requestTimeout: TimeAmount
    /// Counts output tokens when a server sends no `usage`.
    private let tokenizer: Tokenizer

    /// `maxConnections` should be the benchmark's concurrency: the connection pool would
    /// otherwise queue requests inside the client (its default is 8 per host).
    public init(baseURL: String, apiKey: String? = nil, maxConnections: Int, requestTimeout: Double,
                tokenizer: Tokenizer) {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool = .init(idleTimeout: .seconds(60),
                                             concurrentHTTP1ConnectionsPerHostSoftLimit: max(1, maxConnections))
        configuration.timeout = .init(connect: .seconds(10))
        configuration.decompression = .disabled
        http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.apiKey = apiKey
        self.requestTimeout = .nanoseconds(Int64(requestTimeout * 1e9))
        self.tokenizer = tokenizer
    }

    public func shutdown() async throws { try await http.shutdown() }

    /// The id of the first model `GET /v1/models` lists.
    public func firstModel() async throws -> String {
        var request = HTTPClientRequest(url: baseURL + "/v1/models")
        addAuthorization(&request)
        let response = try await http.execute(request, timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 1 << 22)
        guard response.status == .ok else {
            throw StreamError("GET \(baseURL)/v1/models answered HTTP \(response.status.code): \(String(buffer: body).prefix(300))")
        }
        guard let object = (try? JSONSerialization.jsonObject(with: Data(body.readableBytesView))) as? [String: Any],
              let first = (object["data"] as? [Any])?.first as? [String: Any], let id = first["id"] as? String
        else {
            throw StreamError("GET \(baseURL)/v1/models listed no model; give one with --model")
        }
        return id
    }

    /// Sends `prompt` as one streamed request (greedy, `max_tokens` = its output length) and
    /// reports how it went; it never throws: a failure is an outcome with an error.
    public func send(_ prompt: BenchmarkPrompt, endpoint: CompletionEndpoint, model: String,
                     ignoreEOS: Bool) async -> RequestOutcome {
        var body: [String: Any] = [
            "model": model, "max_tokens": prompt.outputTokens, "temperature": 0, "stream": true,
            "stream_options": ["include_usage": true],
        ]
        switch endpoint {
        case .completions: body["prompt"] = prompt.text
        case .chat: body["messages"] = [["role": "user", "content": prompt.text]]
        }
        if ignoreEOS { body["ignore_eos"] = true }
        var request = HTTPClientRequest(url: baseURL + endpoint.path)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "Accept", value: "text/event-stream")
        // A fresh connection per request: llama-server closes a connection after a streamed
        // response, and a request sent on it in the meantime failed at once (connection reset),
        // every other request. A local connect costs far less than a token.
        request.headers.add(name: "Connection", value: "close")
        addAuthorization(&request)
        // A dictionary of strings, numbers and booleans always serialises.
        request.body = .bytes(ByteBuffer(bytes: Array(try! JSONSerialization.data(withJSONObject: body))))

        let start = ContinuousClock.now
        func elapsed() -> Double {
            let d = ContinuousClock.now - start
            return Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
        }
        do {
            let response = try await http.execute(request, timeout: requestTimeout)
            guard response.status == .ok else {
                let text = String(buffer: try await response.body.collect(upTo: 1 << 16))
                return .failure("HTTP \(response.status.code): \(text.prefix(500))", promptTokens: prompt.promptTokens,
                                latency: elapsed())
            }
            var parser = ServerSentEventParser()
            var streamed = StreamedResponse()
            for try await buffer in response.body {
                let now = elapsed()
                for payload in parser.feed(buffer.readableBytesView) { try streamed.receive(payload, at: now) }
            }
            for payload in parser.finish() { try streamed.receive(payload, at: elapsed()) }
            let latency = elapsed()
            guard let firstToken = streamed.timeToFirstToken else {
                return .failure("the stream ended without any generated text", promptTokens: prompt.promptTokens,
                                latency: latency)
            }
            let outputTokens = streamed.completionTokens
                ?? tokenizer.encode(streamed.generatedText, addSpecial: false, parseSpecial: false).count
            return RequestOutcome(promptTokens: streamed.promptTokens ?? prompt.promptTokens, outputTokens: outputTokens,
                                  timeToFirstToken: firstToken, interTokenLatencies: streamed.interTokenLatencies,
                                  latency: latency)
        } catch {
            return .failure("\(error)", promptTokens: prompt.promptTokens, latency: elapsed())
        }
    }

    private func addAuthorization(_ request: inout HTTPClientRequest) {
        if let apiKey { request.headers.add(name: "Authorization", value: "Bearer \(apiKey)") }
    }
}
