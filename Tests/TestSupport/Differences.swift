/// How two sequences differ, in one line whatever their length: nil when they have the same
/// count and every pair is `same`; otherwise both counts, how many positions differ, and the
/// first differing index with both values. A failing comparison of big arrays (logits,
/// vocabularies) reports this, never the arrays themselves.
public func difference<Actual: Collection, Expected: Collection>(
    _ actual: Actual, _ expected: Expected, same: (Actual.Element, Expected.Element) -> Bool
) -> String? {
    var differing = 0
    var first: (index: Int, actual: Actual.Element, expected: Expected.Element)?
    for (index, pair) in zip(actual, expected).enumerated() where !same(pair.0, pair.1) {
        differing += 1
        if first == nil { first = (index, pair.0, pair.1) }
    }
    guard differing > 0 || actual.count != expected.count else { return nil }
    var summary = "\(actual.count) values against \(expected.count) expected; \(differing) of the first \(min(actual.count, expected.count)) differ"
    if let first { summary += ", first at index \(first.index): \(first.actual) against \(first.expected)" }
    return summary
}

public func difference<Values: Collection>(_ actual: Values, _ expected: Values) -> String? where Values.Element: Equatable {
    difference(actual, expected, same: ==)
}

/// Floats compared bit for bit (0 and -0 differ, a NaN equals the same NaN), as batch
/// invariance promises.
public func bitwiseDifference<Values: Collection>(_ actual: Values, _ expected: Values) -> String?
    where Values.Element: BinaryFloatingPoint {
    difference(actual, expected) {
        $0.sign == $1.sign && $0.exponentBitPattern == $1.exponentBitPattern
            && $0.significandBitPattern == $1.significandBitPattern
    }
}
