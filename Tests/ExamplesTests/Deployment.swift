import Foundation
import Glibc
import TestSupport

/// The package root, found from this file's path (Tests/ExamplesTests/…).
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path

/// One example deployment's script, run as written (with the built binaries, free ports and a
/// temporary log folder through its environment variables) for one test. Every process it
/// starts carries the test's tag, so the test can check that none is left after it stops.
final class Deployment {
    let tag = UUID().uuidString
    let process = Process()
    let logDirectory: String
    private let outputPath: String

    init(script: String, environment extra: [String: String]) throws {
        logDirectory = NSTemporaryDirectory() + "tandem-example-\(tag.prefix(8))"
        outputPath = logDirectory + ".out"
        try FileManager.default.createDirectory(atPath: logDirectory, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
        // Foundation's Process starts children with SIGTERM and SIGINT blocked (inherited from
        // the thread that spawns), and bash cannot unblock them: its traps would never run. The
        // script is started the way a shell starts it, with no signal blocked.
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = ["-c", "import os, signal, sys; signal.pthread_sigmask(signal.SIG_SETMASK, []); os.execv('/bin/bash', ['bash'] + sys.argv[1:])",
                             packageRoot + "/" + script]
        var environment = ProcessInfo.processInfo.environment
        environment["TANDEM_TEST_FLEET"] = tag
        environment["TANDEM_BIN"] = BuiltProducts.directory
        environment["LOG_DIR"] = logDirectory
        environment.removeValue(forKey: "NOTIFY_SOCKET")
        for (key, value) in extra { environment[key] = value }
        process.environment = environment
        process.standardOutput = FileHandle(forWritingAtPath: outputPath)
        process.standardError = FileHandle(forWritingAtPath: outputPath)
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    deinit { terminate() }

    /// The script's output (its processes' output, each line prefixed with the process's name),
    /// then every rank's log.
    var output: String {
        var text = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        let files = FileManager.default.enumerator(atPath: logDirectory)?.compactMap { $0 as? String } ?? []
        for file in files.sorted() where file.hasSuffix("worker.log") {
            text += "\n--- \(file):\n" + ((try? String(contentsOfFile: logDirectory + "/" + file, encoding: .utf8)) ?? "")
        }
        return text
    }

    /// Sends `body` to `url` with curl; the HTTP status and the body.
    static func post(_ url: String, json body: [String: Any]) throws -> (status: Int, body: [String: Any]?, text: String) {
        let data = try JSONSerialization.data(withJSONObject: body)
        let result = try runProcess("/usr/bin/curl", [
            "-s", "--noproxy", "*", "-m", "120", "-w", "\n%{http_code}", "-H", "Content-Type: application/json",
            "--data-binary", "@-", url,
        ], input: data)
        let lines = result.stdout.split(separator: "\n", omittingEmptySubsequences: false)
        let status = Int(lines.last ?? "") ?? 0
        let text = lines.dropLast().joined(separator: "\n")
        return (status, (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any], text)
    }

    /// The first choice's text of a greedy completion through `baseURL` (the router), once the
    /// deployment answers it with 200 (its instances load and register first).
    func waitForCompletion(baseURL: String, prompt: String, maxTokens: Int = 8) throws -> String {
        var last = ""
        let body: [String: Any] = ["model": "SmolLM2-135M-Instruct", "prompt": prompt, "max_tokens": maxTokens, "temperature": 0]
        var text: String?
        let answered = try waitUntil(deadline: .now + .seconds(300), poll: .milliseconds(500)) {
            guard process.isRunning else { return true }
            let reply = try Self.post(baseURL + "/v1/completions", json: body)
            last = "HTTP \(reply.status): \(reply.text)"
            guard reply.status == 200, let choices = reply.body?["choices"] as? [[String: Any]] else { return false }
            text = choices.first?["text"] as? String
            return true
        }
        guard answered, let text else {
            throw TestFailure("no completion through \(baseURL) (last answer: \(last); script \(process.isRunning ? "running" : "exited \(process.terminationStatus)")):\n\(output)")
        }
        return text
    }

    /// Sends SIGTERM to the script (as Ctrl-C would stop it) and waits for it; its exit status.
    func stop() -> Int32? {
        kill(process.processIdentifier, SIGTERM)
        guard waitUntil(deadline: .now + .seconds(120), { !process.isRunning }) else { return nil }
        return process.terminationStatus
    }

    /// Processes the deployment started that are still running.
    func leftovers() -> [Int] { fleetProcesses(tag: tag) }

    /// Kills anything left (after a failure) and removes the logs.
    func terminate() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        for pid in fleetProcesses(tag: tag) { kill(pid_t(pid), SIGKILL) }
        try? FileManager.default.removeItem(atPath: logDirectory)
        try? FileManager.default.removeItem(atPath: outputPath)
    }
}
