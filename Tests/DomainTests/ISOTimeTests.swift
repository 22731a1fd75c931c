import Domain
import Foundation
import Testing

@Suite("ISO 8601 times without a formatter")
struct ISOTimeTests {
    static func foundation(_ milliseconds: Int64) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: Date(timeIntervalSince1970: Double(milliseconds) / 1000))
    }

    @Test(arguments: [1, 2, 3, 4, 5])
    func writesAndReadsWhatFoundationDoes(seed: UInt64) {
        var generator = SeededGenerator(seed: seed)
        for _ in 0..<2_000 {
            // 1900 to 2200, negative (before 1970) included.
            let milliseconds = Int64.random(in: -2_208_988_800_000...7_258_118_400_000, using: &generator)
            let text = ISOTime.string(milliseconds: milliseconds)
            #expect(text == Self.foundation(milliseconds))
            #expect(ISOTime.milliseconds(text) == milliseconds)
        }
    }

    @Test func readsOffsetsFractionsAndLeapDays() {
        #expect(ISOTime.milliseconds("2026-11-22T14:02:00Z") == 1_795_356_120_000)
        #expect(ISOTime.milliseconds("2026-11-22T15:02:00+01:00") == 1_795_356_120_000)
        #expect(ISOTime.milliseconds("2026-11-22T09:02:00-0500") == 1_795_356_120_000)
        #expect(ISOTime.milliseconds("2026-11-22T14:02:00.5Z") == 1_795_356_120_500)
        #expect(ISOTime.milliseconds("2026-11-22T14:02:00.123456Z") == 1_795_356_120_123)
        #expect(ISOTime.milliseconds("2024-02-29T00:00:00Z") == 1_709_164_800_000)
        #expect(ISOTime.string(milliseconds: 1_709_164_800_000) == "2024-02-29T00:00:00.000Z")
        for bad in ["", "2026-11-22", "2026-13-01T00:00:00Z", "2026-11-22T25:00:00Z", "2026-11-22T14:02:00", "2026-11-22T14:02:00Zjunk", "yesterday"] {
            #expect(ISOTime.milliseconds(bad) == nil, "\(bad)")
        }
    }
}

/// SplitMix64: the same values for the same seed on every run.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
