import Foundation
import Hummingbird

/// Turns choice events into the chunks of one streamed response (completions or chat).
protocol ChunkProducer: Sendable {
    /// Chunks before any event (the chat role, an echoed prompt).
    mutating func start() -> [any Encodable & Sendable]
    mutating func chunks(index: Int, event: ChoiceEvent) -> [any Encodable & Sendable]
    /// Chunks after the last event (the usage chunk).
    mutating func end() -> [any Encodable & Sendable]
}

/// Server-sent events as OpenAI streams them: `data: <json>\n\n` per chunk, then `data: [DONE]`.
enum EventStream {
    static let headers: HTTPFields = [.contentType: "text/event-stream", .cacheControl: "no-cache"]

    /// A streamed response over `events`. An `OpenAIError` while streaming (the engine failed)
    /// goes out as an error event before `[DONE]`. `cancel` runs when the body ends for any
    /// reason, including a client that went away (a failed write), so requests still running
    /// are aborted.
    static func response(events: AsyncThrowingStream<(Int, ChoiceEvent), any Error>, producer: some ChunkProducer,
                         cancel: @escaping @Sendable () -> Void) -> Response {
        Response(status: .ok, headers: headers, body: ResponseBody { writer in
            defer { cancel() }
            var producer = producer
            func send(_ values: [any Encodable & Sendable]) async throws {
                for value in values {
                    var buffer = ByteBuffer(string: "data: ")
                    buffer.writeBytes(try JSONEncoder.api.encode(value))
                    buffer.writeString("\n\n")
                    try await writer.write(buffer)
                }
            }
            try await send(producer.start())
            do {
                for try await (index, event) in events {
                    try await send(producer.chunks(index: index, event: event))
                }
                try await send(producer.end())
            } catch let error as OpenAIError {
                var buffer = ByteBuffer(string: "data: ")
                buffer.writeBytes(error.jsonBody)
                buffer.writeString("\n\n")
                try await writer.write(buffer)
            }
            try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
            try await writer.finish(nil)
        })
    }
}
