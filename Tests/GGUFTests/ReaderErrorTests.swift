import Foundation
import Testing
import GGUF
import Engine
import GGUFTestSupport

/// Every way a file can be bad gives a GGUFError with an exact message, never a crash.
@Suite struct ReaderErrorTests {
    /// Writes `bytes` to a temporary file and opens it; returns the error's message.
    func openError(_ bytes: [UInt8]) throws -> String? {
        let folder = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("bad.gguf").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        do {
            _ = try GGUFFile(path: path)
            return nil
        } catch let error as GGUFError {
            return error.description
        }
    }

    /// One F32 tensor 'w' of 8 elements and no metadata. Layout: header 24 bytes, name
    /// 25..<33, dimension count 33..<37, ne0 37..<45, type 45..<49, offset 49..<57.
    func oneTensorFile(type: GGMLType = .f32, elements: Int = 8) throws -> [UInt8] {
        var writer = GGUFWriter()
        var rng = SplitMix64(seed: 3)
        try writer.addTensor(name: "w", shape: [elements], type: type, data: type.randomData(elements: elements, using: &rng))
        return try writer.serialize()
    }

    func patch(_ bytes: inout [UInt8], at offset: Int, _ value: some FixedWidthInteger) {
        withUnsafeBytes(of: value.littleEndian) { for (i, b) in $0.enumerated() { bytes[offset + i] = b } }
    }

    @Test func headerErrors() throws {
        #expect(try openError([]) == "truncated GGUF file: magic at byte 0 needs 4 bytes, only 0 left")
        #expect(try openError(Array("GGUX".utf8) + [3, 0, 0, 0]) == "not a GGUF file: magic is 47 47 55 58, expected 47 47 55 46 (\"GGUF\")")
        #expect(try openError(Array("GGUF".utf8) + [1, 0, 0, 0]) == "unsupported GGUF version 1 (supported: 2, 3)")
        #expect(try openError(Array("GGUF".utf8) + [3, 0, 0, 0, 1, 0]) == "truncated GGUF file: tensor count at byte 8 needs 8 bytes, only 2 left")
    }

    @Test func tensorErrors() throws {
        var unknown = try oneTensorFile()
        patch(&unknown, at: 45, UInt32(99))
        #expect(try openError(unknown) == "tensor 'w' has unknown type 99")

        var outside = try oneTensorFile()
        patch(&outside, at: 49, UInt64(32))
        #expect(try openError(outside) == "tensor 'w': data at offset 32 with 32 bytes ends past the data section (32 bytes)")

        var huge = try oneTensorFile()
        patch(&huge, at: 49, UInt64.max - 31)
        #expect(try openError(huge) == "tensor 'w': data at offset 18446744073709551584 with 32 bytes ends past the data section (32 bytes)")

        var misaligned = try oneTensorFile()
        patch(&misaligned, at: 49, UInt64(4))
        #expect(try openError(misaligned) == "tensor 'w': data offset 4 is not a multiple of the alignment 32")

        var partial = try oneTensorFile(type: .q8_0, elements: 32)
        patch(&partial, at: 37, UInt64(16))
        #expect(try openError(partial) == "tensor 'w': row length 16 is not a multiple of the Q8_0 block size 32")

        var dimensions = try oneTensorFile()
        patch(&dimensions, at: 33, UInt32(5))
        #expect(try openError(dimensions) == "tensor 'w' has 5 dimensions, at most 4 are allowed")

        var overflow = try oneTensorFile()
        patch(&overflow, at: 37, UInt64.max)
        #expect(try openError(overflow) == "tensor 'w' has an invalid shape [18446744073709551615]")

        var writer = GGUFWriter()
        try writer.addTensor(name: "w", shape: [1], type: .f32, values: [1])
        try writer.addTensor(name: "w", shape: [1], type: .f32, values: [2])
        #expect(try openError(writer.serialize()) == "tensor 'w' appears twice in the tensor table")
    }

    @Test func metadataErrors() throws {
        var writer = GGUFWriter()
        writer.add("k", .uint32(7))
        var bytes = try writer.serialize()
        // Header 24 bytes, key length 24..<32, key "k" 32, value type 33..<37.
        patch(&bytes, at: 33, UInt32(13))
        #expect(try openError(bytes) == "unknown metadata value type 13 for key 'k'")
        bytes[32] = 0xFF
        patch(&bytes, at: 33, UInt32(4))
        #expect(try openError(bytes) == "invalid UTF-8 in key of metadata entry 0 at byte 24")

        var long = try writer.serialize()
        patch(&long, at: 24, UInt64(1) << 62)
        let longMessage = try openError(long)
        #expect(longMessage == "truncated GGUF file: key of metadata entry 0 at byte 32 needs 4611686018427387904 bytes, only 32 left")

        var badAlignment = GGUFWriter()
        badAlignment.add("general.alignment", .uint32(48))
        #expect(try openError(badAlignment.serialize()) == "general.alignment is 48, must be a power of two")
        var wrongAlignment = GGUFWriter()
        wrongAlignment.add("general.alignment", .uint64(64))
        #expect(try openError(wrongAlignment.serialize()) == "metadata key 'general.alignment' is uint64, expected uint32")

        var twice = GGUFWriter()
        twice.add("k", .bool(true))
        twice.add("k", .bool(false))
        #expect(try openError(twice.serialize()) == "metadata key 'k' appears twice")

        var nested: GGUFValue = .array([.uint8(1)])
        for _ in 0..<20 { nested = .array([nested]) }
        var deep = GGUFWriter()
        deep.add("deep", nested)
        #expect(try openError(deep.serialize()) == "metadata key 'deep' nests arrays deeper than 16 levels")
    }

    @Test func lookupErrors() throws {
        let folder = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("m.gguf").path
        var writer = GGUFWriter()
        writer.add("a", .uint32(1))
        writer.add("n", .int32(-1))
        writer.add("names", .array([.string("x"), .string("y")]))
        try writer.write(to: path)
        let file = try GGUFFile(path: path)
        func message(_ body: () throws -> Any) -> String? {
            do { _ = try body(); return nil } catch { return (error as? GGUFError)?.description }
        }
        #expect(message { try file.tensor(named: "blk.0.attn_q.weight") } == "missing tensor 'blk.0.attn_q.weight'")
        #expect(message { try file.architecture } == "missing metadata key 'general.architecture'")
        #expect(message { try file.string("a") } == "metadata key 'a' is uint32, expected string")
        #expect(message { try file.uint("n") } == "metadata key 'n' is int32, expected unsigned integer")
        #expect(message { try file.float("names") } == "metadata key 'names' is array of string, expected number")
        #expect(message { try file.intArray("names") } == "metadata key 'names' is array of string, expected array of integer")
        #expect(message { try file.bool("missing") } == "missing metadata key 'missing'")
        #expect(message { try GGUFFile(path: folder.appendingPathComponent("none.gguf").path) }
            == "cannot open GGUF file '\(folder.path)/none.gguf': No such file or directory")
        #expect(message { try GGUFFile(path: folder.path) } == "cannot open GGUF file '\(folder.path)': not a regular file")
    }

    /// Every proper prefix of a valid file (metadata of every type, three tensors) is
    /// rejected with a GGUFError.
    @Test func everyTruncationIsAnError() throws {
        let bytes = try RoundTripTests.smallModel().serialize()
        var messages: Set<String> = []
        for length in 0..<bytes.count {
            let message = try openError(Array(bytes[..<length]))
            #expect(message != nil, "prefix of \(length) bytes opened without error")
            if let message { messages.insert(String(message.prefix(20))) }
        }
        #expect(try openError(bytes) == nil)
        #expect(messages.count > 1)
    }

    /// Random byte corruption anywhere before the data section: opening either succeeds
    /// with every tensor inside the file, or fails with a GGUFError, never a crash.
    @Test func corruptedHeadersNeverCrash() throws {
        let valid = try RoundTripTests.smallModel().serialize()
        let headerEnd = valid.count - 512 - 80  // the tensors' data takes the last ~600 bytes
        var rng = SplitMix64(seed: 2024)
        var failures = 0
        let folder = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("fuzz.gguf").path
        for _ in 0..<1500 {
            var bytes = valid
            for _ in 0..<Int.random(in: 1...3, using: &rng) {
                bytes[Int.random(in: 0..<headerEnd, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            }
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            do {
                let file = try GGUFFile(path: path)
                for tensor in file.tensors {
                    #expect(file.dataOffset + tensor.offset + tensor.byteCount <= file.fileSize)
                    #expect(file.data(for: tensor).count == tensor.byteCount)
                }
            } catch is GGUFError {
                failures += 1
            }
        }
        #expect(failures > 100)
    }
}
