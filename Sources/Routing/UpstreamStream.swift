import AsyncAlgorithms
import NIOCore
import Synchronization

/// A worker's streamed response body forwarded chunk by chunk through a channel: the forwarding
/// task waits until the client side took each chunk (back-pressure reaches the worker's socket:
/// the connection stops reading while chunks wait), and cancelling closes the worker's request.
final class UpstreamStream: Sendable {
    let chunks = AsyncThrowingChannel<ByteBuffer, any Error>()
    private let task = Mutex<Task<Void, Never>?>(nil)
    private let closeUpstream: @Sendable () -> Void

    init(_ body: UpstreamBody) {
        closeUpstream = body.cancel
        let chunks = chunks
        let forwarding = Task {
            do {
                for try await chunk in body.chunks {
                    await chunks.send(chunk)
                    if Task.isCancelled { break }
                }
                chunks.finish()
            } catch {
                chunks.fail(error)
            }
        }
        task.withLock { $0 = forwarding }
    }

    func cancel() {
        task.withLock { $0 }?.cancel()
        closeUpstream()
        chunks.fail(CancellationError())
    }
}

/// Watches the start of a streamed OpenAI response for its first generated token: until then
/// the router holds the events back, so a worker that fails may be replaced by another without
/// the client seeing anything.
public struct FirstTokenWatch: Sendable {
    private var text = ""
    public private(set) var sawToken = false
    public private(set) var sawError = false

    public init() {}

    /// Adds a chunk; true once an event carries a token (`"text"` or `"content"` not empty).
    public mutating func add(_ chunk: ByteBuffer) -> Bool {
        guard !sawToken else { return true }
        text += String(buffer: chunk)
        for key in ["\"text\":\"", "\"content\":\"", "\"text\": \"", "\"content\": \""] {
            var searchStart = text.startIndex
            while let range = text.range(of: key, range: searchStart..<text.endIndex) {
                if range.upperBound < text.endIndex, text[range.upperBound] != "\"" {
                    sawToken = true
                    return true
                }
                searchStart = range.upperBound
            }
        }
        if text.contains("data: {\"error\"") { sawError = true }
        return false
    }
}
