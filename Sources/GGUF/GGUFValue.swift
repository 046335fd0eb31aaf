/// The type tag of a metadata value, numbered as in the GGUF specification.
public enum GGUFValueType: UInt32, Sendable, CaseIterable, CustomStringConvertible {
    case uint8 = 0, int8 = 1, uint16 = 2, int16 = 3, uint32 = 4, int32 = 5, float32 = 6
    case bool = 7, string = 8, array = 9, uint64 = 10, int64 = 11, float64 = 12

    public var description: String {
        switch self {
        case .uint8: "uint8"
        case .int8: "int8"
        case .uint16: "uint16"
        case .int16: "int16"
        case .uint32: "uint32"
        case .int32: "int32"
        case .float32: "float32"
        case .bool: "bool"
        case .string: "string"
        case .array: "array"
        case .uint64: "uint64"
        case .int64: "int64"
        case .float64: "float64"
        }
    }
}

/// One metadata value. Arrays hold values of one type (the file stores one type tag per
/// array); nested arrays are arrays of `.array` values.
public enum GGUFValue: Sendable, Equatable, CustomStringConvertible {
    case uint8(UInt8)
    case int8(Int8)
    case uint16(UInt16)
    case int16(Int16)
    case uint32(UInt32)
    case int32(Int32)
    case float32(Float)
    case bool(Bool)
    case string(String)
    case array([GGUFValue])
    case uint64(UInt64)
    case int64(Int64)
    case float64(Double)

    public var type: GGUFValueType {
        switch self {
        case .uint8: .uint8
        case .int8: .int8
        case .uint16: .uint16
        case .int16: .int16
        case .uint32: .uint32
        case .int32: .int32
        case .float32: .float32
        case .bool: .bool
        case .string: .string
        case .array: .array
        case .uint64: .uint64
        case .int64: .int64
        case .float64: .float64
        }
    }

    /// The value of any integer type, when it fits in `Int`.
    public var intValue: Int? {
        switch self {
        case .uint8(let v): Int(v)
        case .int8(let v): Int(v)
        case .uint16(let v): Int(v)
        case .int16(let v): Int(v)
        case .uint32(let v): Int(v)
        case .int32(let v): Int(v)
        case .uint64(let v): Int(exactly: v)
        case .int64(let v): Int(v)
        default: nil
        }
    }

    /// The value of any integer type, when it is not negative.
    public var uintValue: UInt64? {
        switch self {
        case .uint64(let v): v
        default: intValue.flatMap { UInt64(exactly: $0) }
        }
    }

    /// The value of a float type, or of an integer type converted.
    public var doubleValue: Double? {
        switch self {
        case .float32(let v): Double(v)
        case .float64(let v): v
        case .uint64(let v): Double(v)
        default: intValue.map(Double.init)
        }
    }

    /// The value of a float type, or of an integer type converted.
    public var floatValue: Float? { doubleValue.map(Float.init) }

    public var boolValue: Bool? {
        if case .bool(let v) = self { v } else { nil }
    }

    public var stringValue: String? {
        if case .string(let v) = self { v } else { nil }
    }

    public var arrayValue: [GGUFValue]? {
        if case .array(let v) = self { v } else { nil }
    }

    /// An array whose every element is a string.
    public var stringArray: [String]? {
        guard let array = arrayValue else { return nil }
        var result: [String] = []
        result.reserveCapacity(array.count)
        for element in array {
            guard let s = element.stringValue else { return nil }
            result.append(s)
        }
        return result
    }

    /// An array whose every element is a number (float or integer).
    public var floatArray: [Float]? {
        guard let array = arrayValue else { return nil }
        var result: [Float] = []
        result.reserveCapacity(array.count)
        for element in array {
            guard let f = element.floatValue else { return nil }
            result.append(f)
        }
        return result
    }

    /// An array whose every element is an integer that fits in `Int`.
    public var intArray: [Int]? {
        guard let array = arrayValue else { return nil }
        var result: [Int] = []
        result.reserveCapacity(array.count)
        for element in array {
            guard let i = element.intValue else { return nil }
            result.append(i)
        }
        return result
    }

    /// How the type reads in error messages: `uint32`, `array of string`.
    public var typeDescription: String {
        if case .array(let elements) = self, let first = elements.first {
            return "array of \(first.typeDescription)"
        }
        return type.description
    }

    public var description: String {
        switch self {
        case .uint8(let v): "\(v)"
        case .int8(let v): "\(v)"
        case .uint16(let v): "\(v)"
        case .int16(let v): "\(v)"
        case .uint32(let v): "\(v)"
        case .int32(let v): "\(v)"
        case .float32(let v): "\(v)"
        case .bool(let v): "\(v)"
        case .string(let v): "\"\(v)\""
        case .array(let v): v.count <= 8
            ? "[\(v.map(\.description).joined(separator: ", "))]"
            : "[\(v.prefix(8).map(\.description).joined(separator: ", ")), … (\(v.count) elements)]"
        case .uint64(let v): "\(v)"
        case .int64(let v): "\(v)"
        case .float64(let v): "\(v)"
        }
    }
}
