import Engine
import Foundation
import KVTransfer
import PDProtocol
import Testing

/// The P ↔ D wire format: frames, KV write headers, the JSON messages, the layout handshake.
struct PDMessageTests {
    static let layout = KVLayoutDescription(modelFingerprint: "1234-abcd", layers: 30, kvHeads: 3, headDim: 64,
                                            blockSize: 16, kvDataType: "float32")

    @Test func frameHeaderRoundTrips() throws {
        for kind in PDFrameHeader.Kind.allCases {
            let header = PDFrameHeader(kind: kind, length: 0x1_0000_0001)
            #expect(header.bytes.count == PDFrameHeader.size)
            #expect(try PDFrameHeader(decoding: header.bytes) == header)
        }
    }

    @Test func badFrameHeadersAreRefusedByName() throws {
        var bytes = PDFrameHeader(kind: .hello, length: 3).bytes
        bytes[0] = 0x58
        #expect(throws: PDFrameHeader.DecodingError(description: "not a Tandem PD frame (magic 0x44504b58)")) {
            try PDFrameHeader(decoding: bytes)
        }
        bytes = PDFrameHeader(kind: .hello, length: 3).bytes
        bytes[4] = 9
        #expect(throws: PDFrameHeader.DecodingError(description: "PD frame version 9 is not supported (this side speaks 2)")) {
            try PDFrameHeader(decoding: bytes)
        }
        bytes = PDFrameHeader(kind: .hello, length: 3).bytes
        bytes[5] = 200
        #expect(throws: PDFrameHeader.DecodingError(description: "unknown PD frame kind 200")) { try PDFrameHeader(decoding: bytes) }
        #expect(throws: PDFrameHeader.DecodingError(description: "a frame header is 16 bytes, got 3")) {
            try PDFrameHeader(decoding: [1, 2, 3])
        }
    }

    @Test func kvWriteHeaderRoundTrips() throws {
        let header = KVWriteHeader(layer: 29, blockIDs: [0, 7, 1_000_000, -1], bytesPerBlock: 24576, checksum: 0xdead_beef_0123_4567)
        #expect(header.bytes.count == header.encodedSize)
        #expect(header.dataBytes == 4 * 24576)
        #expect(try KVWriteHeader(decoding: header.bytes) == header)
        #expect(throws: PDFrameHeader.DecodingError(description: "a KV write header of 4 blocks is 40 bytes, got 36")) {
            try KVWriteHeader(decoding: Array(header.bytes.dropLast(4)))
        }
    }

    @Test func messagesUseSnakeCaseKeysAndRoundTrip() throws {
        let hello = PDHello(requestID: "r1", layout: Self.layout, promptTokens: 17, promptHash: PDHello.hash(tokens: [1, 2, 3]),
                            transferProtocol: .ipc)
        let json = String(decoding: try JSONEncoder().encode(hello), as: UTF8.self)
        for key in ["\"request_id\"", "\"prompt_tokens\"", "\"prompt_hash\"", "\"transfer_protocol\":\"ipc\"", "\"model_fingerprint\"",
                    "\"kv_heads\"", "\"head_dim\"", "\"block_size\"", "\"kv_cache_dtype\":\"float32\""] {
            #expect(json.contains(key), "\(key) in \(json)")
        }
        #expect(try JSONDecoder().decode(PDHello.self, from: Data(json.utf8)) == hello)

        let reservation = PDReservation(requestID: "r1", blockIDs: [4, 9, 2], cachedBlocks: 1, promptBlocks: 2, bytesPerLayerBlock: 24576,
                                        ipc: IPCRegion(path: "/proc/1/fd/3", instanceID: "x", byteCount: 100, numBlocks: 8,
                                                       lease: IPCLease(path: "/proc/1/fd/4", slot: 2, generation: 7)))
        #expect(Array(reservation.blocksToSend) == [9])
        #expect(try JSONDecoder().decode(PDReservation.self, from: JSONEncoder().encode(reservation)) == reservation)
        let first = PDFirstToken(requestID: "r1", token: 42, logprob: -0.25, topLogprobs: [.init(token: 42, logprob: -0.25), .init(token: 7, logprob: -2)])
        #expect(try JSONDecoder().decode(PDFirstToken.self, from: JSONEncoder().encode(first)) == first)
    }

    @Test func promptHashDependsOnOrder() {
        #expect(PDHello.hash(tokens: [1, 2]) != PDHello.hash(tokens: [2, 1]))
        #expect(PDHello.hash(tokens: [1, 2]) == PDHello.hash(tokens: [1, 2]))
    }

    @Test func layoutMismatchNamesTheFieldAndBothValues() {
        var prefill = Self.layout
        #expect(Self.layout.mismatch(prefill: prefill) == nil)
        prefill.kvDataType = "float16"
        #expect(Self.layout.mismatch(prefill: prefill)
            == "KV layout mismatch: kv_cache_dtype is float16 on the prefill instance but float32 on the decode instance")
        prefill = Self.layout
        prefill.blockSize = 32
        #expect(Self.layout.mismatch(prefill: prefill)
            == "KV layout mismatch: block_size is 32 on the prefill instance but 16 on the decode instance")
        prefill = Self.layout
        prefill.modelFingerprint = "other"
        #expect(Self.layout.mismatch(prefill: prefill)
            == "KV layout mismatch: model_fingerprint is other on the prefill instance but 1234-abcd on the decode instance")
        prefill = Self.layout
        prefill.layers = 24
        #expect(Self.layout.mismatch(prefill: prefill)
            == "KV layout mismatch: layers is 24 on the prefill instance but 30 on the decode instance")
    }
}

/// How many blocks D reserves and how many P sends, around block-size multiples.
struct BlockReservationTests {
    @Test(arguments: [
        // prompt, cached hits → (total, prompt blocks, cached used)
        (1, 0, 1, 1, 0), (15, 0, 1, 1, 0), (16, 0, 2, 1, 0), (17, 0, 2, 2, 0),
        (31, 0, 2, 2, 0), (32, 0, 3, 2, 0), (33, 0, 3, 3, 0), (32, 2, 3, 2, 2), (33, 2, 3, 3, 2), (16, 5, 2, 1, 1),
        (47, 9, 3, 3, 2),
    ])
    func blockCounts(_ prompt: Int, _ hits: Int, _ total: Int, _ promptBlocks: Int, _ cached: Int) {
        let counts = KVImportReservation.blockCounts(promptTokens: prompt, blockSize: 16, cachedHits: hits)
        #expect(counts.total == total)
        #expect(counts.prompt == promptBlocks)
        #expect(counts.cached == cached)
    }
}

struct KVChecksumTests {
    @Test func detectsChangedAndReorderedData() {
        let a = [UInt8](repeating: 1, count: 4096) + [UInt8](repeating: 2, count: 4096)
        var b = a
        b[100] ^= 0x10
        let swapped = Array(a[4096...]) + Array(a[..<4096])
        func sum(_ bytes: [UInt8]) -> UInt64 { bytes.withUnsafeBytes { KVChecksum.of([$0]) } }
        #expect(sum(a) == sum(a))
        #expect(sum(a) != sum(b))
        #expect(sum(a) != sum(swapped))
        #expect(sum(Array(a.prefix(33))) != sum(Array(a.prefix(34))))
        // In pieces (block by block) as in one.
        let pieces = a.withUnsafeBytes { all in KVChecksum.of([UnsafeRawBufferPointer(rebasing: all[..<4096]), UnsafeRawBufferPointer(rebasing: all[4096...])]) }
        #expect(pieces == sum(a))
    }
}
