@testable import FieldOpsCLI
import Foundation
import Logging
import Synchronization
import Testing

@Suite("JSON log lines")
struct JSONLogHandlerTests {
    @Test func eachEventIsOneJSONObjectWithItsMetadata() throws {
        let lines = Mutex<[Data]>([])
        var logger = Logger(label: "fieldops.test") { label in JSONLogHandler(label: label) { data in lines.withLock { $0.append(data) } } }
        logger[metadataKey: "node"] = "n-1"
        logger.warning("redis error; retrying", metadata: ["retry_in": "100 ms", "streams": ["a", "b"]])
        logger.debug("not at info level")
        let written = lines.withLock { $0 }
        #expect(written.count == 1)
        let line = try #require(written.first)
        #expect(line.last == 0x0A)
        let object = try #require(try JSONSerialization.jsonObject(with: line) as? [String: Any])
        #expect(object["level"] as? String == "warning")
        #expect(object["message"] as? String == "redis error; retrying")
        #expect(object["label"] as? String == "fieldops.test")
        #expect(object["node"] as? String == "n-1")
        #expect(object["retry_in"] as? String == "100 ms")
        #expect(object["streams"] as? [String] == ["a", "b"])
        #expect((object["time"] as? String)?.hasSuffix("Z") == true)
    }
}
