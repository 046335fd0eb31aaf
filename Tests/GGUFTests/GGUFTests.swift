import Testing
import GGUF

@Test func ggufBuilds() {}
