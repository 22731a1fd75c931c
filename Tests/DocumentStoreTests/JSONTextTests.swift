import DocumentStore
import Foundation
import Testing

@Suite("JSON text reading and writing")
struct JSONTextTests {
    static func randomValue(_ rng: inout SplitMix64, depth: Int = 0) -> JSONValue {
        switch Int.random(in: 0..<(depth > 3 ? 4 : 6), using: &rng) {
        case 0: return .null
        case 1: return .bool(Bool.random(using: &rng))
        case 2:
            return Bool.random(using: &rng)
                ? .number(Double(Int.random(in: -1_000_000...1_000_000, using: &rng)))
                : .number(Double.random(in: -1e6...1e6, using: &rng))
        case 3:
            let alphabet = Array("aZ09 \"\\/\n\t\u{01}é€😀")
            return .string(String((0..<Int.random(in: 0...12, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! }))
        case 4: return .array((0..<Int.random(in: 0...4, using: &rng)).map { _ in randomValue(&rng, depth: depth + 1) })
        default:
            var fields: [String: JSONValue] = [:]
            for index in 0..<Int.random(in: 0...4, using: &rng) { fields["k\(index)\(Bool.random(using: &rng) ? "é" : "")"] = randomValue(&rng, depth: depth + 1) }
            return .object(JSONObject(fields))
        }
    }

    @Test(arguments: 0..<5)
    func writtenTextParsesBackAndAgreesWithFoundation(seed: UInt64) throws {
        var rng = SplitMix64(state: seed + 99)
        for _ in 0..<300 {
            let value = Self.randomValue(&rng)
            let text = value.jsonText
            #expect(try JSONValue(jsonText: text) == value, "\(text)")
            // Foundation reads the same text to the same value.
            let foundation = try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
            #expect(foundation == value, "\(text)")
        }
    }

    @Test func readsWhatOtherWritersWrite() throws {
        let text = #" { "a" : [1, -2.5e3, 0.125, true, false, null], "b\u00e9" : "line\nbreak \"quoted\" \/ \ud83d\ude00", "c": {} , "d": [] } "#
        let value = try JSONValue(jsonText: text)
        #expect(value == ["a": [1, -2500, 0.125, true, false, nil], "bé": "line\nbreak \"quoted\" / 😀", "c": [:], "d": []])
        #expect(try JSONValue(jsonText: "12345678901234567890").doubleValue == 12345678901234567890)
    }

    @Test(arguments: [
        "", "{", "[1,]", "{\"a\":1,}", "{'a':1}", "01", "1.", "-", "tru", "nul", "\"\u{01}\"", "\"\\x\"", "\"\\ud800\"",
        "[1] 2", "{\"a\" 1}", "1e", "NaN", "Infinity", "1e999",
    ])
    func rejectsInvalidText(text: String) {
        #expect(throws: DocumentStoreError.self) { try JSONValue(jsonText: text) }
    }

    @Test func objectsAreKeptSortedAndTheLaterOfDuplicateKeysWins() throws {
        let value = try JSONValue(jsonText: #"{"b":1,"a":2,"b":3,"c":{"z":1,"y":2},"a":4,"d":[]}"#)
        #expect(value.jsonText == #"{"a":4,"b":3,"c":{"y":2,"z":1},"d":[]}"#)
        #expect(value["a"] == 4 && value["c"]?["y"] == 2)
        #expect(try JSONValue(jsonText: #"{"k9":0,"k1":1,"k5":5,"k3":3,"k7":7,"k2":2,"k8":8,"k4":4,"k6":6,"k0":0}"#).objectValue?.keys == (0...9).map { "k\($0)" })
    }

    @Test(arguments: 0..<4)
    func decimalsReadExactlyAsSwiftReadsThem(seed: UInt64) throws {
        var rng = SplitMix64(state: seed + 7)
        for _ in 0..<5_000 {
            let integer = Int.random(in: 0...999_999, using: &rng), fraction = Int.random(in: 0...99_999_999, using: &rng)
            var text = "\(Bool.random(using: &rng) ? "-" : "")\(integer).\(String(repeating: "0", count: Int.random(in: 0...3, using: &rng)))\(fraction)"
            if Bool.random(using: &rng) { text += "e\(Int.random(in: -30...30, using: &rng))" }
            let parsed = try JSONValue(jsonText: text).doubleValue
            #expect(parsed == Double(text), "\(text)")
        }
        for text in ["52.520008", "13.404954", "0.1", "1e22", "1e23", "9007199254740993.0", "123456789012345.6", "0.000000000000000000000001", "-0.0", "2.2250738585072014e-308"] {
            #expect(try JSONValue(jsonText: text).doubleValue == Double(text), "\(text)")
        }
    }

    @Test func refusesNestingDeepEnoughToHurt() {
        let deep = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        #expect(throws: DocumentStoreError.self) { try JSONValue(jsonText: deep) }
        let fine = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        #expect((try? JSONValue(jsonText: fine)) != nil)
    }
}

@Suite("Decoding from JSONValue")
struct JSONValueDecodingTests {
    struct Payload: Codable, Equatable {
        struct Point: Codable, Equatable { var lat: Double; var lon: Double }
        var id: String
        var count: Int
        var ratio: Double
        var flag: Bool
        var tags: [String]
        var point: Point?
        var note: String?
    }

    @Test func decodesLikeJSONDecoder() throws {
        let text = #"{"id":"t1","count":3,"ratio":0.5,"flag":true,"tags":["a","b"],"point":{"lat":52.5,"lon":13.4},"note":null}"#
        let ours = try JSONValue.decode(Payload.self, fromJSON: text)
        let foundation = try JSONDecoder().decode(Payload.self, from: Data(text.utf8))
        #expect(ours == foundation)
        #expect(ours.note == nil && ours.point?.lon == 13.4)
    }

    @Test func reportsMissingAndMistypedFields() {
        #expect {
            try JSONValue.decode(Payload.self, fromJSON: #"{"id":"t1"}"#)
        } throws: { error in
            if case DecodingError.keyNotFound(let key, _) = error { return key.stringValue == "count" }
            return false
        }
        #expect {
            try JSONValue.decode(Payload.self, fromJSON: #"{"id":"t1","count":2.5,"ratio":1,"flag":true,"tags":[]}"#)
        } throws: { error in
            if case DecodingError.typeMismatch(_, let context) = error { return context.codingPath.map(\.stringValue) == ["count"] }
            return false
        }
    }
}
