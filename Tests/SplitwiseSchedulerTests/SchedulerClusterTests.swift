import Foundation
import Glibc
import SplitwiseScheduler
import Testing
import TestSupport

/// api-server instances placing requests on each other through a real Redis.
@Suite(.serialized) struct SchedulerClusterTests {
    static let lengths = [1, 3, 7, 15, 16, 17, 31, 33, 48, 64, 65, 100]

    /// Twenty prompts (token ids), sent to either instance's port, streamed and not: the tokens
    /// equal one mixed instance's; chat goes through too; both pools end all free.
    @Test func greedyOutputsThroughTheSchedulerEqualAMixedInstance() throws {
        let redis = try RedisServerProcess()
        let mixed = try APIServerProcess(["--threads", "1", "--num-gpu-blocks-override", "256"])
        defer { mixed.stop() }
        let prefill = try SchedulerCluster.node("prefill", redis: redis)
        let decode = try SchedulerCluster.node("decode", redis: redis)
        defer { prefill.stop(); decode.stop() }
        let ids: Set = [try SchedulerCluster.nodeID(prefill), try SchedulerCluster.nodeID(decode)]
        try SchedulerCluster.waitUntilFormed([prefill, decode], ids: ids)

        for index in 0..<20 {
            let prompt = GreedyTokens.prompt(Self.lengths[index % Self.lengths.count], seed: index)
            let expected = try GreedyTokens.run(mixed.client, prompt, stream: false, maxTokens: 6)
            let entry = index.isMultiple(of: 2) ? prefill : decode
            let stream = index % 4 >= 2
            #expect(try GreedyTokens.run(entry.client, prompt, stream: stream, maxTokens: 6) == expected,
                    "prompt \(index) through port \(entry.port), stream \(stream)")
        }
        let chat: [String: Any] = ["messages": [["role": "user", "content": "Name a colour."]], "max_tokens": 6, "temperature": 0]
        let expectedChat = try mixed.client.post("/v1/chat/completions", json: chat)
        let placedChat = try decode.client.post("/v1/chat/completions", json: chat)
        #expect(placedChat.status == 200)
        let content = { (response: HTTPTestResponse) in
            ((response.json()?["choices"] as? [[String: Any]])?.first?["message"] as? [String: Any])?["content"] as? String
        }
        #expect(content(placedChat) != nil && content(placedChat) == content(expectedChat))
        var streamedChat = chat
        streamedChat["stream"] = true
        let chatEvents = try prefill.client.post("/v1/chat/completions", json: streamedChat)
        #expect(chatEvents.status == 200 && chatEvents.events.last == "[DONE]")

        // Every leg went through the scheduler (half the requests arrived at each port).
        #expect(try SchedulerCluster.metricLine(prefill, "tandem:scheduler_placements_total") >= 22)
        #expect(try SchedulerCluster.metricLine(decode, "tandem:scheduler_placements_total") >= 20)
        #expect(try prefill.metric("tandem:scheduler_redis_up") == 1)
        try prefill.waitUntilIdle(seconds: 60)
        try decode.waitUntilIdle(seconds: 60)
    }

    /// A refused request comes back as the instance that ran it refused it (not retried).
    @Test func aBadRequestIsRefusedWithTheLegsOwnError() throws {
        let redis = try RedisServerProcess()
        let node = try SchedulerCluster.node("mixed", redis: redis)
        defer { node.stop() }
        try SchedulerCluster.waitUntilFormed([node], ids: [try SchedulerCluster.nodeID(node)])
        let response = try node.client.post("/v1/completions", json: ["prompt": [1, 2, 3], "max_tokens": -1])
        #expect(response.status == 400)
        #expect(response.text.contains("Invalid value for 'max_tokens': -1 must be at least 0."))
        #expect(try node.metric("tandem:scheduler_retries_total") == 0)
        try node.waitUntilIdle(seconds: 60)
    }

    @Test func twoTopicsOnOneRedisDoNotSeeEachOther() throws {
        let redis = try RedisServerProcess()
        let alpha = try SchedulerCluster.node("mixed", redis: redis, topic: "alpha")
        let beta = try SchedulerCluster.node("mixed", redis: redis, topic: "beta")
        defer { alpha.stop(); beta.stop() }
        let alphaID = try SchedulerCluster.nodeID(alpha), betaID = try SchedulerCluster.nodeID(beta)
        try SchedulerCluster.waitUntilFormed([alpha], ids: [alphaID])
        try SchedulerCluster.waitUntilFormed([beta], ids: [betaID])
        // Each hash holds its own topic's node only, as redis-cli shows it.
        #expect(try redis.cli(["HKEYS", "alpha.cluster"]) == [alphaID])
        #expect(try redis.cli(["HKEYS", "beta.cluster"]) == [betaID])
        let prompt = GreedyTokens.prompt(9, seed: 1)
        for _ in 0..<4 {
            _ = try GreedyTokens.run(alpha.client, prompt, stream: false, maxTokens: 3)
            _ = try GreedyTokens.run(beta.client, prompt, stream: true, maxTokens: 3)
        }
        #expect(try SchedulerCluster.metricLine(alpha, "tandem:scheduler_placements_total{node=\"\(alphaID)\"") == 4)
        #expect(try SchedulerCluster.metricLine(alpha, "tandem:scheduler_placements_total{node=\"\(betaID)\"") == 0)
        #expect(try SchedulerCluster.metricLine(beta, "tandem:scheduler_placements_total{node=\"\(betaID)\"") == 4)
        #expect(try SchedulerCluster.liveNodes(alpha) == [alphaID])
        #expect(try SchedulerCluster.liveNodes(beta) == [betaID])
        try alpha.waitUntilIdle(seconds: 60)
        try beta.waitUntilIdle(seconds: 60)
    }

    /// Wrong password, no Redis: exit 78 with the exact reason, before the model loads.
    @Test func aWrongPasswordOrNoRedisIsAConfigurationError() throws {
        let redis = try RedisServerProcess(password: "right-password")
        let binary = try APIServerProcess.binary
        let port = try freeLoopbackPort()
        let wrong = try runProcess(binary, ["--port", String(port), "--scheduler-name", "splitwise", "--scheduler-port", String(redis.port),
                                            "--scheduler-password", "wrong-password"])
        #expect(wrong.status == 78)
        #expect(wrong.stderr.hasSuffix("api-server: --scheduler-password: Redis at redis://127.0.0.1:\(redis.port)/0 refused the password: WRONGPASS invalid username-password pair or user is disabled.\n"),
                "\(wrong.stderr)")
        let missing = try runProcess(binary, ["--port", String(port), "--scheduler-name", "splitwise", "--scheduler-port", String(redis.port)])
        #expect(missing.status == 78)
        #expect(missing.stderr.hasSuffix("api-server: --scheduler-password: Redis at redis://127.0.0.1:\(redis.port)/0 requires a password: NOAUTH Authentication required.\n"),
                "\(missing.stderr)")
        let nowhere = try freeLoopbackPort()
        let unreachable = try runProcess(binary, ["--port", String(port), "--scheduler-name", "splitwise", "--scheduler-port", String(nowhere)])
        #expect(unreachable.status == 78)
        #expect(unreachable.stderr.hasSuffix("api-server: --scheduler-host/--scheduler-port: cannot reach Redis at redis://127.0.0.1:\(nowhere)/0: 127.0.0.1:\(nowhere): Connection refused\n"),
                "\(unreachable.stderr)")
    }

    /// A Redis older than 6.2 (no `RPOP key count`): exit 78 naming the version, before the
    /// model loads. Debian ships only Redis 7, so the old server is a stand-in, named as such:
    /// a few lines of Python speaking RESP that answer `INFO` with `redis_version:6.0.16`.
    @Test func aRedisOlderThanSixPointTwoIsAConfigurationError() throws {
        let port = try freeLoopbackPort()
        let oldRedis = try APIServerProcess(executable: "/usr/bin/python3", arguments: ["-c", Self.oldRedisStandIn, String(port)], port: port)
        defer { oldRedis.stop(seconds: 1) }  // nothing to drain
        try oldRedis.waitUntil("the stand-in Redis answers PING", seconds: 30) {
            (try? runProcess("/usr/bin/redis-cli", ["-p", String(port), "PING"]))?.stdout == "PONG\n"
        }
        let old = try runProcess(try APIServerProcess.binary, ["--port", String(try freeLoopbackPort()), "--scheduler-name", "splitwise",
                                                               "--scheduler-port", String(port)])
        #expect(old.status == 78)
        #expect(old.stderr.hasSuffix("api-server: Redis 6.0.16 is too old: the splitwise scheduler needs Redis 6.2 or later (RPOP key count) at redis://127.0.0.1:\(port)/0\n"),
                "\(old.stderr)")
    }

    /// A RESP server that says it is Redis 6.0.16: INFO answers its server section, PING PONG,
    /// anything else OK.
    static let oldRedisStandIn = #"""
    import socket, sys, threading
    def serve(conn):
        data = b""
        with conn:
            while True:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
                while data:
                    if not data.startswith(b"*"):
                        conn.sendall(b"-ERR not RESP\r\n"); return
                    lines = data.split(b"\r\n")
                    count = int(lines[0][1:])
                    if len(lines) < 1 + 2 * count + 1:
                        break
                    words = [lines[2 + 2 * i] for i in range(count)]
                    data = b"\r\n".join(lines[1 + 2 * count:])
                    name = words[0].upper()
                    if name == b"INFO":
                        body = b"# Server\r\nredis_version:6.0.16\r\n"
                        conn.sendall(b"$%d\r\n%s\r\n" % (len(body), body))
                    elif name == b"PING":
                        conn.sendall(b"+PONG\r\n")
                    else:
                        conn.sendall(b"+OK\r\n")
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", int(sys.argv[1])))
    listener.listen(16)
    while True:
        threading.Thread(target=serve, args=(listener.accept()[0],), daemon=True).start()
    """#

    /// A decode node stops and is killed with requests queued for it: it leaves placement once
    /// its heartbeat is older than the expire period, its queued legs are taken out of its list,
    /// and every request completes on the other decode node with the same tokens.
    @Test func aKilledDecodeNodeLeavesPlacementAndItsQueuedRequestsCompleteElsewhere() throws {
        let redis = try RedisServerProcess()
        // Expiry after 4 s: time for a few requests to be placed on the stopped node first.
        let expire = ["--scheduler-expire-period", "4000"]
        let prefill = try SchedulerCluster.node("prefill", redis: redis, extra: expire)
        let doomed = try SchedulerCluster.node("decode", redis: redis, extra: expire)
        let survivor = try SchedulerCluster.node("decode", redis: redis, extra: expire)
        defer { prefill.stop(); survivor.stop() }
        let doomedID = try SchedulerCluster.nodeID(doomed)
        try SchedulerCluster.waitUntilFormed([prefill, survivor], ids: [try SchedulerCluster.nodeID(prefill), doomedID,
                                                                         try SchedulerCluster.nodeID(survivor)])
        let prompts = (0..<6).map { GreedyTokens.prompt(Self.lengths[$0 + 2], seed: 100 + $0) }
        let client = prefill.client
        let expected = try prompts.map { try GreedyTokens.run(client, $0, stream: false, maxTokens: 5) }

        kill(doomed.process.processIdentifier, SIGSTOP)
        // Requests arrive until one waits in the stopped node's list (the first one placed on it
        // may already sit in its socket: Redis answers a blocked BRPOP at once).
        var inFlight: [Background<GreedyTokens.Tokens>] = []
        var sent: [Int] = []
        let queueOfDoomed = "ReqQ_\(doomedID)"
        while sent.count < 30 {
            let index = sent.count % prompts.count
            let prompt = prompts[index]
            inFlight.append(Background(1) { _ in try GreedyTokens.run(client, prompt, stream: index.isMultiple(of: 2), maxTokens: 5) })
            sent.append(index)
            let queued = waitUntil(deadline: .now + .milliseconds(300)) { ((try? redis.cli(["LLEN", queueOfDoomed])) ?? ["0"]) != ["0"] }
            if queued { break }
        }
        #expect(try redis.cli(["LLEN", queueOfDoomed]) != ["0"], "no request was queued for the stopped node")
        kill(doomed.process.processIdentifier, SIGKILL)
        _ = doomed.waitForExit()

        for (request, index) in zip(inFlight, sent) {
            let result = request.wait()[0]
            #expect((try? result.get()) == expected[index], "request for prompt \(index): \(result)")
        }
        try prefill.waitUntil("the killed node is no longer live") { !(try SchedulerCluster.liveNodes(prefill).contains(doomedID)) }
        try prefill.waitUntil("the killed node's queue was emptied") { try redis.cli(["LLEN", queueOfDoomed]) == ["0"] }
        let rescued = try prefill.metric("tandem:scheduler_rescued_legs_total") + survivor.metric("tandem:scheduler_rescued_legs_total")
        #expect(rescued >= 1)
        // No placement on it any more.
        let placedOnDoomed = try SchedulerCluster.metricLine(prefill, "tandem:scheduler_placements_total{node=\"\(doomedID)\"")
        for prompt in prompts.prefix(4) { _ = try GreedyTokens.run(client, prompt, stream: false, maxTokens: 5) }
        #expect(try SchedulerCluster.metricLine(prefill, "tandem:scheduler_placements_total{node=\"\(doomedID)\"") == placedOnDoomed)
        try prefill.waitUntilIdle(seconds: 60)
        try survivor.waitUntilIdle(seconds: 60)
    }

    /// No result within --scheduler-ttl: a 504 `scheduler_ttl_expired`, never a hang. The decode
    /// node is stopped and the expire period long, so only the ttl can end the request; once the
    /// node resumes, both nodes free every block.
    @Test func aResultThatDoesNotArriveWithinTheTTLIsA504() throws {
        let redis = try RedisServerProcess()
        let slow = ["--scheduler-ttl", "2", "--scheduler-expire-period", "60000"]
        let prefill = try SchedulerCluster.node("prefill", redis: redis, extra: slow)
        let decode = try SchedulerCluster.node("decode", redis: redis, extra: slow)
        defer { prefill.stop(); decode.stop() }
        try SchedulerCluster.waitUntilFormed([prefill, decode], ids: [try SchedulerCluster.nodeID(prefill), try SchedulerCluster.nodeID(decode)])

        kill(decode.process.processIdentifier, SIGSTOP)
        do {
            let tokens = try GreedyTokens.run(prefill.client, GreedyTokens.prompt(Self.lengths[5], seed: 400), stream: false, maxTokens: 4)
            Issue.record("answered although the decode node was stopped: \(tokens)")
        } catch let refused as GreedyTokens.Refused {
            #expect(refused.status == 504, "\(refused)")
            #expect(refused.body.contains("\"code\":\"scheduler_ttl_expired\"") || refused.body.contains("\"code\": \"scheduler_ttl_expired\""), "\(refused)")
            #expect(refused.body.contains("within --scheduler-ttl (2.0 seconds)."), "\(refused)")
        }
        kill(decode.process.processIdentifier, SIGCONT)
        try prefill.waitUntilIdle(seconds: 60)
        try decode.waitUntilIdle(seconds: 60)
    }

    /// Redis restarts empty (killed, then started again on its port with nothing saved): the
    /// nodes publish themselves again within a few sync periods and the cluster serves as before.
    @Test func redisRestartedEmptyThenTheNodesPublishAgainAndServe() throws {
        var redis: RedisServerProcess? = try RedisServerProcess()
        let port = redis!.port
        let prefill = try SchedulerCluster.node("prefill", redis: redis!)
        let decode = try SchedulerCluster.node("decode", redis: redis!)
        defer { prefill.stop(); decode.stop() }
        let ids: Set = [try SchedulerCluster.nodeID(prefill), try SchedulerCluster.nodeID(decode)]
        try SchedulerCluster.waitUntilFormed([prefill, decode], ids: ids)
        let prompt = GreedyTokens.prompt(Self.lengths[7], seed: 300)
        let expected = try GreedyTokens.run(prefill.client, prompt, stream: false, maxTokens: 8)

        redis = nil  // SIGKILL: the cluster hash and every list are gone
        redis = try RedisServerProcess(port: port)
        try prefill.waitUntil("both nodes are in the new Redis's cluster hash") {
            Set(try redis!.cli(["HKEYS", "fd.cluster"])) == ids
        }
        try SchedulerCluster.waitUntilFormed([prefill, decode], ids: ids)
        for (index, client) in [prefill.client, decode.client].enumerated() {
            #expect(try GreedyTokens.run(client, prompt, stream: index == 1, maxTokens: 8) == expected)
        }
        try prefill.waitUntilIdle(seconds: 60)
        try decode.waitUntilIdle(seconds: 60)
    }

    /// Redis stops (SIGSTOP) while requests run: /health says what is wrong, every request
    /// completes or gets an OpenAI-shaped error naming the scheduler, and once Redis answers
    /// again the nodes publish again and serve.
    @Test func redisStoppedUnderLoadThenEveryRequestEndsClearlyAndTheClusterServesAgain() throws {
        let redis = try RedisServerProcess()
        let prefill = try SchedulerCluster.node("prefill", redis: redis, extra: ["--scheduler-ttl", "20"])
        let decode = try SchedulerCluster.node("decode", redis: redis, extra: ["--scheduler-ttl", "20"])
        defer { prefill.stop(); decode.stop() }
        try SchedulerCluster.waitUntilFormed([prefill, decode], ids: [try SchedulerCluster.nodeID(prefill), try SchedulerCluster.nodeID(decode)])
        let prompts = (0..<4).map { GreedyTokens.prompt(Self.lengths[$0 + 4], seed: 200 + $0) }
        let clients = [prefill.client, decode.client]
        let expected = try prompts.map { try GreedyTokens.run(clients[0], $0, stream: false, maxTokens: 24) }

        let load = Background(8) { index in
            try GreedyTokens.run(clients[index % 2], prompts[index % prompts.count], stream: index % 4 < 2, maxTokens: 24)
        }
        // Redis stops once requests run (their legs were placed through it).
        try decode.waitUntil("requests run on the decode node") {
            let load = try decode.load()
            return (load["runningRequests"] ?? 0) + (load["waitingRequests"] ?? 0) > 0
        }
        redis.pause()
        for node in [prefill, decode] {
            try node.waitUntil("/health names the scheduler's problem") {
                let health = try node.client.get("/health")
                return health.status == 503 && health.text.contains("splitwise scheduler: Redis unreachable: 127.0.0.1:\(redis.port)")
            }
        }
        redis.resume()
        let results = load.wait()
        // Some of them were running when Redis stopped, and got their answer.
        #expect(results.contains { (try? $0.get()) != nil }, "\(results)")
        for (index, result) in results.enumerated() {
            switch result {
            case .success(let tokens):
                #expect(tokens == expected[index % prompts.count], "request \(index)")
            case .failure(let error as GreedyTokens.Refused):
                // A clear error: OpenAI-shaped, naming what failed.
                #expect([200, 502, 503, 504].contains(error.status) && error.body.contains("\"message\""), "request \(index): \(error)")
            case .failure(let error):
                Issue.record("request \(index) did not end with an answer: \(error)")
            }
        }
        for node in [prefill, decode] {
            try node.waitUntil("/health is 200 again") { try node.client.get("/health").status == 200 }
        }
        for (index, prompt) in prompts.enumerated() {
            #expect(try GreedyTokens.run(clients[index % 2], prompt, stream: index.isMultiple(of: 2), maxTokens: 24) == expected[index])
        }
        try prefill.waitUntilIdle(seconds: 60)
        try decode.waitUntilIdle(seconds: 60)
    }
}
