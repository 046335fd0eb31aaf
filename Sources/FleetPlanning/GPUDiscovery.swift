/// One NVIDIA GPU of the host, in PCI bus order (nvidia-smi's index order).
public struct GPUDevice: Equatable, Sendable {
    public var index: Int
    public var uuid: String?
    /// sysfs form: `0000:3b:00.0`.
    public var pciBusID: String

    public init(index: Int, uuid: String?, pciBusID: String) {
        self.index = index
        self.uuid = uuid
        self.pciBusID = pciBusID
    }
}

enum GPUDiscovery {
    /// The host's NVIDIA GPUs: from nvidia-smi when it answers, else from sysfs PCI devices
    /// (vendor 0x10de, display class 0x03xxxx).
    static func discover(_ system: HostSystem) -> [GPUDevice] {
        if let output = system.queryGPUs() {
            let gpus = parseNvidiaSMI(output)
            if !gpus.isEmpty { return gpus }
        }
        let devices = "sys/bus/pci/devices"
        let busIDs = system.listDirectory(devices).filter { busID in
            system.readTrimmed("\(devices)/\(busID)/vendor")?.lowercased() == "0x10de"
                && system.readTrimmed("\(devices)/\(busID)/class")?.lowercased().hasPrefix("0x03") == true
        }
        return busIDs.enumerated().map { GPUDevice(index: $0.offset, uuid: nil, pciBusID: $0.element.lowercased()) }
    }

    /// Lines like `0, GPU-5f3c…, 00000000:3B:00.0`.
    static func parseNvidiaSMI(_ output: String) -> [GPUDevice] {
        output.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: ",").map { $0.trimmingWhitespace() }
            guard fields.count == 3, let index = Int(fields[0]) else { return nil }
            return GPUDevice(index: index, uuid: fields[1], pciBusID: sysfsBusID(fields[2]))
        }
    }

    /// nvidia-smi writes an 8-digit PCI domain in capitals; sysfs a 4-digit one in lower case.
    static func sysfsBusID(_ busID: String) -> String {
        let lower = busID.lowercased()
        guard let colon = lower.firstIndex(of: ":") else { return lower }
        let domain = lower[..<colon]
        return String(domain.suffix(4)) + lower[colon...]
    }

    /// The PCI bus id behind a `CUDA_VISIBLE_DEVICES` entry, when it can be known: indices
    /// count in PCI bus order (as nvidia-smi does; CUDA does too with
    /// CUDA_DEVICE_ORDER=PCI_BUS_ID), `GPU-` UUIDs are matched through nvidia-smi.
    /// MIG instances have no bus id of their own here: nil.
    static func busID(of entry: String, among gpus: [GPUDevice]) -> String? {
        switch VisibleDevices.form(of: entry) {
        case .index: return gpus.first { $0.index == Int(entry) }?.pciBusID
        case .gpuUUID: return gpus.first { $0.uuid == entry }?.pciBusID
        case .migID, nil: return nil
        }
    }
}
