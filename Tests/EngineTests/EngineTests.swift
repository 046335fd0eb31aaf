import Testing
import Engine

@Test func engineBuilds() {}
