import Crypto
import Foundation
import Redis
import Streams

/// Tracking devices, found by the id a tracking app sends.
///
/// OsmAnd/Traccar Client and OwnTracks send no token, only a device id (or an OwnTracks user
/// and device name with a password), so the device is the credential and it names the tenant.
/// Device ids are therefore unique across the deployment: `fieldops:device:{id}` holds the
/// device's tenant, worker and state; `fieldops:owntracks:{user}/{device}` points to the id.
struct DeviceRegistry: Sendable {
    struct Entry: Codable, Sendable, Hashable {
        var tenant: String
        var deviceId: String
        var workerId: String
        var `protocol`: String
        var active: Bool
        /// OwnTracks user and device names.
        var user: String?
        var device: String?
        /// `sha256:SALT:HEX` of the device secret; the secret itself is never stored.
        var secretHash: String?
    }

    let writer: EventWriter

    static func deviceKey(_ id: String) -> String { "fieldops:device:" + id }
    static func ownTracksKey(user: String, device: String) -> String { "fieldops:owntracks:\(user)/\(device)" }

    /// Claims the id (and the OwnTracks names) for `entry`; false when another device holds either.
    func claim(_ entry: Entry) async throws -> Bool {
        let text = JSONCoding.text(entry)
        let ownTracks = entry.user.flatMap { user in entry.device.map { Self.ownTracksKey(user: user, device: $0) } }
        return try await writer.call { connection in
            guard try connection.command("SET", Self.deviceKey(entry.deviceId), text, "NX").unwrapped().string == "OK" else { return false }
            if let ownTracks, try connection.command("SET", ownTracks, entry.deviceId, "NX").unwrapped().string != "OK" {
                _ = try connection.command("DEL", Self.deviceKey(entry.deviceId))
                return false
            }
            return true
        }
    }

    /// Gives the id back, after a registration whose event could not be written.
    func release(_ entry: Entry) async {
        let ownTracks = entry.user.flatMap { user in entry.device.map { Self.ownTracksKey(user: user, device: $0) } }
        _ = try? await writer.call { connection in
            _ = try connection.command("DEL", Self.deviceKey(entry.deviceId))
            if let ownTracks { _ = try connection.command("DEL", ownTracks) }
        }
    }

    func entry(deviceID: String) async throws -> Entry? {
        let text = try await writer.call { try $0.command("GET", Self.deviceKey(deviceID)).unwrapped().string }
        return text.flatMap { try? JSONDecoder().decode(Entry.self, from: Data($0.utf8)) }
    }

    func entry(ownTracksUser user: String, device: String) async throws -> Entry? {
        guard let id = try await writer.call({ try $0.command("GET", Self.ownTracksKey(user: user, device: device)).unwrapped().string }) else { return nil }
        return try await entry(deviceID: id)
    }

    func save(_ entry: Entry) async throws {
        let text = JSONCoding.text(entry)
        _ = try await writer.call { try $0.command("SET", Self.deviceKey(entry.deviceId), text) }
    }


    // MARK: - Secrets

    static func hash(secret: String) -> String {
        var generator = SystemRandomNumberGenerator()
        let salt = (0..<16).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
        return "sha256:\(salt):" + digest(salt: salt, secret: secret)
    }

    static func verify(secret: String, against stored: String) -> Bool {
        let parts = stored.split(separator: ":")
        guard parts.count == 3, parts[0] == "sha256" else { return false }
        let expected = Array(parts[2].utf8)
        let actual = Array(digest(salt: String(parts[1]), secret: secret).utf8)
        // Constant time: every byte is compared whatever the first mismatch.
        guard expected.count == actual.count else { return false }
        return zip(expected, actual).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
    }

    private static func digest(salt: String, secret: String) -> String {
        SHA256.hash(data: Data((salt + ":" + secret).utf8)).map { String(format: "%02x", $0) }.joined()
    }
}
