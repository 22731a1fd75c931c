import Crypto
import DocumentStore
import Domain
import Foundation
import Redis
import Streams

/// Outgoing webhooks of mobile-client backends, kept in Redis so every node's notifier sees them:
/// `tenant:{T}:webhooks` (hash: id → JSON), and `fieldops:webhook-tenants` (the tenants that
/// have any, for the notifier to discover).
struct WebhookRegistry: Sendable {
    struct Webhook: Codable, Sendable, Hashable {
        var webhookId: String
        var url: String
        /// Event types delivered; `*` for all of the watched streams.
        var eventTypes: [String]
        /// Signs each delivery (HMAC-SHA256); shown once, when the webhook is created.
        var secret: String
        var createdAt: Int64
        var createdBy: String

        func wants(_ eventType: String) -> Bool {
            eventTypes.contains("*") || eventTypes.contains(eventType)
        }

        /// The webhook as the API shows it: everything but the secret.
        var publicView: JSONValue {
            [
                "webhookId": .string(webhookId), "url": .string(url), "eventTypes": .array(eventTypes.map(JSONValue.string)),
                "createdAt": .number(Double(createdAt)), "createdBy": .string(createdBy),
            ]
        }
    }

    /// The streams the notifier delivers from (DESIGN.md §3).
    static let streams = [StreamNames.notifications, StreamNames.taskAssignments]
    static let group = "notifier"
    static let tenantsKey = "fieldops:webhook-tenants"

    let writer: EventWriter

    static func key(_ tenant: String) -> String { "tenant:{\(tenant)}:webhooks" }
    static func deliveredKey(_ tenant: String, webhookID: String, entryID: String) -> String {
        "tenant:{\(tenant)}:webhook-delivered:\(webhookID):\(entryID)"
    }

    /// Stores the webhook and makes sure the notifier's group reads new entries from now on.
    func add(_ webhook: Webhook, tenant: String) async throws {
        let text = JSONCoding.text(webhook)
        let keys = try StreamKeys(tenant: tenant)
        try await writer.call { connection in
            for stream in Self.streams {
                let reply = try connection.send(["XGROUP", "CREATE", keys.stream(stream), Self.group, "$", "MKSTREAM"])
                if case .error(let message) = reply, !message.hasPrefix("BUSYGROUP") { throw StreamError(.redis, message) }
            }
            _ = try connection.send(["HSET", Self.key(tenant), webhook.webhookId, text]).unwrapped()
            _ = try connection.send(["SADD", Self.tenantsKey, tenant]).unwrapped()
        }
    }

    func list(tenant: String) async throws -> [Webhook] {
        let values = try await writer.call { try $0.send(["HVALS", Self.key(tenant)]).unwrapped().array?.compactMap(\.string) ?? [] }
        return values.compactMap { try? JSONDecoder().decode(Webhook.self, from: Data($0.utf8)) }.sorted { $0.createdAt < $1.createdAt }
    }

    /// - Returns: false when there was no such webhook.
    func remove(_ webhookID: String, tenant: String) async throws -> Bool {
        try await writer.call { try $0.send(["HDEL", Self.key(tenant), webhookID]).unwrapped().int == 1 }
    }

    func tenants() async throws -> [String] {
        try await writer.call { try $0.send(["SMEMBERS", Self.tenantsKey]).unwrapped().array?.compactMap(\.string) ?? [] }
    }

    /// Whether this webhook already received this entry (a retry of the entry for another
    /// webhook must not deliver it twice here).
    func wasDelivered(_ webhook: Webhook, entryID: String, tenant: String) async throws -> Bool {
        try await writer.call { try $0.send(["EXISTS", Self.deliveredKey(tenant, webhookID: webhook.webhookId, entryID: entryID)]).unwrapped().int == 1 }
    }

    func markDelivered(_ webhook: Webhook, entryID: String, tenant: String) async throws {
        _ = try await writer.call { try $0.send(["SET", Self.deliveredKey(tenant, webhookID: webhook.webhookId, entryID: entryID), "1", "EX", "86400"]).unwrapped() }
    }


    // MARK: - Signatures

    /// `t=SECONDS,v1=HEX` where HEX is HMAC-SHA256 of `SECONDS.BODY` with the webhook's secret.
    static func signature(secret: String, timestamp: Int, body: [UInt8]) -> String {
        var message = Array("\(timestamp).".utf8)
        message += body
        let mac = HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: Array(secret.utf8)))
        return "t=\(timestamp),v1=" + mac.map { String(format: "%02x", $0) }.joined()
    }

    static func makeSecret() -> String {
        var generator = SystemRandomNumberGenerator()
        return "whsec_" + (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
    }
}
