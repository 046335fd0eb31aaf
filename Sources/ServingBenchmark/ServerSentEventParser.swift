/// Incremental parser of a `text/event-stream` body (the WHATWG Server-Sent Events format):
/// bytes go in as they arrive, split anywhere (inside a line, a CRLF or a UTF-8 character),
/// and the `data` of each complete event comes out. Lines end with LF, CRLF or CR; `data:`
/// lines of one event are joined with LF; comments (`:`) and other fields are skipped.
public struct ServerSentEventParser: Sendable {
    private var pending: [UInt8] = []
    private var dataLines: [String] = []
    private var hasData = false

    public init() {}

    /// The data of every event that `bytes` completes.
    public mutating func feed(_ bytes: some Sequence<UInt8>) -> [String] {
        pending.append(contentsOf: bytes)
        var events: [String] = []
        var lineStart = 0
        var index = 0
        while index < pending.count {
            let byte = pending[index]
            if byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r") {
                // A CR as the last byte may be the first half of a CRLF: wait for the next byte.
                if byte == UInt8(ascii: "\r") && index + 1 == pending.count { break }
                handleLine(pending[lineStart..<index], into: &events)
                index += (byte == UInt8(ascii: "\r") && pending[index + 1] == UInt8(ascii: "\n")) ? 2 : 1
                lineStart = index
            } else {
                index += 1
            }
        }
        pending.removeFirst(lineStart)
        return events
    }

    /// At the end of the stream: the data of a last event that no blank line closed.
    public mutating func finish() -> [String] {
        var events: [String] = []
        if !pending.isEmpty {
            let last = pending.last == UInt8(ascii: "\r") ? pending.dropLast() : pending[...]
            handleLine(last, into: &events)
            pending = []
        }
        handleLine([][...], into: &events)
        return events
    }

    private mutating func handleLine(_ line: ArraySlice<UInt8>, into events: inout [String]) {
        if line.isEmpty {
            if hasData { events.append(dataLines.joined(separator: "\n")) }
            dataLines = []
            hasData = false
            return
        }
        if line.first == UInt8(ascii: ":") { return }
        let colon = line.firstIndex(of: UInt8(ascii: ":")) ?? line.endIndex
        guard line[line.startIndex..<colon].elementsEqual("data".utf8) else { return }
        var valueStart = colon == line.endIndex ? colon : colon + 1
        if valueStart < line.endIndex && line[valueStart] == UInt8(ascii: " ") { valueStart += 1 }
        dataLines.append(String(decoding: line[valueStart...], as: UTF8.self))
        hasData = true
    }
}
