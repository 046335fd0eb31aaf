import Foundation
import Testing
import TestSupport
import GGUF
import Engine
import GGUFTestSupport

/// Checks the C dequantization against PyPI `gguf` (`gguf.quants.dequantize`), an
/// independent implementation in numpy, on the same random blocks.
@Suite struct DequantizationTests {
    static let supported = GGMLType.allCases.filter(\.isSupported)

    @Test func supportedSetIsTheIssueList() {
        #expect(Self.supported.map(\.description).sorted()
            == ["BF16", "F16", "F32", "Q4_0", "Q4_1", "Q4_K", "Q5_0", "Q5_1", "Q5_K", "Q6_K", "Q8_0"])
    }

    @Test(arguments: supported)
    func matchesPythonGGUF(type: GGMLType) throws {
        var rng = SplitMix64(seed: 0x5EED + UInt64(type.rawValue))
        let elements = 8 * 256
        let bytes = type.randomData(elements: elements, using: &rng)
        #expect(bytes.count == type.byteCount(elements: elements))
        let ours = try dequantize(type, bytes)
        let theirs = try pythonDequantize(type, bytes)
        #expect(ours.count == elements)
        let pairs = try paired(ours, theirs, reference: "gguf.quants.dequantize")
        let scale = theirs.map(abs).max() ?? 0
        #expect(scale > 0.01)  // the data is not degenerate
        var worst: Float = 0
        for (a, b) in pairs { worst = max(worst, abs(a - b)) }
        #expect(worst <= scale * 1e-6, "\(type): largest difference \(worst) (values up to \(scale))")
        #expect(ours.allSatisfy { $0.isFinite && abs($0) <= 2.5 })
    }

    @Test func rawPointerEntryPointAgrees() throws {
        var rng = SplitMix64(seed: 7)
        let bytes = GGMLType.q6_K.randomData(elements: 512, using: &rng)
        var out = [Float](repeating: .nan, count: 512)
        try bytes.withUnsafeBytes { src in
            try out.withUnsafeMutableBufferPointer { try dequantize(.q6_K, src.baseAddress!, count: 512, into: $0.baseAddress!) }
        }
        let difference = bitwiseDifference(out, try dequantize(.q6_K, bytes))
        #expect(difference == nil, "\(difference ?? "")")
    }

    @Test func errors() throws {
        let q2 = #expect(throws: GGUFError.self) { try dequantize(.q2_K, [UInt8](repeating: 0, count: 84)) }
        #expect(q2?.description == "tensor type Q2_K is not supported (supported: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K)")
        let partial = #expect(throws: GGUFError.self) { try dequantize(.q4_0, [UInt8](repeating: 0, count: 20)) }
        #expect(partial?.description == "20 bytes are not a whole number of Q4_0 blocks (32 elements, 18 bytes each)")
        var out = [Float](repeating: 0, count: 40)
        let bytes = [UInt8](repeating: 0, count: 40)
        let elements = #expect(throws: GGUFError.self) {
            try bytes.withUnsafeBytes { src in
                try out.withUnsafeMutableBufferPointer { try dequantize(.q8_0, src.baseAddress!, count: 40, into: $0.baseAddress!) }
            }
        }
        #expect(elements?.description == "40 elements are not a whole number of Q8_0 blocks (32 elements, 34 bytes each)")
    }

    @Test func quantizersRoundTripWithinOneStep() throws {
        var rng = SplitMix64(seed: 11)
        let values = (0..<256).map { _ in Float.random(in: -2...2, using: &rng) }
        // Largest error: half a step, except Q4_0 whose range -8...7 clips the side
        // opposite the largest magnitude by up to a whole step.
        for (type, bound) in [(GGMLType.f32, Float(0)), (.f16, 1e-3), (.bf16, 8e-3), (.q8_0, 1.0 / 127), (.q4_0, 2.0 / 8), (.q4_1, 2.0 / 15)] {
            let decoded = try dequantize(type, quantize(values, to: type))
            for (a, b) in zip(values, decoded) {
                #expect(abs(a - b) <= bound + 1e-3 * abs(a) + 1e-6, "\(type): \(a) -> \(b)")
            }
        }
        let error = #expect(throws: GGUFError.self) { try quantize(values, to: .q6_K) }
        #expect(error?.description == "cannot write GGUF: no quantizer for Q6_K (quantizers: F32, F16, BF16, Q8_0, Q4_0, Q4_1)")
    }

    /// The quantizers (and the fp16/bf16 rounding under them) give the same bytes as
    /// `gguf.quants.quantize`, ggml's reference quantizers in numpy.
    @Test(arguments: [GGMLType.f16, .bf16, .q8_0, .q4_0, .q4_1])
    func quantizerMatchesPythonGGUF(type: GGMLType) throws {
        var rng = SplitMix64(seed: 99)
        var values = (0..<(32 * 64)).map { _ in Float.random(in: -3...3, using: &rng) * Float.random(in: 0...1, using: &rng) }
        // Rounding edge cases: ties to even, subnormal halves, overflow, zeros, infinities.
        let edges: [Float] = [
            65504, 65519, 65520, -65536, 1 + 0x1p-11, 1 + 3 * 0x1p-11, 0x1p-24, 0x1p-25, 3 * 0x1p-26,
            0x1p-14, 0x1p-14 - 0x1p-25, 1e-8, -1e-7, 0, -0.0, .infinity, -.infinity, 1 + 0x1p-8, 1 + 3 * 0x1p-8,
            3.4e38, 0.1, -0.2, 0.3, 1 / 3, 2 / 3, 7, 8, 1e5, 1e-40, 12.5, -12.5, 100,
        ]
        if type == .f16 || type == .bf16 { values.replaceSubrange(0..<edges.count, with: edges) }
        let ours = try quantize(values, to: type)
        let folder = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let input = folder.appendingPathComponent("floats.bin"), output = folder.appendingPathComponent("blocks.bin")
        try values.withUnsafeBytes { try Data($0).write(to: input) }
        try runPython("""
            import sys, numpy as np
            from gguf import GGMLQuantizationType
            from gguf.quants import quantize
            x = np.fromfile(sys.argv[1], dtype=np.float32)
            np.asarray(quantize(x, GGMLQuantizationType(int(sys.argv[3])))).tofile(sys.argv[2])
            """, [input.path, output.path, String(type.rawValue)])
        let theirs = [UInt8](try Data(contentsOf: output))
        _ = try paired(ours, theirs, reference: "gguf.quants.quantize")
        let differing = difference(ours, theirs)
        #expect(differing == nil, "\(type): \(differing ?? "")")
    }

    private func runPython(_ script: String, _ arguments: [String]) throws {
        let result = try runProcess("/usr/bin/env", ["python3", "-c", script] + arguments)
        try #require(result.status == 0, "python3 failed: \(arguments)\n\(result.stderr)")
    }

    /// Runs `gguf.quants.dequantize` on the bytes and returns its float32 output.
    private func pythonDequantize(_ type: GGMLType, _ bytes: [UInt8]) throws -> [Float] {
        let folder = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let input = folder.appendingPathComponent("blocks.bin"), output = folder.appendingPathComponent("floats.bin")
        try Data(bytes).write(to: input)
        let script = """
            import sys, numpy as np
            from gguf import GGMLQuantizationType
            from gguf.quants import dequantize
            raw = np.fromfile(sys.argv[1], dtype=np.uint8)
            t = GGMLQuantizationType(int(sys.argv[3]))
            if t == GGMLQuantizationType.F32:
                raw = raw.view(np.float32)
            elif t == GGMLQuantizationType.F16:
                raw = raw.view(np.float16)
            np.asarray(dequantize(raw, t), dtype=np.float32).reshape(-1).tofile(sys.argv[2])
            """
        try runPython(script, [input.path, output.path, String(type.rawValue)])
        let data = try Data(contentsOf: output)
        return data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }
}
