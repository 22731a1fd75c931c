import ArgumentParser
import Foundation
import Redis

/// Where Redis is and which tenant to act for; shared by every subcommand that talks to Redis.
struct ConnectionOptions: ParsableArguments {
    @Option(name: .customLong("redis-url"), help: ArgumentHelp(
        "Redis to use: redis://[user[:password]@]host[:port][/db] or unix:///path/to/socket.",
        discussion: "Defaults to $FIELDOPS_REDIS_URL, then to the embedded server's socket ./storage/redis/redis.sock.",
        valueName: "url"))
    var redisURL: String?

    @Option(help: ArgumentHelp("Tenant whose streams to act on. Defaults to $FIELDOPS_TENANT, then 'default'.", valueName: "id"))
    var tenant: String?

    /// The URL to connect to, after defaults.
    var resolvedRedisURL: String {
        if let redisURL { return redisURL }
        if let fromEnvironment = ProcessInfo.processInfo.environment["FIELDOPS_REDIS_URL"], !fromEnvironment.isEmpty {
            return fromEnvironment
        }
        return "unix://" + FileManager.default.currentDirectoryPath + "/storage/redis/redis.sock"
    }

    var resolvedTenant: String {
        tenant ?? ProcessInfo.processInfo.environment["FIELDOPS_TENANT"] ?? "default"
    }

    func validate() throws {
        do {
            _ = try RedisConfiguration(url: resolvedRedisURL)
        } catch {
            throw ValidationError(error.message)
        }
    }
}

/// `--json` for scripts.
struct OutputOptions: ParsableArguments {
    @Flag(help: "Print JSON instead of tables, for scripts.")
    var json = false
}

/// A failure printed as `Error: message` with exit status 1.
struct CommandFailure: Error, CustomStringConvertible {
    let description: String

    init(_ description: String) {
        self.description = description
    }
}

/// A span typed on the command line, in seconds: `90s`, `10m`, `1h`, `2d`, or a bare number of seconds.
func durationSeconds(_ text: String) -> Int64? {
    let units: [Character: Int64] = ["s": 1, "m": 60, "h": 3_600, "d": 86_400]
    guard let unit = text.last.flatMap({ units[$0] }), let value = Int64(text.dropLast()), value >= 0 else { return Int64(text) }
    return value * unit
}
