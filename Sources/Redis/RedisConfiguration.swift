import Foundation

/// Where and how to connect to Redis.
public struct RedisConfiguration: Sendable, Hashable {
    /// The server's address.
    public enum Endpoint: Sendable, Hashable {
        case tcp(host: String, port: Int)
        case unix(path: String)
    }

    public var endpoint: Endpoint
    /// ACL user name; `nil` authenticates as the default user.
    public var username: String?
    public var password: String?
    /// Logical database selected after connecting.
    public var database: Int
    /// Bound on establishing a connection.
    public var connectTimeout: Duration
    /// Bound on every read and write; blocking commands must block for less than this.
    public var commandTimeout: Duration

    /// The longest unix socket path: `sockaddr_un` holds 108 bytes with the terminating NUL.
    static let maxSocketPathBytes = 107

    /// Why `path` cannot be a unix socket's, or nil when it can.
    static func socketPathTooLong(_ path: String) -> String? {
        guard path.utf8.count > maxSocketPathBytes else { return nil }
        return "the socket path \(path) is \(path.utf8.count) bytes, and a unix socket's may have at most \(maxSocketPathBytes)"
    }

    public init(
        endpoint: Endpoint,
        username: String? = nil,
        password: String? = nil,
        database: Int = 0,
        connectTimeout: Duration = .seconds(2),
        commandTimeout: Duration = .seconds(5)
    ) {
        self.endpoint = endpoint
        self.username = username
        self.password = password
        self.database = database
        self.connectTimeout = connectTimeout
        self.commandTimeout = commandTimeout
    }

    /// Parses `redis://[user[:password]@]host[:port][/db]` or `unix:///path/to/socket[?db=N]`.
    ///
    /// User and password are percent-decoded; a URL with only a password (`redis://:secret@host`)
    /// authenticates the default user.
    /// - Throws: `RedisError` with code `invalid_url` naming what is wrong.
    public init(url: String) throws(RedisError) {
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased() else {
            throw RedisError(.invalidURL, "'\(url)' is not a URL; expected redis://host:port/db or unix:///path/to/socket")
        }
        let user = components.percentEncodedUser.flatMap { $0.removingPercentEncoding }.flatMap { $0.isEmpty ? nil : $0 }
        let password = components.percentEncodedPassword.flatMap { $0.removingPercentEncoding }
        var database = 0
        let endpoint: Endpoint
        switch scheme {
        case "redis":
            guard let host = components.host, !host.isEmpty else {
                throw RedisError(.invalidURL, "'\(url)' has no host")
            }
            let port = components.port ?? 6379
            guard (1...65535).contains(port) else { throw RedisError(.invalidURL, "port \(port) is out of range") }
            endpoint = .tcp(host: host, port: port)
            let path = components.path.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
            if !path.isEmpty {
                guard let db = Int(path), db >= 0 else {
                    throw RedisError(.invalidURL, "'\(path)' is not a database number in '\(url)'")
                }
                database = db
            }
        case "unix":
            let path = components.path
            guard path.hasPrefix("/") else {
                throw RedisError(.invalidURL, "'\(url)' needs an absolute socket path: unix:///path/to/socket")
            }
            // Longer paths would be cut short by the connect and name another file.
            if let tooLong = Self.socketPathTooLong(path) { throw RedisError(.invalidURL, tooLong) }
            endpoint = .unix(path: path)
            if let db = components.queryItems?.first(where: { $0.name == "db" })?.value {
                guard let number = Int(db), number >= 0 else {
                    throw RedisError(.invalidURL, "'\(db)' is not a database number in '\(url)'")
                }
                database = number
            }
        default:
            throw RedisError(.invalidURL, "unsupported scheme '\(scheme)' in '\(url)'; use redis:// or unix://")
        }
        self.init(endpoint: endpoint, username: user, password: password, database: database)
    }
}

extension RedisConfiguration: CustomStringConvertible {
    /// The address without credentials, safe to log.
    public var description: String {
        switch endpoint {
        case .tcp(let host, let port): return "redis://\(host):\(port)/\(database)"
        case .unix(let path): return "unix://\(path)" + (database == 0 ? "" : "?db=\(database)")
        }
    }
}
