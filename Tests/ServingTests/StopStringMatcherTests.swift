import Testing
import Serving

@Suite struct StopStringMatcherTests {
    /// Feeds `pieces` and returns everything emitted, and the stop string that matched.
    func run(_ stops: [String], _ pieces: [String]) -> (text: String, emitted: [String], matched: String?) {
        var matcher = StopStringMatcher(stops)
        var emitted: [String] = []
        for piece in pieces { emitted.append(matcher.append(piece)) }
        emitted.append(matcher.finish())
        return (emitted.joined(), emitted, matcher.matched)
    }

    @Test func aStopStringSplitAcrossPiecesIsCutAndNeverEmitted() {
        let result = run(["</end>"], ["Hello </", "en", "d> world"])
        #expect(result.text == "Hello ")
        #expect(result.matched == "</end>")
        #expect(result.emitted == ["Hello ", "", "", ""])
    }

    @Test func aFalseStartIsReleasedOnceDecided() {
        let result = run(["STOP"], ["go ST", "ART now"])
        #expect(result.emitted == ["go ", "START now", ""])
        #expect(result.matched == nil)
    }

    @Test func heldTextIsReleasedAtTheEnd() {
        let result = run(["abc"], ["xxab"])
        #expect(result.emitted == ["xx", "ab"])
    }

    @Test func theEarliestOfSeveralStopsWins() {
        let result = run(["world", "lo w"], ["hello world"])
        #expect(result.text == "hel")
        #expect(result.matched == "lo w")
    }

    @Test func multibyteTextIsCutOnCharacterBoundaries() {
        let result = run(["日本"], ["こんにちは日", "本語"])
        #expect(result.text == "こんにちは")
        let partial = run(["éx"], ["café", " ok"])
        #expect(partial.emitted == ["caf", "é ok", ""])
    }

    @Test func noStopsPassEverythingThrough() {
        #expect(run([], ["a", "b"]).emitted == ["a", "b", ""])
    }
}
