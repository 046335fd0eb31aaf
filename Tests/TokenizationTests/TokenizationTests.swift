import Testing
import Tokenization

@Test func tokenizationBuilds() {}
