import CKernels

/// Fills the cos/sin tables of `positions` (see `tk_rope_table`).
func computeRopeTables(positions: [Int32], headDim: Int, base: Float, freqScale: Float,
                       factors: [Float]?, cos: inout [Float], sin: inout [Float]) {
    if let factors {
        tk_rope_table(positions, Int32(positions.count), Int32(headDim), base, freqScale, factors, &cos, &sin)
    } else {
        tk_rope_table(positions, Int32(positions.count), Int32(headDim), base, freqScale, nil, &cos, &sin)
    }
}
