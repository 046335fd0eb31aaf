import Foundation
import Testing
import TestSupport
import Engine
import ModelStore

@Suite struct DefaultModelTests {
    @Test func cacheFolderRule() {
        #expect(DefaultModel.cacheDirectory(environment: ["TANDEM_CACHE_DIR": "/c", "XDG_CACHE_HOME": "/x", "HOME": "/h"]) == "/c")
        #expect(DefaultModel.cacheDirectory(environment: ["TANDEM_CACHE_DIR": "", "XDG_CACHE_HOME": "/x", "HOME": "/h"]) == "/x/tandem")
        #expect(DefaultModel.cacheDirectory(environment: ["HOME": "/h"]) == "/h/.cache/tandem")
        #expect(DefaultModel.path(environment: ["TANDEM_CACHE_DIR": "/c"]) == "/c/models/SmolLM2-135M-Instruct.Q4_1.gguf")
    }

    @Test func sameRuleAsTheFetchScript() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("dm-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try FileManager.default.createDirectory(atPath: folder + "/models", withIntermediateDirectories: true)
        try Data([1]).write(to: URL(fileURLWithPath: folder + "/models/" + DefaultModel.fileName))
        let result = try runProcess("/usr/bin/env", ["bash", "scripts/fetch-model.sh"], environment: ["TANDEM_CACHE_DIR": folder])
        #expect(result.stdout == DefaultModel.path(environment: ["TANDEM_CACHE_DIR": folder]) + "\n")
    }

    /// With the model already in the cache (a symlink to the real one), fetch downloads
    /// nothing: PATH holds no python3, so any download attempt would fail.
    @Test func presentModelIsNotFetched() throws {
        let real = try defaultModelPath()
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("dm-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try FileManager.default.createDirectory(atPath: folder + "/models", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: folder + "/models/" + DefaultModel.fileName, withDestinationPath: real)
        let environment = ["TANDEM_CACHE_DIR": folder, "PATH": "/nonexistent"]
        #expect(DefaultModel.isPresent(environment: environment))
        var steps: [String] = []
        let path = try DefaultModel.fetch(environment: environment) { steps.append($0) }
        #expect(path == folder + "/models/SmolLM2-135M-Instruct.Q4_1.gguf")
        #expect(steps.isEmpty)
    }

    @Test func missingPythonIsAClearError() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("dm-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let environment = ["TANDEM_CACHE_DIR": folder, "PATH": "/nonexistent"]
        #expect(!DefaultModel.isPresent(environment: environment))
        let error = #expect(throws: DefaultModelError.self) { try DefaultModel.fetch(environment: environment) }
        #expect(error?.description == "cannot fetch the default model: python3 is not on PATH (install Python 3 with pip, or pass --model PATH)")
    }

    /// A python3 without pip (a stand-in script on PATH) is named as such.
    @Test func missingPipIsAClearError() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("dm-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try FileManager.default.createDirectory(atPath: folder + "/bin", withIntermediateDirectories: true)
        try "#!/bin/sh\necho 'No module named pip' >&2\nexit 1\n".write(toFile: folder + "/bin/python3", atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: folder + "/bin/python3")
        let environment = ["TANDEM_CACHE_DIR": folder, "PATH": folder + "/bin"]
        let error = #expect(throws: DefaultModelError.self) { try DefaultModel.fetch(environment: environment) }
        #expect(error?.description == "cannot fetch the default model: python3 has no pip (install python3-pip, or pass --model PATH)")
    }
}
