import Redis

/// Every failure of the stream library, with a stable code and a message for people.
public struct StreamError: Error, Sendable, Hashable {
    /// A stable, machine-readable category.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        public let rawValue: String
        public init(_ rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        public static let invalidTenant = Code("invalid_tenant")
        public static let invalidStreamName = Code("invalid_stream_name")
        public static let invalidGroupName = Code("invalid_group_name")
        public static let invalidConsumerName = Code("invalid_consumer_name")
        public static let invalidEventType = Code("invalid_event_type")
        public static let invalidField = Code("invalid_field")
        public static let invalidMessageID = Code("invalid_message_id")
        public static let payloadTooLarge = Code("payload_too_large")
        public static let streamExists = Code("stream_exists")
        public static let streamNotFound = Code("stream_not_found")
        public static let groupExists = Code("group_exists")
        public static let groupNotFound = Code("group_not_found")
        /// Another live consumer already uses this name in the group.
        public static let consumerNameInUse = Code("consumer_name_in_use")
        public static let deadLetterNotFound = Code("dead_letter_not_found")
        /// Redis failed or answered something the library did not expect.
        public static let redis = Code("redis_error")
        /// Redis cannot be reached (down, restarting, connection lost): worth retrying later.
        public static let unavailable = Code("redis_unavailable")
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// Wraps a Redis-layer failure, keeping its code in the message.
    init(_ error: RedisError) {
        self.init(error.isConnectionError || Self.transientServerCodes.contains(error.serverCode ?? "") ? .unavailable : .redis, "\(error.code): \(error.message)")
    }

    /// Replies of a server that will answer again shortly: loading its data after a restart,
    /// busy with a long script, failing over.
    static let transientServerCodes: Set<String> = ["LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN"]

    /// Redis failed or is unreachable, rather than the request being wrong.
    public var isRedisFailure: Bool { code == .redis || code == .unavailable }
}

extension StreamError: CustomStringConvertible {
    public var description: String { "\(code): \(message)" }
}

extension StreamError {
    /// Maps any error from a Redis call to a `StreamError`.
    public static func wrapping(_ error: any Error) -> StreamError {
        switch error {
        case let error as StreamError: return error
        case let error as RedisError: return StreamError(error)
        default: return StreamError(.redis, "\(error)")
        }
    }
}

/// Runs a Redis call, turning `RedisError` into `StreamError`.
@inline(__always)
func redisCall<T>(_ body: () throws -> T) throws(StreamError) -> T {
    do {
        return try body()
    } catch let error as StreamError {
        throw error
    } catch let error as RedisError {
        throw StreamError(error)
    } catch {
        throw StreamError(.redis, "\(error)")
    }
}
