import Foundation
import Testing
import TestSupport

/// Prefill–decode disaggregation between real api-server processes, the test playing the
/// router: greedy outputs through P → D equal one mixed instance's, token for token.
@Suite(.serialized) struct PDDisaggregationTests {
    /// Prompt lengths around block-size (16) multiples, and a few others.
    static let promptLengths = [1, 2, 7, 15, 16, 17, 31, 32, 33, 47, 48, 49, 63, 64, 65, 100, 127, 128, 129, 200, 255, 256, 257]

    /// A deterministic prompt of `length` token ids.
    static func prompt(_ length: Int, seed: Int) -> [Int] {
        var state = UInt64(seed * 7919 + length)
        return (0..<length).map { _ in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return 300 + Int((state >> 33) % 20000)
        }
    }

    /// What a completion produced, per token: its text and log-probability.
    struct Tokens: Equatable, CustomStringConvertible {
        var tokens: [String]
        var logprobs: [Double]
        var finishReason: String
        var description: String { "\(tokens) \(logprobs) \(finishReason)" }
    }

    static func tokens(ofCompletion response: HTTPTestResponse) throws -> Tokens {
        guard response.status == 200, let choice = (response.json()?["choices"] as? [[String: Any]])?.first,
              let logprobs = choice["logprobs"] as? [String: Any] else {
            throw APIServerProcess.Failure(description: "completion failed: \(response.status) \(response.text)")
        }
        return Tokens(tokens: logprobs["tokens"] as? [String] ?? [], logprobs: (logprobs["token_logprobs"] as? [Double]) ?? [],
                      finishReason: choice["finish_reason"] as? String ?? "")
    }

    static func tokens(ofStream response: HTTPTestResponse) throws -> Tokens {
        guard response.status == 200 else { throw APIServerProcess.Failure(description: "stream failed: \(response.status) \(response.text)") }
        var result = Tokens(tokens: [], logprobs: [], finishReason: "")
        for event in response.events where event != "[DONE]" {
            let json = try JSONSerialization.jsonObject(with: Data(event.utf8)) as? [String: Any]
            if json?["error"] != nil { throw APIServerProcess.Failure(description: "stream error: \(event)") }
            for choice in json?["choices"] as? [[String: Any]] ?? [] {
                let logprobs = choice["logprobs"] as? [String: Any]
                result.tokens += logprobs?["tokens"] as? [String] ?? []
                result.logprobs += logprobs?["token_logprobs"] as? [Double] ?? []
                if let reason = choice["finish_reason"] as? String { result.finishReason = reason }
            }
        }
        return result
    }

    static func body(_ prompt: [Int], stream: Bool, maxTokens: Int = 8) -> [String: Any] {
        ["prompt": prompt, "max_tokens": maxTokens, "temperature": 0, "logprobs": 1, "stream": stream]
    }

    /// Every prompt over ipc and tcp, streamed and not, equals the mixed instance's output.
    @Test(arguments: ["float32", "float16"])
    func greedyOutputsEqualMixed(dtype: String) throws {
        let common = ["--kv-cache-dtype", dtype, "--num-gpu-blocks-override", "256"]
        let mixed = try APIServerProcess(common)
        defer { mixed.stop() }
        let pair = try PDPair(common: common)
        defer { pair.stop() }
        let info = try pair.decode.client.get("/get_server_info").json() ?? [:]
        #expect(info["splitwise_role"] as? String == "decode")
        #expect(info["cache_transfer_protocol"] as? String == "ipc,tcp")
        #expect((try pair.prefill.client.get("/get_server_info").json() ?? [:])["splitwise_role"] as? String == "prefill")
        for (index, length) in Self.promptLengths.enumerated() {
            let prompt = Self.prompt(length, seed: index)
            let expected = try Self.tokens(ofCompletion: try mixed.client.post("/v1/completions", json: Self.body(prompt, stream: false)))
            #expect(expected.tokens.count == 8 || expected.finishReason == "stop")
            // Alternate the protocol and the streaming so each prompt length sees both over the run.
            for (transfer, stream) in [("tcp", index % 2 == 0), ("ipc", index % 2 == 1)] {
                let legs = try pair.send(body: Self.body(prompt, stream: stream), protocol: transfer)
                #expect(legs.prefill.status == 200, "\(transfer) prompt \(length): P answered \(legs.prefill.status) \(legs.prefill.text)")
                let result = legs.prefill.json() ?? [:]
                #expect(result["prompt_tokens"] as? Int == length)
                let got = stream ? try Self.tokens(ofStream: legs.decode) : try Self.tokens(ofCompletion: legs.decode)
                #expect(got == expected, "\(transfer) \(dtype) prompt of \(length) tokens, stream \(stream)")
            }
        }
        try pair.waitUntilIdle()
    }

    /// Chat completions through P → D: the same messages give the mixed instance's tokens.
    @Test func chatCompletionsEqualMixed() throws {
        let common = ["--num-gpu-blocks-override", "128"]
        let mixed = try APIServerProcess(common)
        defer { mixed.stop() }
        let pair = try PDPair(common: common)
        defer { pair.stop() }
        func tokens(_ response: HTTPTestResponse, stream: Bool) throws -> [String] {
            guard response.status == 200 else { throw APIServerProcess.Failure(description: "\(response.status) \(response.text)") }
            let chunks = stream ? response.events.filter { $0 != "[DONE]" } : [response.text]
            return try chunks.flatMap { chunk -> [String] in
                let json = try JSONSerialization.jsonObject(with: Data(chunk.utf8)) as? [String: Any]
                let choice = (json?["choices"] as? [[String: Any]])?.first
                let content = (choice?["logprobs"] as? [String: Any])?["content"] as? [[String: Any]] ?? []
                return content.compactMap { $0["token"] as? String }
            }
        }
        for (index, question) in ["What is the capital of France?", "Write a haiku about the sea.", "Count from one to five."].enumerated() {
            let body: [String: Any] = ["messages": [["role": "user", "content": question]], "max_tokens": 8, "temperature": 0,
                                       "logprobs": true, "stream": index == 1]
            let expected = try tokens(try mixed.client.post("/v1/chat/completions", json: body), stream: index == 1)
            #expect(!expected.isEmpty)
            let legs = try pair.send("/v1/chat/completions", body: body, protocol: index == 2 ? "tcp" : "ipc")
            #expect(legs.prefill.status == 200, "\(legs.prefill.text)")
            #expect(try tokens(legs.decode, stream: index == 1) == expected, "\(question)")
        }
        try pair.waitUntilIdle()
    }

    /// D reuses its own prefix-cache hits: a prompt sent twice moves only the blocks D lacks.
    @Test func decodeReceivesOnlyTheBlocksItLacks() throws {
        let pair = try PDPair(common: ["--num-gpu-blocks-override", "256"])
        defer { pair.stop() }
        let prompt = Self.prompt(50, seed: 99)  // 3 full blocks and 2 tokens
        for (round, expectedBlocks) in [(0, 4), (1, 1)] {
            let legs = try pair.send(body: Self.body(prompt, stream: false), protocol: "tcp")
            #expect(legs.decode.status == 200, "round \(round): \(legs.decode.text)")
            #expect(legs.prefill.json()?["transferred_blocks"] as? Int == expectedBlocks, "round \(round): \(legs.prefill.text)")
        }
        try pair.waitUntilIdle()
    }

    /// lm-evaluation-harness's loglikelihood requests (`echo`, `logprobs`, `max_tokens` 0 or 1)
    /// through P → D: P computes the prompt logprobs and hands them over with the first token;
    /// the answer equals the mixed instance's.
    @Test func echoWithLogprobsEqualsMixed() throws {
        let common = ["--num-gpu-blocks-override", "128"]
        let mixed = try APIServerProcess(common)
        defer { mixed.stop() }
        let pair = try PDPair(common: common)
        defer { pair.stop() }
        struct Echo: Equatable, CustomStringConvertible {
            var text: String
            var tokens: [String]
            var logprobs: [Double?]
            var top: [[String: Double]?]
            var description: String { "\(text) \(tokens) \(logprobs)" }
            func isClose(to other: Echo) -> Bool {
                text == other.text && tokens == other.tokens && top.map { $0?.keys.sorted() } == other.top.map { $0?.keys.sorted() }
                    && zip(logprobs, other.logprobs).allSatisfy { abs(($0 ?? 0) - ($1 ?? 0)) < 1e-3 && ($0 == nil) == ($1 == nil) }
            }
        }
        func echo(_ response: HTTPTestResponse) throws -> Echo {
            guard response.status == 200, let choice = (response.json()?["choices"] as? [[String: Any]])?.first,
                  let logprobs = choice["logprobs"] as? [String: Any] else {
                throw APIServerProcess.Failure(description: "echo failed: \(response.status) \(response.text)")
            }
            return Echo(text: choice["text"] as? String ?? "", tokens: logprobs["tokens"] as? [String] ?? [],
                        logprobs: (logprobs["token_logprobs"] as? [Any] ?? []).map { $0 as? Double },
                        top: (logprobs["top_logprobs"] as? [Any] ?? []).map { $0 as? [String: Double] })
        }
        for (index, length) in [15, 16, 17, 40].enumerated() {
            for maxTokens in [0, 1] {
                let body: [String: Any] = ["prompt": Self.prompt(length, seed: 20 + index), "echo": true, "logprobs": 1,
                                           "max_tokens": maxTokens, "temperature": 0]
                let expected = try echo(try mixed.client.post("/v1/completions", json: body))
                #expect(expected.tokens.count == length + maxTokens)
                let legs = try pair.send(body: body, protocol: index % 2 == 0 ? "tcp" : "ipc")
                #expect(legs.prefill.status == 200, "\(legs.prefill.text)")
                let got = try echo(legs.decode)
                #expect(got.isClose(to: expected), "prompt of \(length) tokens, max_tokens \(maxTokens): \(got) vs \(expected)")
            }
        }
        try pair.waitUntilIdle()
    }

    @Test func layoutMismatchIsRefusedNamingTheField() throws {
        let pair = try PDPair(prefillArguments: ["--kv-cache-dtype", "float32"], decodeArguments: ["--kv-cache-dtype", "float16"])
        defer { pair.stop() }
        let legs = try pair.send(body: Self.body(Self.prompt(20, seed: 1), stream: false), protocol: "tcp")
        let message = "KV layout mismatch: kv_cache_dtype is float32 on the prefill instance but float16 on the decode instance"
        #expect(legs.prefill.status == 502)
        #expect(APIServerTests.error(legs.prefill).message.contains(message), "\(legs.prefill.text)")
        #expect(legs.decode.status == 500)
        #expect(APIServerTests.error(legs.decode).message.contains(message), "\(legs.decode.text)")
        try pair.waitUntilIdle()
        // Both keep serving.
        #expect(try pair.prefill.client.post("/v1/completions", json: Self.body([1, 2, 3], stream: false)).status == 200)
        #expect(try pair.decode.client.post("/v1/completions", json: Self.body([1, 2, 3], stream: false)).status == 200)
    }
}
