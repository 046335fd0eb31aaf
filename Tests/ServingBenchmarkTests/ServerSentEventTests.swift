import Engine
import GGUF
import Testing
import ServingBenchmark

@Suite struct ServerSentEventParserTests {
    static let stream = Array((
        ": keep-alive comment\n"
        + "data: {\"choices\":[{\"text\":\"héllo\"}]}\n\n"
        + "event: message\r\ndata: first line\r\ndata:second line\r\n\r\n"
        + "id: 7\rdata: 日本語 ✓\r\r"
        + "data: [DONE]\n\n"
    ).utf8)
    static let expected = ["{\"choices\":[{\"text\":\"héllo\"}]}", "first line\nsecond line", "日本語 ✓", "[DONE]"]

    @Test func wholeStream() {
        var parser = ServerSentEventParser()
        #expect(parser.feed(Self.stream) + parser.finish() == Self.expected)
    }

    @Test func splitAtEveryByteBoundary() {
        for cut in 0...Self.stream.count {
            var parser = ServerSentEventParser()
            let events = parser.feed(Self.stream[..<cut]) + parser.feed(Self.stream[cut...]) + parser.finish()
            #expect(events == Self.expected, "split at byte \(cut)")
        }
    }

    @Test func oneByteAtATime() {
        var parser = ServerSentEventParser()
        var events: [String] = []
        for byte in Self.stream { events += parser.feed([byte]) }
        #expect(events + parser.finish() == Self.expected)
    }

    @Test func manyRandomSplits() {
        var generator = SplitMix64(seed: 3)
        for _ in 0..<200 {
            var parser = ServerSentEventParser()
            var events: [String] = []
            var index = 0
            while index < Self.stream.count {
                let length = Int(generator.next() % 9)
                let end = min(Self.stream.count, index + length)
                events += parser.feed(Self.stream[index..<end])
                index = end
            }
            #expect(events + parser.finish() == Self.expected)
        }
    }

    @Test func aLastEventWithoutBlankLineIsDeliveredAtTheEnd() {
        var parser = ServerSentEventParser()
        #expect(parser.feed(Array("data: a\n\ndata: b".utf8)) == ["a"])
        #expect(parser.finish() == ["b"])
    }

    @Test func aBlankLineWithoutDataIsNoEvent() {
        var parser = ServerSentEventParser()
        #expect(parser.feed(Array("\n\nevent: ping\n\n: x\n\n".utf8)) + parser.finish() == [])
    }
}

@Suite struct StreamedResponseTests {
    @Test func completionChunksTimeTheTokensAndUsageCountsThem() throws {
        var response = StreamedResponse()
        try response.receive(#"{"choices":[{"index":0,"text":"Hel","finish_reason":null}]}"#, at: 0.5)
        try response.receive(#"{"choices":[{"index":0,"text":"","finish_reason":null}]}"#, at: 0.6)
        try response.receive(#"{"choices":[{"index":0,"text":"lo","finish_reason":null}]}"#, at: 0.75)
        try response.receive(#"{"choices":[{"index":0,"text":"!","finish_reason":"length"}]}"#, at: 1.0)
        try response.receive(#"{"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15}}"#, at: 1.01)
        try response.receive("[DONE]", at: 1.02)
        #expect(response.generatedText == "Hello!")
        #expect(response.timeToFirstToken == 0.5)
        #expect(response.interTokenLatencies == [0.25, 0.25])
        #expect(response.promptTokens == 12 && response.completionTokens == 3)
        #expect(response.finishReason == "length")
        #expect(response.isDone)
    }

    @Test func chatDeltasCountOnlyWhenTheyCarryContent() throws {
        var response = StreamedResponse()
        try response.receive(#"{"choices":[{"index":0,"delta":{"role":"assistant","content":null}}]}"#, at: 0.1)
        try response.receive(#"{"choices":[{"index":0,"delta":{"content":"Hi"}}]}"#, at: 0.3)
        try response.receive(#"{"choices":[{"index":0,"delta":{"content":" there"}}]}"#, at: 0.4)
        #expect(response.timeToFirstToken == 0.3)
        #expect(response.interTokenLatencies.count == 1)
        #expect(abs(response.interTokenLatencies[0] - 0.1) < 1e-12)
        #expect(response.generatedText == "Hi there")
        #expect(response.completionTokens == nil)
    }

    @Test func errorsInTheStreamAreThrownWithTheServersMessage() {
        var response = StreamedResponse()
        #expect(throws: StreamError("the server reported an error mid-stream: out of blocks")) {
            try response.receive(#"{"error":{"message":"out of blocks","type":"server_error"}}"#, at: 0)
        }
        #expect(throws: StreamError("the server sent a chunk that is not a JSON object: not json")) {
            try response.receive("not json", at: 0)
        }
    }
}
