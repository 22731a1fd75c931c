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

    @Test func writesAndReadsWhatFoundationDoes() {
        // 10 000 instants from 1900 to 2200 (before 1970 included), stepping by a prime number of
        // milliseconds so every field (day, hour, millisecond, leap years) takes many values.
        let first: Int64 = -2_208_988_800_000, span: Int64 = 9_467_107_200_000
        for k: Int64 in 0..<10_000 {
            let milliseconds = first + (k * 946_713_600_127) % span
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
