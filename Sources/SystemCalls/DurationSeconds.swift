extension Duration {
    /// The duration in seconds, fractions included (for display and for APIs that take a Double).
    public var inSeconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
