import ArgumentParser
import Engine

extension CPUKernelPath: ExpressibleByArgument {}

/// `--cpu-kernels auto|avx512|avx2|portable`, defaulting to `$TANDEM_CPU_KERNELS`, else auto.
public struct CPUKernelsOption: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "Kernel path: auto (the fastest this CPU runs), avx512, avx2 or portable. Default: $TANDEM_CPU_KERNELS, else auto.",
        valueName: "path"))
    public var cpuKernels: CPUKernelPath?

    public init() {}

    /// Selects the path before the engine starts; throws when this CPU cannot run it.
    public func apply() throws {
        if let cpuKernels { try CPUKernels.select(cpuKernels) } else { try CPUKernels.selectFromEnvironment() }
    }
}
