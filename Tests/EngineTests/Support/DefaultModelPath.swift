import Engine
import ModelStore
import TestSupport

/// The default model's path; a test that needs it fails with the command that installs it
/// when it is missing.
func defaultModelPath() throws -> String { try requireModel(at: DefaultModel.path()) }
