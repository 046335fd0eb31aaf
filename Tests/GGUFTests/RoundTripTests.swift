import Foundation
import Testing
import TestSupport
import GGUF
import Engine
import GGUFTestSupport

/// Writer → file → reader: every metadata type, nested arrays, both versions, alignments.
@Suite struct RoundTripTests {
    static let everyType: [(String, GGUFValue)] = [
        ("t.uint8", .uint8(200)), ("t.int8", .int8(-100)),
        ("t.uint16", .uint16(60000)), ("t.int16", .int16(-30000)),
        ("t.uint32", .uint32(4_000_000_000)), ("t.int32", .int32(-2_000_000_000)),
        ("t.uint64", .uint64(UInt64.max)), ("t.int64", .int64(Int64.min)),
        ("t.float32", .float32(3.25)), ("t.float64", .float64(-1e300)),
        ("t.bool.true", .bool(true)), ("t.bool.false", .bool(false)),
        ("t.string", .string("héllo ✓ 世界")), ("t.empty_string", .string("")),
        ("t.array.int32", .array([.int32(1), .int32(-2), .int32(3)])),
        ("t.array.string", .array([.string("a"), .string(""), .string("ü")])),
        ("t.array.float32", .array([.float32(0.5), .float32(-1)])),
        ("t.array.bool", .array([.bool(true), .bool(false)])),
        ("t.array.empty", .array([])),
        ("t.array.nested", .array([.array([.uint8(1), .uint8(2)]), .array([.uint8(3)]), .array([])])),
    ]

    static func smallModel(version: UInt32 = 3, alignment: Int = 32) throws -> GGUFWriter {
        var writer = GGUFWriter(version: version, alignment: alignment)
        writer.add("general.architecture", .string("llama"))
        for (key, value) in everyType { writer.add(key, value) }
        var rng = SplitMix64(seed: 1)
        try writer.addTensor(name: "a", shape: [64, 3], type: .q4_1, data: GGMLType.q4_1.randomData(elements: 192, using: &rng))
        try writer.addTensor(name: "b", shape: [5], type: .f32, values: [1, 2, 3, 4, 5])
        try writer.addTensor(name: "c", shape: [256, 1, 2], type: .q6_K, data: GGMLType.q6_K.randomData(elements: 512, using: &rng))
        return writer
    }

    @Test(arguments: [(UInt32(3), 32), (3, 64), (2, 32), (2, 8)])
    func roundTrip(version: UInt32, alignment: Int) throws {
        let writer = try Self.smallModel(version: version, alignment: alignment)
        let folder = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("m.gguf").path
        try writer.write(to: path)
        let file = try GGUFFile(path: path)
        #expect(file.version == version)
        #expect(file.alignment == alignment)
        #expect(file.dataOffset % alignment == 0)
        #expect(try file.architecture == "llama")
        for (key, value) in Self.everyType { #expect(file.metadata[key] == value, "\(key)") }
        #expect(file.metadataKeys == writer.metadata.map(\.key))
        #expect(file.tensors.map(\.name) == ["a", "b", "c"])
        for (info, written) in zip(file.tensors, writer.tensors) {
            #expect(info.shape == written.shape)
            #expect(info.type == written.type)
            #expect(info.offset % alignment == 0)
            let bytes = difference(Array(file.data(for: info)), Array(written.data))
            #expect(bytes == nil, "\(info.name): \(bytes ?? "")")
        }
        #expect(try file.floats(for: file.tensor(named: "b")) == [1, 2, 3, 4, 5])
        let c = try file.tensor(named: "c")
        #expect(c.rowLength == 256 && c.rowCount == 2 && c.elementCount == 512 && c.bytesPerRow == 210)
    }

    @Test func typedAccessors() throws {
        let folder = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("m.gguf").path
        try Self.smallModel().write(to: path)
        let file = try GGUFFile(path: path)
        #expect(try file.uint("t.uint8") == 200)
        #expect(try file.int("t.int32") == -2_000_000_000)
        #expect(try file.uint("t.uint32") == 4_000_000_000)
        #expect(try file.float("t.float32") == 3.25)
        #expect(try file.double("t.float64") == -1e300)
        #expect(try file.float("t.int16") == -30000)
        #expect(try file.bool("t.bool.true"))
        #expect(try file.string("t.string") == "héllo ✓ 世界")
        #expect(try file.stringArray("t.array.string") == ["a", "", "ü"])
        #expect(try file.intArray("t.array.int32") == [1, -2, 3])
        #expect(try file.floatArray("t.array.float32") == [0.5, -1])
        #expect(try file.value("t.array.nested").arrayValue?.count == 3)
        #expect(GGUFValue.uint64(UInt64.max).intValue == nil)
        #expect(GGUFValue.uint64(UInt64.max).uintValue == UInt64.max)
    }

    @Test func writerRejectsBadInput() throws {
        var writer = GGUFWriter()
        let size = #expect(throws: GGUFError.self) { try writer.addTensor(name: "w", shape: [32], type: .q8_0, data: [1, 2]) }
        #expect(size?.description == "cannot write GGUF: tensor 'w' (Q8_0, shape [32]) needs 34 bytes, got 2")
        let block = #expect(throws: GGUFError.self) { try writer.addTensor(name: "w", shape: [16], type: .q8_0, data: []) }
        #expect(block?.description == "tensor 'w': row length 16 is not a multiple of the Q8_0 block size 32")
        writer.add("mixed", .array([.uint8(1), .string("x")]))
        let mixed = #expect(throws: GGUFError.self) { try writer.serialize() }
        #expect(mixed?.description == "cannot write GGUF: array for key 'mixed' mixes uint8 and string elements")
    }
}
