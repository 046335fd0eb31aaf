import Engine
import Testing

@Suite struct KVCacheTests {
    @Test func layoutGeometry() {
        let layout = KVCacheLayout(layers: 30, kvHeads: 3, headDim: 64, blockSize: 16, numBlocks: 10)
        #expect(layout.floatsPerLayerBlock == 2 * 3 * 16 * 64)
        #expect(layout.bytesPerLayerBlock == 2 * 3 * 16 * 64 * 4)
        #expect(layout.bytesPerBlock == 30 * 2 * 3 * 16 * 64 * 4)
        #expect(layout.totalBytes == 10 * layout.bytesPerBlock)
        #expect(layout.tokenCapacity == 160)
        #expect(layout.blocksNeeded(forTokens: 16) == 1)
        #expect(layout.blocksNeeded(forTokens: 17) == 2)
    }

    @Test func writesLandWhereTheLayoutSaysAndReadBack() throws {
        let layout = KVCacheLayout(layers: 2, kvHeads: 2, headDim: 4, blockSize: 4, numBlocks: 3)
        let cache = try KVCache(layout: layout)
        let table: [Int32] = [2, 0]
        for layer in 0..<2 {
            for position in 0..<8 {
                let key = (0..<8).map { Float(layer * 1000 + position * 10 + $0) }
                let value = key.map { -$0 }
                cache.write(layer: layer, position: position, blockTable: table, key: key, value: value)
            }
        }
        // Position 5 of layer 1 sits in block table[1] = 0, slot 1. Keys are [head][dim][slot]:
        // head 1, dimension 2 is at 1 · headDim · blockSize + 2 · blockSize + slot.
        let block = cache.blockBytes(layer: 1, block: 0).bindMemory(to: Float.self)
        #expect(block[1 * 4 * 4 + 2 * 4 + 1] == Float(1000 + 50 + 4 + 2))
        // Values are [head][slot][dim], after all keys (2 · 4 · 4 floats).
        #expect(block[2 * 4 * 4 + 1 * 4 * 4 + 1 * 4 + 2] == -Float(1000 + 50 + 4 + 2))
        var key = [Float](repeating: 0, count: 8), value = key
        cache.read(layer: 0, position: 3, blockTable: table, key: &key, value: &value)
        #expect(key == (0..<8).map { Float(30 + $0) })
        #expect(value == key.map { -$0 })
    }

    @Test func float16CacheStoresHalvesAndReadsThemBack() throws {
        let layout = KVCacheLayout(layers: 2, kvHeads: 2, headDim: 4, blockSize: 4, numBlocks: 3, dataType: .float16)
        #expect(layout.bytesPerLayerBlock == 2 * 2 * 4 * 4 * 2)
        let cache = try KVCache(layout: layout)
        let table: [Int32] = [1, 2]
        // 0.1 is not a half: it reads back rounded to nearest (0.0999755859375).
        let key: [Float] = [0, 1.5, -2, 65504, 0.1, -0.25, 1e-6, 3]
        let value = key.map { -$0 }
        cache.write(layer: 1, position: 6, blockTable: table, key: key, value: value)
        var readKey = [Float](repeating: 0, count: 8), readValue = readKey
        cache.read(layer: 1, position: 6, blockTable: table, key: &readKey, value: &readValue)
        let expected: [Float] = [0, 1.5, -2, 65504, 0.0999755859375, -0.25, Float(Float16(1e-6)), 3]
        #expect(readKey == expected)
        #expect(readValue == expected.map { -$0 })
        // Position 6 is block table[1] = 2, slot 2; head 0, dimension 1 is key[1] = 1.5 (0x3E00).
        let block = cache.blockBytes(layer: 1, block: 2).bindMemory(to: UInt16.self)
        #expect(block.count == 2 * 2 * 4 * 4)
        #expect(block[1 * 4 + 2] == 0x3E00)
    }

    @Test func badLayoutsAreErrors() {
        #expect(throws: EngineError.invalidCacheLayout("block size 0 is outside 1...256")) {
            try KVCache(layout: KVCacheLayout(layers: 1, kvHeads: 1, headDim: 4, blockSize: 0, numBlocks: 1))
        }
    }
}
