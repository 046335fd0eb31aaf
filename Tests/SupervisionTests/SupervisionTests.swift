import Testing
import Supervision

@Test func supervisionBuilds() {}
