/// A binary min-heap: the element that `precedes` all others comes out first.
/// Both BPE variants keep their merge candidates in one.
protocol HeapOrdered {
    func precedes(_ other: Self) -> Bool
}

struct MinHeap<Element: HeapOrdered> {
    private var entries: [Element] = []

    mutating func removeAll() { entries.removeAll(keepingCapacity: true) }

    mutating func push(_ element: Element) {
        entries.append(element)
        var child = entries.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard entries[child].precedes(entries[parent]) else { break }
            entries.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> Element? {
        guard let top = entries.first else { return nil }
        let last = entries.removeLast()
        if !entries.isEmpty {
            entries[0] = last
            var parent = 0
            while true {
                let l = 2 * parent + 1, r = l + 1
                var best = parent
                if l < entries.count && entries[l].precedes(entries[best]) { best = l }
                if r < entries.count && entries[r].precedes(entries[best]) { best = r }
                if best == parent { break }
                entries.swapAt(parent, best)
                parent = best
            }
        }
        return top
    }
}
