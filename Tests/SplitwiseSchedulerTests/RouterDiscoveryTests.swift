import Foundation
import Glibc
import Testing
import TestSupport

/// `router --scheduler-name splitwise`: the router's workers are the live nodes of the cluster
/// hash, found with no registration.
@Suite(.serialized) struct RouterDiscoveryTests {
    static var routerBinary: String { get throws { try BuiltProducts.path("router") } }

    static func router(_ arguments: [String]) throws -> APIServerProcess {
        let port = try freeLoopbackPort()
        let router = try APIServerProcess(executable: try routerBinary, arguments: ["--port", String(port), "--health-check-interval", "0.2",
                                                                                    "--health-check-timeout", "1"] + arguments, port: port)
        try router.waitUntil("/health is 200") { (try? router.client.get("/health"))?.status == 200 }
        return router
    }

    /// The router's table: API port → (role, healthy), workers found in the cluster hash only.
    static func workers(_ router: APIServerProcess) throws -> [Int: String] {
        let response = try router.client.get("/workers")
        let rows = (try JSONSerialization.jsonObject(with: response.body) as? [[String: Any]]) ?? []
        var table: [Int: String] = [:]
        for row in rows {
            guard let url = row["url"] as? String, let port = URLComponents(string: url)?.port, row["source"] as? String == "scheduler",
                  let role = row["role"] as? String else { continue }
            table[port] = role + (row["healthy"] as? Bool == true ? "" : " (unhealthy)")
        }
        return table
    }

    /// A prefill and a decode node join the router's table within a few sync periods; requests
    /// through the router give a mixed instance's tokens; Redis stopping keeps the table (and
    /// the router's /health) while /metrics says Redis is down; a killed decode node leaves the
    /// table once its heartbeat is older than the expire period; the live node's pool ends free.
    @Test func theRouterFollowsTheClusterHash() throws {
        let redis = try RedisServerProcess()
        let mixed = try APIServerProcess(["--threads", "1", "--num-gpu-blocks-override", "256"])
        defer { mixed.stop() }
        let prefill = try SchedulerCluster.node("prefill", redis: redis)
        let decode = try SchedulerCluster.node("decode", redis: redis)
        defer { prefill.stop() }
        let router = try Self.router(["--splitwise"] + redis.schedulerArguments(topic: "fd"))
        defer { router.stop() }
        let both = [prefill.port: "prefill", decode.port: "decode"]
        try router.waitUntil("both nodes are healthy workers") { try Self.workers(router) == both }
        #expect(try router.metric("tandem_router_scheduler_redis_up") == 1)

        for (index, stream) in [false, true].enumerated() {
            let prompt = GreedyTokens.prompt(17, seed: 300 + index)
            let expected = try GreedyTokens.run(mixed.client, prompt, stream: false, maxTokens: 5)
            #expect(try GreedyTokens.run(router.client, prompt, stream: stream, maxTokens: 5) == expected, "stream \(stream)")
        }
        #expect(try router.metric("tandem_router_pd_transfer_bytes_total") > 0)

        redis.pause()
        try router.waitUntil("/metrics says Redis is down") { try router.metric("tandem_router_scheduler_redis_up") == 0 }
        #expect(try router.client.get("/health").status == 200)
        #expect(try Set(Self.workers(router).keys) == Set(both.keys))
        #expect(router.log.contains("is unreachable"))
        redis.resume()
        try router.waitUntil("Redis answers again and both nodes are healthy") {
            try router.metric("tandem_router_scheduler_redis_up") == 1 && Self.workers(router) == both
        }

        // Every heartbeat was stale when Redis came back: no node was judged dead for it.
        #expect(!router.log.contains("removed"))

        kill(decode.process.processIdentifier, SIGKILL)
        _ = decode.waitForExit()
        try router.waitUntil("the killed decode node left the table") { try Self.workers(router) == [prefill.port: "prefill"] }
        #expect(router.log.contains("removed: no heartbeat in fd.cluster"))
        try prefill.waitUntilIdle(seconds: 60)
    }

    /// A Redis that refuses the password or does not answer: exit 78 with api-server's message.
    @Test func aWrongPasswordOrNoRedisIsAConfigurationError() throws {
        let redis = try RedisServerProcess(password: "right-password")
        let port = try freeLoopbackPort()
        let wrong = try runProcess(try Self.routerBinary, ["--port", String(port), "--scheduler-name", "splitwise",
                                                           "--scheduler-port", String(redis.port), "--scheduler-password", "wrong-password"])
        #expect(wrong.status == 78)
        #expect(wrong.stderr.hasSuffix("router: --scheduler-password: Redis at redis://127.0.0.1:\(redis.port)/0 refused the password: WRONGPASS invalid username-password pair or user is disabled.\n"),
                "\(wrong.stderr)")
        let nowhere = try freeLoopbackPort()
        let unreachable = try runProcess(try Self.routerBinary, ["--port", String(port), "--scheduler-name", "splitwise",
                                                                 "--scheduler-port", String(nowhere)])
        #expect(unreachable.status == 78)
        #expect(unreachable.stderr.hasSuffix("router: --scheduler-host/--scheduler-port: cannot reach Redis at redis://127.0.0.1:\(nowhere)/0: 127.0.0.1:\(nowhere): Connection refused\n"),
                "\(unreachable.stderr)")
    }
}
