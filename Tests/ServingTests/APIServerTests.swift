import Engine
import Foundation
import Synchronization
import Testing
import TestSupport

/// The real api-server binary on the default model, driven over HTTP.
@Suite(.serialized) struct APIServerTests {
    static let prompts = [
        "The capital of France is", "Once upon a time", "def fibonacci(n):", "The three primary colors are",
        "Water boils at", "My favourite food is", "In the year 2000,", "The quick brown fox",
    ]

    /// A greedy completion's text and finish reason.
    static func complete(_ client: HTTPTestClient, _ prompt: String, maxTokens: Int = 16,
                         extra: [String: Any] = [:]) throws -> (text: String, finishReason: String, json: [String: Any]) {
        var body: [String: Any] = ["prompt": prompt, "max_tokens": maxTokens, "temperature": 0]
        body.merge(extra) { $1 }
        let response = try client.post("/v1/completions", json: body)
        guard response.status == 200, let json = response.json(), let choices = json["choices"] as? [[String: Any]],
              let text = choices.first?["text"] as? String else {
            throw APIServerProcess.Failure(description: "completion failed: \(response.status) \(response.text)")
        }
        return (text, choices[0]["finish_reason"] as? String ?? "", json)
    }

    /// A streamed greedy completion: its text pieces joined, its finish reason, its events.
    static func stream(_ client: HTTPTestClient, _ prompt: String, maxTokens: Int = 16,
                       extra: [String: Any] = [:]) throws -> (text: String, finishReason: String, events: [String]) {
        var body: [String: Any] = ["prompt": prompt, "max_tokens": maxTokens, "temperature": 0, "stream": true]
        body.merge(extra) { $1 }
        let response = try client.post("/v1/completions", json: body)
        guard response.status == 200 else {
            throw APIServerProcess.Failure(description: "stream failed: \(response.status) \(response.text)")
        }
        var text = "", finishReason = ""
        for event in response.events where event != "[DONE]" {
            let json = try JSONSerialization.jsonObject(with: Data(event.utf8)) as? [String: Any]
            for choice in json?["choices"] as? [[String: Any]] ?? [] {
                text += choice["text"] as? String ?? ""
                if let reason = choice["finish_reason"] as? String { finishReason = reason }
            }
        }
        return (text, finishReason, response.events)
    }

    static func error(_ response: HTTPTestResponse) -> (message: String, type: String, param: String?) {
        let error = response.json()?["error"] as? [String: Any] ?? [:]
        return (error["message"] as? String ?? "<no message in \(response.text)>", error["type"] as? String ?? "",
                error["param"] as? String)
    }

    @Test func completionsStreamedAndNotAgree() throws {
        let server = try APIServerProcess()
        defer { server.stop() }
        let whole = try Self.complete(server.client, "The capital of France is", maxTokens: 12)
        #expect(!whole.text.isEmpty)
        #expect(whole.finishReason == "length")
        let usage = whole.json["usage"] as? [String: Any]
        #expect(usage?["completion_tokens"] as? Int == 12)
        #expect((usage?["prompt_tokens"] as? Int ?? 0) > 0)

        let streamed = try Self.stream(server.client, "The capital of France is", maxTokens: 12,
                                       extra: ["stream_options": ["include_usage": true]])
        #expect(streamed.text == whole.text)
        #expect(streamed.finishReason == "length")
        #expect(streamed.events.last == "[DONE]")
        let usageChunk = try JSONSerialization.jsonObject(with: Data(streamed.events.dropLast().last!.utf8)) as? [String: Any]
        #expect((usageChunk?["choices"] as? [Any])?.isEmpty == true)
        #expect((usageChunk?["usage"] as? [String: Any])?["completion_tokens"] as? Int == 12)
        try server.waitUntilIdle()
    }

    @Test func stopStringsAreCutAndNeverStreamed() throws {
        let server = try APIServerProcess()
        defer { server.stop() }
        let free = try Self.complete(server.client, "The capital of France is", maxTokens: 24)
        // A stop string taken from the middle of the free text, spanning several tokens.
        let characters = Array(free.text)
        #expect(characters.count > 12)
        let stop = String(characters[6..<12])
        let expected = String(free.text[..<free.text.range(of: stop)!.lowerBound])
        let cut = try Self.complete(server.client, "The capital of France is", maxTokens: 24, extra: ["stop": [stop]])
        #expect(cut.text == expected)
        #expect(cut.finishReason == "stop")
        let streamed = try Self.stream(server.client, "The capital of France is", maxTokens: 24, extra: ["stop": stop])
        #expect(streamed.text == expected)
        #expect(streamed.finishReason == "stop")
        #expect(!streamed.events.joined().contains(stop))
        try server.waitUntilIdle()
    }

    @Test func echoWithLogprobsAndNoNewTokensScoresThePrompt() throws {
        let server = try APIServerProcess()
        defer { server.stop() }
        let prompt = "The capital of France is Paris"
        let result = try Self.complete(server.client, prompt, maxTokens: 0, extra: ["echo": true, "logprobs": 1])
        #expect(result.text == prompt)
        let choice = (result.json["choices"] as? [[String: Any]])?.first
        let logprobs = choice?["logprobs"] as? [String: Any]
        let tokenLogprobs = logprobs?["token_logprobs"] as? [Any] ?? []
        let usage = result.json["usage"] as? [String: Any]
        #expect(tokenLogprobs.count == usage?["prompt_tokens"] as? Int)
        #expect(tokenLogprobs.first is NSNull)
        #expect(tokenLogprobs.dropFirst().allSatisfy { ($0 as? Double).map { $0 <= 0 } ?? false })
        #expect((logprobs?["tokens"] as? [String])?.joined() == prompt)
        #expect(usage?["completion_tokens"] as? Int == 0)
    }

    @Test func everyErrorIsShapedAndTheServerKeepsServing() throws {
        let server = try APIServerProcess()
        defer { server.stop() }
        let client = server.client
        let maxModelLength = ((try client.get("/v1/models").json()?["data"] as? [[String: Any]])?.first?["max_model_len"] as? Int) ?? 0
        #expect(maxModelLength > 0)

        var response = try client.post("/v1/completions", body: Data("{\"prompt\": ".utf8))
        #expect(response.status == 400)
        #expect(Self.error(response).message == "We could not parse the JSON body of your request: the body is not valid JSON")

        response = try client.post("/v1/completions", json: ["prompt": "hi", "temperature": -1])
        #expect(response.status == 400)
        #expect(Self.error(response).param == "temperature")
        #expect(Self.error(response).message == "Invalid value for 'temperature': -1.0 must be a finite number >= 0.")

        response = try client.post("/v1/completions", json: ["prompt": "hi", "max_tokens": "many"])
        #expect(response.status == 400)
        #expect(Self.error(response).message == "Invalid type for 'max_tokens': expected an integer")

        response = try client.post("/v1/completions", json: ["max_tokens": 3])
        #expect(response.status == 400)
        #expect(Self.error(response).message == "'prompt' is a required property")

        response = try client.post("/v1/chat/completions", json: ["messages": [["role": "user", "content": "hi"]], "n": 0])
        #expect(response.status == 400)
        #expect(Self.error(response).message == "Invalid value for 'n': 0 must be between 1 and 128.")

        response = try client.post("/v1/completions", json: ["prompt": [1, 2, 3], "max_tokens": maxModelLength])
        #expect(response.status == 400)
        #expect(Self.error(response).message == "This model's maximum context length is \(maxModelLength) tokens. However, you requested \(maxModelLength + 3) tokens (3 in the prompt, \(maxModelLength) for the completion). Please reduce the length of the prompt or max_tokens.")

        response = try client.post("/v1/completions", json: ["prompt": "hi", "model": "gpt-4"])
        #expect(response.status == 404)
        #expect(Self.error(response).message == "The model `gpt-4` does not exist.")

        response = try client.get("/v1/nothing-here")
        #expect(response.status == 404)

        // Still serving, with every block back.
        #expect(try Self.complete(client, "Hello", maxTokens: 4).text.isEmpty == false)
        try server.waitUntilIdle()
    }

    @Test func authBodyLimitAndAFullQueue() throws {
        let server = try APIServerProcess(["--api-key", "sesame", "--max-body-bytes", "2048", "--max-num-seqs", "1",
                                           "--max-waiting-requests", "1"])
        defer { server.stop() }
        let client = server.client
        let auth = ["Authorization": "Bearer sesame"]

        var response = try client.post("/v1/completions", json: ["prompt": "hi"])
        #expect(response.status == 401)
        #expect(Self.error(response).message == "Incorrect API key provided: send it as 'Authorization: Bearer <key>'.")
        response = try client.post("/v1/completions", json: ["prompt": "hi"], headers: ["Authorization": "Bearer wrong"])
        #expect(response.status == 401)
        #expect(try client.get("/health").status == 200)

        response = try client.post("/v1/completions", json: ["prompt": String(repeating: "x", count: 4096)], headers: auth)
        #expect(response.status == 413)
        #expect(Self.error(response).message == "The request body is larger than the limit of 2048 bytes.")

        // One request runs, one waits, the third is refused with 429 and Retry-After.
        let long: [String: Any] = ["prompt": "Count to a thousand:", "max_tokens": 400, "temperature": 0, "ignore_eos": true,
                                   "stream": true]
        let body = try JSONSerialization.data(withJSONObject: long)
        let checked = Flag()
        let hold = { @Sendable in
            try client.request("POST", "/v1/completions", headers: auth, body: body) { _ in checked.isSet }
        }
        let running = Thread.detachNewThreadWithResult(hold)
        try server.waitUntil("one request running", seconds: 60) { try server.load()["runningRequests"] == 1 }
        let waiting = Thread.detachNewThreadWithResult(hold)
        try server.waitUntil("one request running and one waiting", seconds: 60) {
            let load = try server.load()
            return load["runningRequests"] == 1 && load["waitingRequests"] == 1
        }
        response = try client.post("/v1/completions", json: ["prompt": "hi", "max_tokens": 2], headers: auth)
        #expect(response.status == 429)
        #expect(response.headers["retry-after"] == "1")
        #expect(Self.error(response).message == "The server is busy: 1 requests are waiting (limit 1); retry later.")
        checked.set()
        #expect(try running.value().status == 200)
        #expect(try waiting.value().status == 200)
        try server.waitUntilIdle(seconds: 30)
        response = try client.post("/v1/completions", json: ["prompt": "hi", "max_tokens": 2], headers: auth)
        #expect(response.status == 200)
    }

    @Test func aClientThatHangsUpMidStreamFreesItsBlocks() throws {
        let server = try APIServerProcess()
        defer { server.stop() }
        let body = try JSONSerialization.data(withJSONObject: [
            "prompt": "Write a long story:", "max_tokens": 1000, "temperature": 0, "ignore_eos": true, "stream": true,
        ] as [String: Any])
        let partial = try server.client.request("POST", "/v1/completions", body: body) { $0 >= 3 }
        #expect(partial.status == 200)
        // The socket is closed now; the engine must drop the request and every block at once.
        try server.waitUntilIdle(seconds: 1)
        #expect(try Self.complete(server.client, "Hello", maxTokens: 4).finishReason == "length")
    }

    @Test func sixtyFourConcurrentStreamsEqualTheirRequestAlone() throws {
        let server = try APIServerProcess(["--max-num-seqs", "8"])
        defer { server.stop() }
        let client = server.client
        let alone = try Self.prompts.map { try Self.complete(client, $0, maxTokens: 16).text }
        let together = try concurrently(64) { index in
            try Self.stream(client, Self.prompts[index % Self.prompts.count], maxTokens: 16)
        }
        for (index, result) in together.enumerated() {
            #expect(result.text == alone[index % Self.prompts.count], "request \(index)")
            #expect(result.events.last == "[DONE]")
        }
        try server.waitUntilIdle()
    }

    @Test func aSmallPoolPreemptsAndStillAnswersExactly() throws {
        // 16 blocks of 16 tokens: eight sequences of ~6 prompt + 64 output tokens need 40.
        let server = try APIServerProcess(["--max-num-seqs", "8", "--num-gpu-blocks-override", "16", "--no-enable-prefix-caching"])
        defer { server.stop() }
        let client = server.client
        let alone = try Self.prompts.map { try Self.complete(client, $0, maxTokens: 64, extra: ["ignore_eos": true]).text }
        let together = try concurrently(Self.prompts.count) { index in
            try Self.stream(client, Self.prompts[index], maxTokens: 64, extra: ["ignore_eos": true]).text
        }
        #expect(together == alone)
        #expect(try server.metric("tandem:num_preemptions_total") > 0)
        try server.waitUntilIdle()
    }

    @Test func aRepeatedLongPrefixIsServedFromTheCache() throws {
        let server = try APIServerProcess()
        defer { server.stop() }
        let prefix = String(repeating: "Tandem serves language models on CPUs with paged attention. ", count: 12)
        let first = try Self.complete(server.client, prefix + "In short,", maxTokens: 8)
        let hitsBefore = try server.metric("tandem:prefix_cache_hits_total")
        let second = try Self.complete(server.client, prefix + "In short,", maxTokens: 8)
        #expect(second.text == first.text)
        #expect(try server.metric("tandem:prefix_cache_hits_total") > hitsBefore)
        let details = (second.json["usage"] as? [String: Any])?["prompt_tokens_details"] as? [String: Any]
        #expect((details?["cached_tokens"] as? Int ?? 0) >= 64)
        #expect(try server.metric("tandem:prefix_cache_queries_total") > 0)
    }

    @Test func routerEndpointsMetricsPortAndControlPlane() throws {
        let metricsPort = try freeLoopbackPort(), controlPort = try freeLoopbackPort()
        // The flag wins over TANDEM_CPU_KERNELS; /get_server_info names the path that runs.
        let server = try APIServerProcess(["--engine-worker-queue-port", String(controlPort), "--metrics-port", String(metricsPort),
                                           "--cpu-kernels", "portable"],
                                          environment: ["TANDEM_CPU_KERNELS": CPUKernels.supportedPaths[0].rawValue])
        defer { server.stop() }
        let client = server.client
        #expect(try HTTPTestClient(port: metricsPort).get("/metrics").text.contains("tandem:num_requests_running"))
        let control = HTTPTestClient(port: controlPort)
        #expect(try control.get("/load").json()?["kvBlocksUsed"] as? Int == 0)
        let unknown = try control.post("/abort", json: ["request_id": "cmpl-nothing"])
        #expect(unknown.status == 404)
        #expect(Self.error(unknown).message == "No running request has the id 'cmpl-nothing'.")
        #expect(try client.get("/health_generate").status == 200)
        #expect(try client.get("/get_model_info").json()?["is_generation"] as? Bool == true)
        let serverInfo = try client.get("/get_server_info").json()
        #expect(serverInfo?["status"] as? String == "serving")
        #expect(serverInfo?["cpu_kernels"] as? String == "portable")
        #expect(serverInfo?["cpu_kernel_variant"] as? String == "portable")
        #expect(try client.get("/get_load").json()?["load"] as? Int == 0)
        #expect(try client.post("/flush_cache", body: Data()).status == 200)
        let metrics = try client.get("/metrics").text
        for name in ["tandem:num_requests_running", "tandem:num_requests_waiting", "tandem:kv_cache_usage_perc",
                     "tandem:prompt_tokens_total", "tandem:generation_tokens_total", "tandem:time_to_first_token_seconds",
                     "tandem:time_per_output_token_seconds", "tandem:e2e_request_latency_seconds",
                     "tandem:request_queue_time_seconds", "tandem:num_preemptions_total",
                     "tandem:prefix_cache_hits_total", "tandem:prefix_cache_queries_total"] {
            #expect(metrics.contains(name), "\(name) missing from /metrics")
        }
        try server.waitUntilIdle()
        // Drain through the control plane: /health turns 503 and new requests are refused.
        #expect(try control.post("/drain", body: Data()).status == 200)
        #expect(try client.get("/health").status == 503)
        let refused = try client.post("/v1/completions", json: ["prompt": "hi", "max_tokens": 2])
        #expect(refused.status == 503)
        #expect(Self.error(refused).message == "The server is not serving: the server is draining.")
    }

    @Test func sigtermDrainsRunningRequestsThenExitsZero() throws {
        let server = try APIServerProcess()
        let client = server.client
        let streaming = Thread.detachNewThreadWithResult {
            try Self.stream(client, "Once upon a time", maxTokens: 48, extra: ["ignore_eos": true])
        }
        try server.waitUntil("the request is running") { try server.load()["runningRequests"] == 1 }
        kill(server.process.processIdentifier, SIGTERM)
        try server.waitUntil("/health is 503") { (try? client.get("/health"))?.status == 503 || !server.process.isRunning }
        let result = try streaming.value()
        #expect(result.finishReason == "length")
        #expect(result.events.last == "[DONE]")
        #expect(server.waitForExit() == 0)
    }

    @Test func configurationErrorsExit78() throws {
        let badModel = try runProcess(try APIServerProcess.binary, ["--model", "/nonexistent/model.gguf", "--port", String(try freeLoopbackPort())])
        #expect(badModel.status == 78)
        #expect(badModel.stderr.contains("api-server: model file not found: /nonexistent/model.gguf"))

        let badFlag = try runProcess(try APIServerProcess.binary, ["--kv-cache-dtype", "int8"])
        #expect(badFlag.status == 78)

        let unknownPath = try runProcess(try APIServerProcess.binary, ["--port", String(try freeLoopbackPort())],
                                         environment: ["TANDEM_CPU_KERNELS": "avx3"])
        #expect(unknownPath.status == 78)
        #expect(unknownPath.stderr == "api-server: TANDEM_CPU_KERNELS=avx3 is not a kernel path (choose from: auto, avx512, avx2, portable)\n")
        let badPath = try runProcess(try APIServerProcess.binary, ["--cpu-kernels", "sse"])
        #expect(badPath.status == 78)
        #expect(badPath.stderr.contains("'sse'") && badPath.stderr.contains("--cpu-kernels"), "\(badPath.stderr)")
        for path in [CPUKernelPath.avx512, .avx2] where !CPUKernels.supports(path) {
            let unsupported = try runProcess(try APIServerProcess.binary, ["--port", String(try freeLoopbackPort()),
                                                                            "--cpu-kernels", path.rawValue])
            #expect(unsupported.status == 78)
            #expect(unsupported.stderr.hasPrefix("api-server: cpu kernels '\(path)': this CPU cannot run the \(path) kernels"),
                    "\(unsupported.stderr)")
        }

        let held = try HeldPort()
        let busy = try runProcess(try APIServerProcess.binary, ["--port", String(try freeLoopbackPort()), "--cache-queue-port", String(held.port)])
        #expect(busy.status == 78)
        #expect(busy.stderr.contains("--cache-queue-port \(held.port) on 127.0.0.1 cannot be used: Address already in use"))
    }
}

extension Thread {
    /// Runs `body` on a new thread; `value()` waits for its result.
    static func detachNewThreadWithResult<T: Sendable>(_ body: @escaping @Sendable () throws -> T) -> ThreadResult<T> {
        let result = ThreadResult<T>()
        Thread.detachNewThread {
            result.set(Result { try body() })
        }
        return result
    }
}

final class ThreadResult<T: Sendable>: Sendable {
    private let done = DispatchSemaphore(value: 0)
    private let slot = Mutex<Result<T, any Error>?>(nil)

    func set(_ result: Result<T, any Error>) {
        slot.withLock { $0 = result }
        done.signal()
    }

    func value() throws -> T {
        done.wait()
        return try slot.withLock { $0 }!.get()
    }
}

final class Flag: Sendable {
    private let value = Mutex(false)
    var isSet: Bool { value.withLock { $0 } }
    func set() { value.withLock { $0 = true } }
}
