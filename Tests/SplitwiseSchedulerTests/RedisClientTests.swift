import Foundation
import SplitwiseScheduler
import Testing
import TestSupport

/// The hiredis client against a real redis-server.
@Suite(.serialized) struct RedisClientTests {
    @Test func listsAreFIFOAndRPOPTakesACount() async throws {
        let redis = try RedisServerProcess()
        let client = RedisClient(address: redis.address, timeout: .seconds(2), label: "test")
        #expect(try await client.checkVersion().hasPrefix("7."))
        let replies = try await client.pipeline([["LPUSH", "ReqQ_x", "a", "b"].map { Data($0.utf8) },
                                                 ["LPUSH", "ReqQ_x", "c"].map { Data($0.utf8) },
                                                 ["EXPIRE", "ReqQ_x", "30"].map { Data($0.utf8) }])
        #expect(replies == [.integer(2), .integer(3), .integer(1)])
        let popped = try await client.command(["RPOP", "ReqQ_x", "2"])
        #expect(popped == .array([.string(Data("a".utf8)), .string(Data("b".utf8))]))
        #expect(try await client.command(["RPOP", "ReqQ_x", "5"]) == .array([.string(Data("c".utf8))]))
        #expect(try await client.command(["RPOP", "ReqQ_x", "5"]) == .null)
        #expect(try await client.command(["HSET", "fd.cluster", "n1", "{}"]) == .integer(1))
        #expect(try await client.command(["HGETALL", "fd.cluster"]) == .array([.string(Data("n1".utf8)), .string(Data("{}".utf8))]))
    }

    @Test func aWrongOrMissingPasswordIsTheServersExactError() async throws {
        let redis = try RedisServerProcess(password: "right-password")
        var wrong = redis.address
        wrong.password = "wrong-password"
        await #expect(throws: RedisError.server("WRONGPASS invalid username-password pair or user is disabled.")) {
            try await RedisClient(address: wrong, timeout: .seconds(2), label: "test").command(["PING"])
        }
        var missing = redis.address
        missing.password = nil
        await #expect(throws: RedisError.server("NOAUTH Authentication required.")) {
            try await RedisClient(address: missing, timeout: .seconds(2), label: "test").checkVersion()
        }
        #expect(try await RedisClient(address: redis.address, timeout: .seconds(2), label: "test").command(["PING"]) == .status("PONG"))
    }

    @Test func anUnreachableOrStoppedRedisIsAnErrorNotAHangAndTheClientReconnects() async throws {
        let port = try freeLoopbackPort()
        await #expect(throws: RedisError.unreachable("127.0.0.1:\(port): Connection refused")) {
            try await RedisClient(address: RedisAddress(host: "127.0.0.1", port: port), timeout: .seconds(2), label: "test").command(["PING"])
        }
        let redis = try RedisServerProcess()
        let client = RedisClient(address: redis.address, timeout: .milliseconds(300), label: "test")
        #expect(try await client.command(["PING"]) == .status("PONG"))
        redis.pause()
        do {
            _ = try await client.command(["PING"])
            Issue.record("a stopped Redis answered")
        } catch {
            guard case .unreachable = error else { Issue.record("not 'unreachable': \(error)"); return }
        }
        redis.resume()
        // Commands fail at once for one timeout after the loss, then the client connects again.
        #expect(await waitUntil { (try? await client.command(["PING"])) == .status("PONG") })
    }
}
