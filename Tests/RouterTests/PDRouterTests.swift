import Foundation
import Glibc
import Testing
import TestSupport

/// Whether the built api-server takes part in PD (`--splitwise-role`): these tests follow the PD
/// contract and run once the workers' side is in the build; until then they are reported as
/// skipped, never as passed.
enum PDSupport {
    static let available: Bool = {
        guard let binary = try? APIServerProcess.binary, let help = try? runProcess(binary, ["--help"]) else { return false }
        return help.stdout.contains("--splitwise-role")
    }()
}

/// The router in front of a real prefill and a real decode api-server (ipc and tcp).
@Suite(.serialized, .enabled(if: PDSupport.available, "needs api-server --splitwise-role (the workers' side of PD)"))
struct PDRouterTests {
    static let prompts: [String] = {
        // Varied lengths, from a few tokens to a few blocks.
        let base = ["The capital of France is", "Once upon a time", "def fibonacci(n):", "Water boils at", "In the year 2000,"]
        return base + base.map { String(repeating: "Tell me more. ", count: 6) + $0 } + base.map { String(repeating: "word ", count: 40) + $0 }
            + base.map { String(repeating: "A long preamble sentence. ", count: 12) + $0 }
    }()

    /// A prefill or decode instance with every PD port, and the URL the router is given for it.
    static func instance(_ role: String, protocols: String) throws -> (APIServerProcess, String) {
        let instance = try PDInstance(role, protocols: protocols, arguments: ["--threads", "1"])
        return (instance.server, instance.routerURL)
    }

    @Test(arguments: ["ipc,tcp", "tcp"])
    func prefillDecodeAnswersEqualAMixedInstance(protocols: String) throws {
        let mixed = try APIServerProcess(["--threads", "1"])
        defer { mixed.stop() }
        let (prefill, prefillURL) = try Self.instance("prefill", protocols: protocols)
        let (decode, decodeURL) = try Self.instance("decode", protocols: protocols)
        defer { prefill.stop(); decode.stop() }
        let router = try RouterProcess(["--splitwise", "--prefill", prefillURL, "--decode", decodeURL])
        defer { router.stop() }
        try router.waitForHealthyWorkers(2)
        for prompt in Self.prompts {
            let expected = try Completions.run(mixed.client, prompt, maxTokens: 8)
            #expect(try Completions.run(router.client, prompt, maxTokens: 8) == expected, "\(prompt)")
            #expect(try Completions.run(router.client, prompt, maxTokens: 8, stream: true) == expected, "\(prompt), streamed")
        }
        #expect(try router.metric("tandem_router_pd_transfer_bytes_total") > 0)
        try prefill.waitUntilIdle(seconds: 60)
        try decode.waitUntilIdle(seconds: 60)
    }

    @Test func twoHundredConcurrentPDStreamsAllComplete() throws {
        let mixed = try APIServerProcess(["--threads", "1"])
        defer { mixed.stop() }
        let (prefill, prefillURL) = try Self.instance("prefill", protocols: "ipc,tcp")
        let (decode, decodeURL) = try Self.instance("decode", protocols: "ipc,tcp")
        defer { prefill.stop(); decode.stop() }
        let router = try RouterProcess(["--splitwise", "--prefill", prefillURL, "--decode", decodeURL])
        defer { router.stop() }
        try router.waitForHealthyWorkers(2)
        let base = Array(Self.prompts.prefix(5))
        let alone = try base.map { try Completions.run(mixed.client, $0, maxTokens: 6) }
        let client = router.client
        let together = try concurrently(200) { index in
            try Completions.run(client, base[index % base.count], maxTokens: 6, stream: true)
        }
        for (index, result) in together.enumerated() {
            #expect(result == alone[index % base.count], "request \(index)")
        }
        try prefill.waitUntilIdle(seconds: 60)
        try decode.waitUntilIdle(seconds: 60)
    }

    @Test func aClientThatLeavesMidStreamFreesTheBlocksOfBothLegs() throws {
        let (prefill, prefillURL) = try Self.instance("prefill", protocols: "ipc,tcp")
        let (decode, decodeURL) = try Self.instance("decode", protocols: "ipc,tcp")
        defer { prefill.stop(); decode.stop() }
        let router = try RouterProcess(["--splitwise", "--prefill", prefillURL, "--decode", decodeURL])
        defer { router.stop() }
        try router.waitForHealthyWorkers(2)
        let long = try JSONSerialization.data(withJSONObject: [
            "prompt": "Write a long story:", "max_tokens": 2000, "temperature": 0, "ignore_eos": true, "stream": true,
        ] as [String: Any])
        let partial = try router.client.request("POST", "/v1/completions", body: long) { $0 >= 3 }
        #expect(partial.status == 200)
        try prefill.waitUntilIdle(seconds: 60)
        try decode.waitUntilIdle(seconds: 60)
        #expect(try Completions.run(router.client, "Hello", maxTokens: 4, stream: true).finishReason == "length")
    }

    @Test func aDeadDecodeLegAbortsThePrefillLegAndTheNextRequestSucceeds() throws {
        let (prefill, prefillURL) = try Self.instance("prefill", protocols: "ipc,tcp")
        let (decode, decodeURL) = try Self.instance("decode", protocols: "ipc,tcp")
        let (spare, spareURL) = try Self.instance("decode", protocols: "ipc,tcp")
        defer { prefill.stop(); decode.stop(); spare.stop() }
        let router = try RouterProcess(["--splitwise", "--prefill", prefillURL, "--decode", decodeURL, "--decode", spareURL,
                                        "--health-check-interval", "3600"])
        defer { router.stop() }
        try router.waitForHealthyWorkers(3)
        kill(decode.process.processIdentifier, SIGKILL)
        _ = decode.waitForExit()
        // Every request reaches the spare decode instance, directly or after a retry.
        for prompt in Self.prompts.prefix(6) {
            #expect(try Completions.run(router.client, prompt, maxTokens: 4, stream: true).finishReason == "length")
        }
        try prefill.waitUntilIdle(seconds: 60)
        try spare.waitUntilIdle(seconds: 60)
    }
}
