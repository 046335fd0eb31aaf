import Foundation
import Synchronization
import Testing
import TestSupport

/// Faults around a PD transfer: a peer that dies or stops mid-transfer, aborts on either side,
/// a peer that never comes. After each, every KV block on P and D is free again and the next
/// request succeeds.
@Suite(.serialized) struct PDFaultTests {
    /// P prefills in 16-token steps, so a 512-token prompt's transfer spans many steps.
    static let common = ["--num-gpu-blocks-override", "128", "--kv-transfer-timeout", "4"]
    static let slowPrefill = ["--max-num-batched-tokens", "16", "--max-num-seqs", "4"]
    static let longPrompt = PDDisaggregationTests.prompt(512, seed: 5)

    /// Runs `body` on a thread of its own; the returned function waits for its result.
    static func inBackground<T: Sendable>(_ body: @escaping @Sendable () throws -> T) -> @Sendable () throws -> T {
        let slot = ResultSlots<T>(1)
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            let result = Result { try body() }
            slot.results.withLock { $0[0] = result }
            done.signal()
        }
        return {
            done.wait()
            return try slot.results.withLock { $0[0]! }.get()
        }
    }

    static func startLegs(_ pair: PDPair, id: String, stream: Bool = false, protocol transfer: String = "tcp") -> @Sendable () throws -> PDPair.Legs {
        let body = PDDisaggregationTests.body(longPrompt, stream: stream)
        nonisolated(unsafe) let unsafeBody = body
        return inBackground { try pair.send(body: unsafeBody, id: id, protocol: transfer) }
    }

    /// P is prefilling (and pushing KV) and D holds the reservation.
    static func waitUntilMidTransfer(_ pair: PDPair) throws {
        try pair.prefill.waitUntil("P prefills and D holds blocks", seconds: 60) {
            try pair.prefill.load()["runningRequests"] == 1 && (try pair.decode.load()["kvBlocksUsed"] ?? 0) > 0
        }
    }

    static func nextRequestSucceeds(_ server: APIServerProcess) throws {
        let response = try server.client.post("/v1/completions", json: PDDisaggregationTests.body([1, 2, 3], stream: false))
        #expect(response.status == 200, "\(response.text)")
    }

    static func nextPDRequestSucceeds(_ pair: PDPair) throws {
        let legs = try pair.send(body: PDDisaggregationTests.body(PDDisaggregationTests.prompt(40, seed: 3), stream: false), protocol: "tcp")
        #expect(legs.prefill.status == 200, "\(legs.prefill.text)")
        #expect(legs.decode.status == 200, "\(legs.decode.text)")
        try pair.waitUntilIdle()
    }

    @Test func decodeDiesMidTransfer() throws {
        let pair = try PDPair(prefillArguments: Self.slowPrefill, common: Self.common)
        defer { pair.stop() }
        let legs = Self.startLegs(pair, id: "pd-d-dies")
        try Self.waitUntilMidTransfer(pair)
        kill(pair.decode.process.processIdentifier, SIGKILL)
        _ = pair.decode.waitForExit()
        let prefillLeg = try legs().prefill
        #expect(prefillLeg.status == 502)
        #expect(APIServerTests.error(prefillLeg).message.contains("The prefill leg of request 'pd-d-dies' failed"), "\(prefillLeg.text)")
        // The decode side failed: a router may try another decode instance.
        #expect((prefillLeg.json()?["error"] as? [String: Any])?["code"] as? String == "pd_decode_failed", "\(prefillLeg.text)")
        try pair.prefill.waitUntilIdle(seconds: 60)
        try Self.nextRequestSucceeds(pair.prefill)
    }

    @Test func prefillDiesMidTransfer() throws {
        let pair = try PDPair(prefillArguments: Self.slowPrefill, common: Self.common)
        defer { pair.stop() }
        let legs = Self.startLegs(pair, id: "pd-p-dies", stream: true)
        try Self.waitUntilMidTransfer(pair)
        kill(pair.prefill.process.processIdentifier, SIGKILL)
        _ = pair.prefill.waitForExit()
        let decodeLeg = try legs().decode
        // The stream had sent nothing: the error arrives as an event.
        #expect(decodeLeg.text.contains("KV transfer from the prefill instance failed"), "\(decodeLeg.text)")
        try pair.decode.waitUntilIdle(seconds: 60)
        try Self.nextRequestSucceeds(pair.decode)
    }

    @Test func abortsAndStoppedPeersFreeBothSides() throws {
        let pair = try PDPair(prefillArguments: Self.slowPrefill, common: Self.common)
        defer { pair.stop() }
        // /abort on D's engine-worker-queue port: D ends its leg, P is told and fails its own.
        var legs = Self.startLegs(pair, id: "pd-abort-d")
        try Self.waitUntilMidTransfer(pair)
        var abort = try HTTPTestClient(port: pair.decodeControlPort).post("/abort", json: ["request_id": "pd-abort-d"])
        #expect(abort.status == 200, "\(abort.text)")
        var result = try legs()
        #expect(result.decode.json().map { (($0["choices"] as? [[String: Any]])?.first?["finish_reason"] as? String) } == "abort",
                "\(result.decode.text)")
        #expect(result.prefill.status == 502, "\(result.prefill.text)")
        try pair.waitUntilIdle()
        try Self.nextPDRequestSucceeds(pair)

        // /abort on P: P stops, D's leg fails.
        legs = Self.startLegs(pair, id: "pd-abort-p")
        try Self.waitUntilMidTransfer(pair)
        abort = try HTTPTestClient(port: pair.prefillControlPort).post("/abort", json: ["request_id": "pd-abort-p"])
        #expect(abort.status == 200, "\(abort.text)")
        result = try legs()
        #expect(result.prefill.status == 502, "\(result.prefill.text)")
        #expect(result.decode.status == 500)
        #expect(APIServerTests.error(result.decode).message.contains("the prefill instance gave up"), "\(result.decode.text)")
        try pair.waitUntilIdle()
        try Self.nextPDRequestSucceeds(pair)

        // D stopped mid-transfer: it takes no write for the timeout, P fails its leg; D's own
        // deadline fires once it runs again.
        legs = Self.startLegs(pair, id: "pd-stop-d")
        try Self.waitUntilMidTransfer(pair)
        kill(pair.decode.process.processIdentifier, SIGSTOP)
        let running = legs
        let stoppedDecode = Self.inBackground { try running() }
        try pair.prefill.waitUntilIdle(seconds: 60)
        kill(pair.decode.process.processIdentifier, SIGCONT)
        result = try stoppedDecode()
        #expect(result.prefill.status == 502)
        #expect(APIServerTests.error(result.prefill).message.contains("did not answer in time (--kv-transfer-timeout)"), "\(result.prefill.text)")
        #expect(result.decode.status == 500, "\(result.decode.text)")
        try pair.waitUntilIdle()
        try Self.nextPDRequestSucceeds(pair)

        // P stopped mid-transfer: D's deadline fires and its leg fails.
        legs = Self.startLegs(pair, id: "pd-stop-p")
        try Self.waitUntilMidTransfer(pair)
        kill(pair.prefill.process.processIdentifier, SIGSTOP)
        try pair.decode.waitUntilIdle(seconds: 60)
        kill(pair.prefill.process.processIdentifier, SIGCONT)
        result = try legs()
        #expect(result.decode.status == 500)
        #expect(APIServerTests.error(result.decode).message.contains("did not complete within 4.0 s (--kv-transfer-timeout)"), "\(result.decode.text)")
        #expect(result.prefill.status == 502, "\(result.prefill.text)")
        try pair.waitUntilIdle()
        try Self.nextPDRequestSucceeds(pair)

        // P never comes: D frees the reservation at its deadline.
        let alone = try pair.decode.client.post("/v1/completions", json: PDDisaggregationTests.body([5, 6, 7], stream: false).merging(
            ["disaggregate_info": pair.info(role: "decode", id: "pd-alone", protocol: "tcp")]) { $1 })
        #expect(alone.status == 500)
        #expect(APIServerTests.error(alone).message.contains("the KV transfer for request 'pd-alone' did not complete within 4.0 s (--kv-transfer-timeout)"), "\(alone.text)")
        try pair.waitUntilIdle()
        try Self.nextPDRequestSucceeds(pair)
    }

    /// D stops reading (SIGSTOP) mid-transfer, long before its deadline: P's pushes to it wait,
    /// but P's engine goes on with its other requests, and once D runs again the transfer
    /// completes. (A step waiting for the push would hold the other request until the leg's
    /// deadline, which then fails the PD request.)
    @Test func stoppedDecodeStallsOnlyItsOwnRequest() throws {
        let pair = try PDPair(prefillArguments: Self.slowPrefill,
                              common: ["--num-gpu-blocks-override", "128", "--kv-transfer-timeout", "60"])
        defer {
            kill(pair.decode.process.processIdentifier, SIGCONT)
            pair.stop()
        }
        let legs = Self.startLegs(pair, id: "pd-stuck-d")
        try Self.waitUntilMidTransfer(pair)
        kill(pair.decode.process.processIdentifier, SIGSTOP)
        try Self.nextRequestSucceeds(pair.prefill)
        kill(pair.decode.process.processIdentifier, SIGCONT)
        let result = try legs()
        #expect(result.prefill.status == 200, "\(result.prefill.text)")
        #expect(result.decode.status == 200, "\(result.decode.text)")
        try pair.waitUntilIdle()
    }

    /// P with one sequence at a time, busy with a long plain request: a PD request waits in
    /// P's queue (reporting to D) far longer than --kv-transfer-timeout and still completes, as
    /// D's deadline bounds P's silence, not its queue. A P stopped or killed while the request
    /// waits is noticed by D, which frees.
    @Test func queuedPrefillOutlastsTheTransferTimeout() throws {
        let pair = try PDPair(prefillArguments: ["--max-num-seqs", "1", "--max-num-batched-tokens", "16"],
                              common: ["--num-gpu-blocks-override", "128", "--kv-transfer-timeout", "2"])
        defer { pair.stop() }
        /// A plain request on P that decodes 300 tokens (many times the timeout on this machine),
        /// then a PD request queued behind it.
        func queueBehindBlocker(id: String, protocol transfer: String = "tcp") throws -> (blocker: @Sendable () throws -> HTTPTestResponse, legs: @Sendable () throws -> PDPair.Legs) {
            var blockerBody = PDDisaggregationTests.body(PDDisaggregationTests.prompt(40, seed: 11), stream: false, maxTokens: 300)
            blockerBody["ignore_eos"] = true
            let data = try JSONSerialization.data(withJSONObject: blockerBody)
            let client = pair.prefill.client
            let blocker = Self.inBackground { try client.post("/v1/completions", body: data) }
            try pair.prefill.waitUntil("P runs the blocker") { try pair.prefill.load()["runningRequests"] == 1 }
            let legs = Self.inBackground {
                try pair.send(body: PDDisaggregationTests.body(PDDisaggregationTests.prompt(40, seed: 3), stream: false), id: id, protocol: transfer)
            }
            try pair.prefill.waitUntil("the PD request waits on P and holds D's blocks") {
                try pair.prefill.load()["waitingRequests"] == 1 && (try pair.decode.load()["kvBlocksUsed"] ?? 0) > 0
            }
            return (blocker, legs)
        }

        // Queued behind the blocker, the PD request completes.
        var (blocker, legs) = try queueBehindBlocker(id: "pd-queued")
        #expect(try blocker().status == 200)
        var result = try legs()
        #expect(result.prefill.status == 200, "\(result.prefill.text)")
        #expect(result.decode.status == 200, "\(result.decode.text)")
        #expect(try PDDisaggregationTests.tokens(ofCompletion: result.decode).tokens.count == 8)
        try pair.waitUntilIdle()

        // P stopped while the request waits: its reports stop, D frees at its deadline (over ipc
        // too: D revokes the lease on its blocks, P is not in the middle of a copy).
        (blocker, legs) = try queueBehindBlocker(id: "pd-queued-stop", protocol: "ipc")
        kill(pair.prefill.process.processIdentifier, SIGSTOP)
        try pair.decode.waitUntilIdle(seconds: 60)
        kill(pair.prefill.process.processIdentifier, SIGCONT)
        result = try legs()
        #expect(result.decode.status == 500)
        #expect(APIServerTests.error(result.decode).message.contains(
            "the KV transfer for request 'pd-queued-stop' did not complete within 2.0 s (--kv-transfer-timeout): the prefill instance stopped reporting while the request waited in its queue"),
            "\(result.decode.text)")
        #expect(result.prefill.status == 502, "\(result.prefill.text)")
        #expect(try blocker().status == 200)
        try pair.waitUntilIdle()
        try Self.nextPDRequestSucceeds(pair)

        // P killed while the request waits: D frees at once (its connection closed).
        (_, legs) = try queueBehindBlocker(id: "pd-queued-kill")
        kill(pair.prefill.process.processIdentifier, SIGKILL)
        _ = pair.prefill.waitForExit()
        result = try legs()
        #expect(result.decode.status == 500)
        #expect(APIServerTests.error(result.decode).message.contains("KV transfer from the prefill instance failed"), "\(result.decode.text)")
        try pair.decode.waitUntilIdle(seconds: 60)
        try Self.nextRequestSucceeds(pair.decode)
    }

    @Test func badDisaggregationInputIsRefused() throws {
        let mixed = try APIServerProcess(["--num-gpu-blocks-override", "64"])
        defer { mixed.stop() }
        var body = PDDisaggregationTests.body([1, 2, 3], stream: false)
        body["disaggregate_info"] = ["role": "decode", "request_id": "x", "transfer_protocol": "tcp",
                                     "prefill": ["host": "127.0.0.1", "port": 1], "decode": ["host": "127.0.0.1", "port": 2]]
        let response = try mixed.client.post("/v1/completions", json: body)
        #expect(response.status == 400)
        #expect(APIServerTests.error(response).message == "This instance is mixed (--splitwise-role mixed): it takes no disaggregate_info.")
        try Self.nextRequestSucceeds(mixed)

        let rdma = try runProcess(try APIServerProcess.binary, ["--cache-transfer-protocol", "tcp,rdma", "--port", String(try freeLoopbackPort())])
        #expect(rdma.status == 78)
        let devices = (try? FileManager.default.contentsOfDirectory(atPath: "/sys/class/infiniband")) ?? []
        if devices.isEmpty {
            #expect(rdma.stderr.contains("--cache-transfer-protocol rdma: this host has no RDMA device (/sys/class/infiniband is empty); use ipc or tcp"), "\(rdma.stderr)")
        }
        let unknown = try runProcess(try APIServerProcess.binary, ["--cache-transfer-protocol", "ipc,udp"])
        #expect(unknown.status == 78)
        #expect(unknown.stderr.contains("--cache-transfer-protocol 'ipc,udp': unknown protocol 'udp' (ipc, tcp, rdma)"), "\(unknown.stderr)")
        let noPort = try runProcess(try APIServerProcess.binary, ["--splitwise-role", "decode", "--port", String(try freeLoopbackPort())])
        #expect(noPort.status == 78)
        #expect(noPort.stderr.contains("--splitwise-role decode needs --pd-comm-port"), "\(noPort.stderr)")
    }
}
