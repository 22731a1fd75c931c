import DocumentStore
import LiveTree
import Streams

/// Clears the presence a node left behind when it stopped without closing its sockets (a
/// crash, a kill): its entries in `/presence/{sub}/connections` would otherwise say those users
/// are online forever. Run at start, before the node accepts sockets.
enum PresenceSweeper {
    /// Removes every connection entry of `node` in every tenant and stamps `lastSeen`.
    /// - Returns: how many entries were removed.
    @discardableResult
    static func clearConnections(of node: String, tree: LiveTree, writer: EventWriter) async throws -> Int {
        let tenants = try await writer.withConnection { connection -> [String] in
            var cursor = "0"
            var found: Set<String> = []
            repeat {
                let reply = try connection.command("SCAN", cursor, "MATCH", "tenant:{*}:live", "COUNT", "1000").unwrapped()
                guard let parts = reply.array, parts.count == 2, let next = parts[0].string else { break }
                cursor = next
                for key in parts[1].array?.compactMap(\.string) ?? [] {
                    guard key.hasPrefix("tenant:{"), key.hasSuffix("}:live") else { continue }
                    found.insert(String(key.dropFirst("tenant:{".count).dropLast("}:live".count)))
                }
            } while cursor != "0"
            return found.sorted()
        }
        var removed = 0
        for tenant in tenants where StreamKeys.isIdentifier(tenant, maxLength: 64) {
            guard case .object(let users) = try await tree.get(tenant: tenant, path: LivePath(segments: ["presence"])) else { continue }
            for (user, presence) in users {
                guard case .object(let connections)? = presence["connections"] else { continue }
                let stale = connections.filter { $0.value["node"]?.stringValue == node }.map(\.key)
                guard !stale.isEmpty else { continue }
                var update: JSONObject = ["lastSeen": [".sv": "timestamp"]]
                for connection in stale { update["connections/" + connection] = .null }
                try await tree.update(tenant: tenant, path: LivePath(segments: ["presence", user]), values: update)
                removed += stale.count
            }
        }
        return removed
    }
}
