import ArgumentParser
import Engine
import Foundation
import KVTransfer
import PDProtocol
#if canImport(Glibc)
import Glibc
#endif

/// `tandem bench kv-transfer`: how fast a prompt's KV moves from a prefill engine to a decode
/// engine (both in this process, over the real transfer code and loopback sockets), over ipc
/// and tcp, against a plain memcpy of the same bytes and a plain loopback socket copy.
struct BenchKVTransferCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kv-transfer",
        abstract: "Measure PD KV transfer bandwidth (ipc, tcp) against memcpy and a loopback socket copy.")

    @OptionGroup var model: ModelOption

    @Option(help: "Prompt length whose KV is moved.")
    var promptTokens = 2048

    @Option(help: "Element type of the KV cache: float32 or float16.")
    var kvCacheDtype = "float32"

    @Option(help: "Repetitions of each test; the best and the median are reported.")
    var repetitions = 5

    @Flag(help: "Print one JSON line instead of a table.")
    var json = false

    func validate() throws {
        guard promptTokens >= 1 else { throw ValidationError("--prompt-tokens must be at least 1") }
        guard repetitions >= 1 else { throw ValidationError("--repetitions must be at least 1") }
        guard KVCacheLayout.DataType(rawValue: kvCacheDtype) != nil else {
            throw ValidationError("--kv-cache-dtype must be float32 or float16")
        }
    }

    func run() throws {
        let path = try model.resolvedPath()
        let weights = try loadModel(path)
        var configuration = ServingConfiguration()
        configuration.kvCacheDataType = KVCacheLayout.DataType(rawValue: kvCacheDtype)!
        configuration.numBlocksOverride = promptTokens / configuration.blockSize + 2
        configuration.enablePrefixCaching = false
        configuration.sharedKVCache = true
        let decode = try ServingEngine(weights: weights, configuration: configuration)
        configuration.sharedKVCache = false
        let prefill = try ServingEngine(weights: weights, configuration: configuration)
        defer { prefill.shutdown(); decode.shutdown() }
        let layout = ModelFingerprint.layout(engine: decode, modelPath: path)
        let receiver = KVReceiver(engine: decode, layout: layout, protocols: [.ipc, .tcp], timeout: .seconds(120))
        let (pdFD, pdPort) = try loopbackListener()
        let (cacheFD, cachePort) = try loopbackListener()
        receiver.serve(listeningDescriptor: pdFD, name: "pd-comm")
        receiver.serve(listeningDescriptor: cacheFD, name: "cache-queue")
        let endpoint = PeerEndpoint(host: "127.0.0.1", port: 1, pdCommPort: pdPort, cacheQueuePort: cachePort)

        let cacheLayout = decode.cacheLayout
        let blocks = cacheLayout.blocksNeeded(forTokens: promptTokens)
        // Real data in P's blocks (untouched pages would read as the shared zero page).
        for layer in 0..<cacheLayout.layers {
            for block in 0..<blocks {
                let bytes = UnsafeMutableRawBufferPointer(mutating: prefill.exportSource(layer: layer, block: Int32(block)))
                for i in stride(from: 0, to: bytes.count, by: 64) { bytes[i] = UInt8(truncatingIfNeeded: i ^ block ^ layer) }
            }
        }
        let bytes = blocks * cacheLayout.layers * cacheLayout.bytesPerLayerBlock

        var results: [(String, [Double])] = []
        results.append(("memcpy", try measure { memcpySeconds(bytes) }))
        results.append(("loopback socket", try measure { try loopbackCopySeconds(bytes) }))
        for transfer in [TransferProtocol.ipc, .tcp] {
            var serial = 0
            results.append((transfer.rawValue + " transfer", try measure {
                serial += 1
                return try transferSeconds(prefill: prefill, decode: decode, receiver: receiver, endpoint: endpoint,
                                           layout: layout, transfer: transfer, id: "bench-\(transfer.rawValue)-\(serial)")
            }))
        }
        let best = results.map { ($0.0, $0.1.min()!, $0.1.sorted()[$0.1.count / 2]) }
        let gbps = { (seconds: Double) in Double(bytes) / seconds / 1e9 }
        let memcpyBest = gbps(best[0].1), loopbackBest = gbps(best[1].1)
        if json {
            var fields = ["\"bytes\": \(bytes)", "\"prompt_tokens\": \(promptTokens)", "\"kv_cache_dtype\": \(jsonString(kvCacheDtype))"]
            for (name, minimum, median) in best {
                let key = name.replacingOccurrences(of: " ", with: "_")
                fields.append("\"\(key)_gbps\": \(String(format: "%.3f", gbps(minimum)))")
                fields.append("\"\(key)_gbps_median\": \(String(format: "%.3f", gbps(median)))")
            }
            fields.append("\"ipc_vs_memcpy\": \(String(format: "%.3f", gbps(best[2].1) / memcpyBest))")
            fields.append("\"tcp_vs_loopback\": \(String(format: "%.3f", gbps(best[3].1) / loopbackBest))")
            print("{" + fields.joined(separator: ", ") + "}")
        } else {
            print("KV of \(promptTokens) tokens, \(kvCacheDtype): \(bytes) bytes (\(blocks) blocks × \(cacheLayout.layers) layers)")
            print("| copy | best GB/s | median GB/s | vs reference |")
            print("| --- | ---: | ---: | ---: |")
            for (index, (name, minimum, median)) in best.enumerated() {
                let reference = index == 2 ? String(format: "%.2f × memcpy", gbps(minimum) / memcpyBest)
                    : index == 3 ? String(format: "%.2f × loopback", gbps(minimum) / loopbackBest) : ""
                print("| \(name) | \(String(format: "%.2f", gbps(minimum))) | \(String(format: "%.2f", gbps(median))) | \(reference) |")
            }
        }
    }

    private func measure(_ body: () throws -> Double) throws -> [Double] {
        _ = try body()  // warm-up: first touches of pages and connections
        return try (0..<repetitions).map { _ in try body() }
    }

    /// One PD transfer of the whole prompt: reservation, every layer's blocks, acks, first token.
    private func transferSeconds(prefill: ServingEngine, decode: ServingEngine, receiver: KVReceiver, endpoint: PeerEndpoint,
                                 layout: KVLayoutDescription, transfer: TransferProtocol, id: String) throws -> Double {
        let tokens = (0..<promptTokens).map { Int32(300 + $0 % 20000) }
        let request = GenerationRequest(id: id, promptTokens: tokens, maxTokens: 1)
        let (stream, reservation) = try decode.reserveImport(request, timeout: .seconds(120))
        receiver.expect(reservation, promptTokens: tokens)
        defer { receiver.forget(reservation) }
        _ = stream
        let start = ContinuousClock.now
        let hello = PDHello(requestID: id, layout: layout, promptTokens: tokens.count, promptHash: PDHello.hash(tokens: tokens),
                            transferProtocol: transfer)
        do {
            // In a scope of its own: the sender's connections close when it goes, and over ipc
            // D frees the blocks only then.
            let sender = try KVSender(engine: prefill, hello: hello, decode: endpoint, timeout: .seconds(120))
            let ids = (0..<Int32(sender.reservation.promptBlocks)).map { $0 }
            sender.prefillStarting()
            for layer in 0..<layout.layers { sender.layerReady(layer, firstBlockIndex: 0, blocks: ids) }
            _ = try sender.finish(firstToken: PDFirstToken(requestID: id, token: 300, logprob: nil, topLogprobs: []))
        }
        let seconds = (ContinuousClock.now - start).inSeconds
        while decode.load().kvBlocksFree != decode.load().kvBlocksTotal { usleep(1000) }
        return seconds
    }

    private func memcpySeconds(_ bytes: Int) -> Double {
        let source = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        let destination = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        defer { source.deallocate(); destination.deallocate() }
        memset(source, 1, bytes)
        memset(destination, 2, bytes)
        let start = ContinuousClock.now
        memcpy(destination, source, bytes)
        return (ContinuousClock.now - start).inSeconds
    }

    /// `bytes` through a loopback TCP connection, sent in 1 MiB writes, received into one buffer.
    private func loopbackCopySeconds(_ bytes: Int) throws -> Double {
        let (listener, port) = try loopbackListener()
        defer { close(listener) }
        let destination = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        defer { destination.deallocate() }
        memset(destination, 2, bytes)
        let chunk = 1 << 20
        let source = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        defer { source.deallocate() }
        memset(source, 1, bytes)
        let sourceAddress = Int(bitPattern: source)
        let start = ContinuousClock.now
        let sender = Thread {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            _ = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            var offset = 0
            let base = UnsafeRawPointer(bitPattern: sourceAddress)!
            while offset < bytes {
                let n = send(fd, base + offset, min(chunk, bytes - offset), Int32(MSG_NOSIGNAL))
                if n <= 0 { break }
                offset += n
            }
            close(fd)
        }
        sender.start()
        let fd = accept(listener, nil, nil)
        defer { close(fd) }
        var offset = 0
        while offset < bytes {
            let n = recv(fd, destination + offset, bytes - offset, 0)
            guard n > 0 else { throw ToolboxError("the loopback copy stopped after \(offset) bytes") }
            offset += n
        }
        return (ContinuousClock.now - start).inSeconds
    }

    private func loopbackListener() throws -> (Int32, Int) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer -> Bool in
                bind(fd, pointer, length) == 0 && listen(fd, 16) == 0 && getsockname(fd, pointer, &length) == 0
            }
        }
        guard fd >= 0, bound else { throw ToolboxError("cannot listen on loopback: \(String(cString: strerror(errno)))") }
        return (fd, Int(UInt16(bigEndian: address.sin_port)))
    }
}
