/// Everything the engine can reject, each with a message that names what is wrong.
public enum EngineError: Error, Equatable, CustomStringConvertible, Sendable {
    case unsupportedArchitecture(String)
    case missingMetadata(String)
    case invalidMetadata(key: String, reason: String)
    case missingTensor(String)
    case tensorShapeMismatch(name: String, expected: [Int], found: [Int])
    case unsupportedTensorType(name: String, type: String)
    case invalidCacheLayout(String)
    case invalidBatch(String)
    case kernelFailed(String)
    case cpuKernels(String)
    case invalidServingConfiguration(String)

    public var description: String {
        switch self {
        case .unsupportedArchitecture(let name):
            return "unsupported model architecture '\(name)' (supported: \(ModelArchitecture.allCases.map(\.rawValue).joined(separator: ", ")))"
        case .missingMetadata(let key):
            return "model metadata is missing '\(key)'"
        case .invalidMetadata(let key, let reason):
            return "model metadata '\(key)' is invalid: \(reason)"
        case .missingTensor(let name):
            return "model is missing tensor '\(name)'"
        case .tensorShapeMismatch(let name, let expected, let found):
            return "tensor '\(name)' has shape \(found), expected \(expected)"
        case .unsupportedTensorType(let name, let type):
            return "tensor '\(name)' has type \(type), which the engine cannot use there"
        case .invalidCacheLayout(let reason):
            return "invalid KV cache layout: \(reason)"
        case .invalidBatch(let reason):
            return "invalid forward batch: \(reason)"
        case .kernelFailed(let reason):
            return "compute kernel failed: \(reason)"
        case .cpuKernels(let reason):
            return reason
        case .invalidServingConfiguration(let reason):
            return "invalid serving configuration: \(reason)"
        }
    }
}
