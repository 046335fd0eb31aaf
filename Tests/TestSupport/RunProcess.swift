import Foundation

/// What a finished child process left: its exit status and both output streams.
public struct ProcessOutput: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
    public var stdoutData: Data
}

/// Runs a program to completion for a test: `input` goes to its standard input from another
/// thread and standard error goes to a file, so no pipe can fill up and block either side.
/// `environment` entries are set on top of this process's environment.
public func runProcess(_ executable: String, _ arguments: [String], environment: [String: String] = [:],
                       input: Data? = nil) throws -> ProcessOutput {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    let errPath = FileManager.default.temporaryDirectory.appendingPathComponent("tandem-stderr-\(UUID().uuidString)")
    _ = FileManager.default.createFile(atPath: errPath.path, contents: nil)
    defer { try? FileManager.default.removeItem(at: errPath) }
    let errHandle = try FileHandle(forWritingTo: errPath)
    let stdout = Pipe(), stdin = Pipe()
    process.standardOutput = stdout
    process.standardError = errHandle
    process.standardInput = input == nil ? FileHandle.nullDevice : stdin
    try process.run()
    if let input {
        let writer = Thread {
            stdin.fileHandleForWriting.write(input)
            try? stdin.fileHandleForWriting.close()
        }
        writer.start()
    }
    let outData = stdout.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    try errHandle.close()
    return ProcessOutput(status: process.terminationStatus,
                         stdout: String(decoding: outData, as: UTF8.self),
                         stderr: String(decoding: try Data(contentsOf: errPath), as: UTF8.self),
                         stdoutData: outData)
}
