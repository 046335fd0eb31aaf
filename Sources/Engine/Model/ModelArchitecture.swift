/// The model families the forward pass implements (GGUF `general.architecture`).
public enum ModelArchitecture: String, CaseIterable, Sendable {
    /// SmolLM2, Llama 2/3, Mistral.
    case llama
    /// Qwen2 / Qwen2.5: biases on Q, K and V.
    case qwen2

    /// How RoPE pairs the dimensions of a head. llama.cpp's converter permutes Llama's Q/K
    /// weights so that GGUF `llama` models use adjacent pairs; Qwen2 keeps the NEOX layout.
    public var ropeStyle: RopeStyle {
        switch self {
        case .llama: return .interleavedPairs
        case .qwen2: return .neoxHalves
        }
    }

    public var hasQKVBias: Bool { self == .qwen2 }
}

public enum RopeStyle: Sendable, Equatable {
    /// Dimensions (2i, 2i+1) rotate together.
    case interleavedPairs
    /// Dimensions (i, i + headDim/2) rotate together.
    case neoxHalves
}
