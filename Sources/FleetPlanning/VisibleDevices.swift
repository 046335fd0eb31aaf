/// `CUDA_VISIBLE_DEVICES` as the user wrote it: device indices, `GPU-<uuid>` or `MIG-<id>`.
enum VisibleDevices {
    enum Form: String {
        case index = "device indices"
        case gpuUUID = "GPU- UUIDs"
        case migID = "MIG- ids"
    }

    /// The entries, checked: none empty, no duplicates, one form only.
    static func parse(_ value: String) throws(PlanningError) -> [String] {
        if value.trimmingWhitespace().isEmpty {
            throw PlanningError("CUDA_VISIBLE_DEVICES is set but empty: no device is visible (unset it for CPU mode or GPU discovery)")
        }
        let entries = value.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingWhitespace() }
        var seen = Set<String>()
        var firstForm: (form: Form, entry: String)?
        for entry in entries {
            if entry.isEmpty {
                throw PlanningError("CUDA_VISIBLE_DEVICES has an empty entry: '\(value)'")
            }
            guard let form = form(of: entry) else {
                throw PlanningError("CUDA_VISIBLE_DEVICES entry '\(entry)' is not a device index, GPU-<uuid> or MIG-<id>")
            }
            if let firstForm, firstForm.form != form {
                throw PlanningError("CUDA_VISIBLE_DEVICES mixes \(firstForm.form.rawValue) and \(form.rawValue) ('\(firstForm.entry)', '\(entry)'); use one form")
            }
            if firstForm == nil { firstForm = (form, entry) }
            guard seen.insert(entry).inserted else {
                throw PlanningError("CUDA_VISIBLE_DEVICES lists device '\(entry)' twice")
            }
        }
        return entries
    }

    static func form(of entry: String) -> Form? {
        if !entry.isEmpty, entry.allSatisfy({ $0.isASCII && $0.isNumber }) { return .index }
        if entry.hasPrefix("GPU-"), entry.count > 4 { return .gpuUUID }
        if entry.hasPrefix("MIG-"), entry.count > 4 { return .migID }
        return nil
    }
}
