import Foundation
import Glibc
import Testing
import TestSupport

/// Each example deployment run as written: started by its script, asked through the router
/// with a real OpenAI request, stopped with SIGTERM, and nothing of it left running.
@Suite(.serialized) struct ExamplesTests {
    /// The README's client examples (the curl and the openai blocks), pointed at `port`.
    static func readmeExamples(port: Int) throws -> (curl: String, python: String) {
        let readme = try String(contentsOfFile: packageRoot + "/README.md", encoding: .utf8)
        let lines = readme.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        func block(startingWith prefix: String) throws -> String {
            let start = try #require(lines.firstIndex { $0.hasPrefix(prefix) }, "README has no line starting with \(prefix)")
            let end = lines[start...].firstIndex { $0.trimmingCharacters(in: .whitespaces).hasPrefix("#") } ?? lines.count
            return lines[start..<end].map { String($0.dropFirst(4)) }.joined(separator: "\n")
                .replacingOccurrences(of: "127.0.0.1:8000", with: "127.0.0.1:\(port)")
        }
        return (try block(startingWith: "    curl -s http://127.0.0.1:8000/v1/chat/completions"),
                try block(startingWith: "    python3 -c '"))
    }

    @Test func theMainJobIsPrefillDecodeOnOneHostAndTheREADMEExamplesHold() throws {
        let port = try freeLoopbackPort()
        let controlPorts = try freeLoopbackPorts(2)
        let deployment = try Deployment(script: "scripts/serve.sh", environment: [
            "ROUTER_PORT": "\(port)", "PREFILL_CONTROL_PORT": "\(controlPorts[0])", "DECODE_CONTROL_PORT": "\(controlPorts[1])",
        ])
        defer { deployment.terminate() }
        let text = try deployment.waitForCompletion(baseURL: "http://127.0.0.1:\(port)", prompt: "The capital of France is")
        #expect(text.contains("Paris"), "\(text)")

        let examples = try Self.readmeExamples(port: port)
        let curl = try runProcess("/bin/bash", ["-c", examples.curl])
        #expect(curl.stdout.contains(#""content":"The capital of France is Paris.""#), "\(curl.stdout)\(curl.stderr)")
        let python = try runProcess("/bin/bash", ["-c", examples.python])
        #expect(python.status == 0 && python.stdout.contains("Paris"), "\(python.stdout)\(python.stderr)")

        #expect(deployment.stop() == 0, "\(deployment.output)")
        #expect(waitUntil { deployment.leftovers().isEmpty }, "left running: \(deployment.leftovers())")
    }

    @Test func dataParallelRanksBehindTheRouter() throws {
        let port = try freeLoopbackPort()
        let deployment = try Deployment(script: "Examples/dp-router/run.sh", environment: [
            "ROUTER_PORT": "\(port)", "CONTROL_PORT": "\(try freeLoopbackPort())",
        ])
        defer { deployment.terminate() }
        let text = try deployment.waitForCompletion(baseURL: "http://127.0.0.1:\(port)", prompt: "The capital of France is")
        #expect(text.contains("Paris"), "\(text)")
        #expect(deployment.stop() == 0, "\(deployment.output)")
        #expect(waitUntil { deployment.leftovers().isEmpty }, "left running: \(deployment.leftovers())")
    }

    @Test(.enabled(if: getuid() == 0, "creates network namespaces: needs root"))
    func prefillAndDecodeOnTwoHostsOverTCP() throws {
        let name = "tdm" + UUID().uuidString.prefix(6).lowercased()
        let subnet = "10.213.\(Int.random(in: 1...250))"
        let port = try freeLoopbackPort()
        let deployment = try Deployment(script: "Examples/pd-two-hosts/run.sh", environment: [
            "ROUTER_PORT": "\(port)", "NETNS_NAME": name, "SUBNET": subnet,
        ])
        defer { deployment.terminate() }
        let text = try deployment.waitForCompletion(baseURL: "http://\(subnet).254:\(port)", prompt: "The capital of France is")
        #expect(text.contains("Paris"), "\(text)")
        #expect(deployment.stop() == 0, "\(deployment.output)")
        #expect(waitUntil { deployment.leftovers().isEmpty }, "left running: \(deployment.leftovers())")
        let namespaces = try runProcess("/bin/ip", ["netns", "list"]).stdout
        #expect(!namespaces.contains(name), "namespaces left: \(namespaces)")
        #expect(try runProcess("/bin/ip", ["link", "show", "\(name)-r"]).status != 0, "the veth to the LAN is left")
    }

    @Test(.enabled(if: getuid() == 0, "creates network namespaces: needs root"))
    func prefillAndDecodeOnTwoHostsPlacedThroughRedis() throws {
        let name = "tdr" + UUID().uuidString.prefix(6).lowercased()
        let subnet = "10.214.\(Int.random(in: 1...250))"
        let redisPort = try freeLoopbackPort()
        let deployment = try Deployment(script: "Examples/pd-two-hosts-redis/run.sh", environment: [
            "NETNS_NAME": name, "SUBNET": subnet, "REDIS_PORT": "\(redisPort)",
        ])
        defer { deployment.terminate() }
        // Either instance's port answers: each request is placed on the prefill and the decode host.
        for host in ["\(subnet).1", "\(subnet).2"] {
            let text = try deployment.waitForCompletion(baseURL: "http://\(host):8000", prompt: "The capital of France is")
            #expect(text.contains("Paris"), "through \(host): \(text)")
        }
        // Both hosts are in the cluster hash, as redis-cli reads it.
        let cluster = try runProcess("/usr/bin/redis-cli", ["-h", "\(subnet).254", "-p", "\(redisPort)", "-a", "tandem-example", "--no-auth-warning", "HLEN", "fd.cluster"])
        #expect(cluster.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "2", "\(cluster.stdout)\(cluster.stderr)")
        #expect(deployment.stop() == 0, "\(deployment.output)")
        #expect(waitUntil { deployment.leftovers().isEmpty }, "left running: \(deployment.leftovers())")
        let namespaces = try runProcess("/bin/ip", ["netns", "list"]).stdout
        #expect(!namespaces.contains(name), "namespaces left: \(namespaces)")
        #expect(try runProcess("/bin/ip", ["link", "show", "\(name)-r"]).status != 0, "the veth to the LAN is left")
    }
}
