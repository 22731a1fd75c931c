import Foundation
import Hummingbird
import Streams
import Synchronization

/// How many requests per second a tenant may make on this node, with a burst allowance.
public struct RateLimit: Sendable, Hashable {
    public var requestsPerSecond: Double
    public var burst: Double

    public init(requestsPerSecond: Double, burst: Double? = nil) {
        self.requestsPerSecond = requestsPerSecond
        self.burst = burst ?? requestsPerSecond * 2
    }

    /// No limit.
    public static let unlimited = RateLimit(requestsPerSecond: 0, burst: 0)
    public var isUnlimited: Bool { requestsPerSecond <= 0 }
}

/// A token bucket per tenant: one tenant's storm of requests cannot starve the others.
final class TenantRateLimiter: Sendable {
    private struct Bucket {
        var tokens: Double
        var updated: ContinuousClock.Instant
    }

    let limit: RateLimit
    private let buckets = Mutex<[String: Bucket]>([:])

    init(limit: RateLimit) {
        self.limit = limit
    }

    /// Takes a token; `nil` when allowed, else the seconds until the next token.
    func take(_ tenant: String, now: ContinuousClock.Instant = .now) -> Double? {
        guard !limit.isUnlimited else { return nil }
        return buckets.withLock { buckets in
            var bucket = buckets[tenant] ?? Bucket(tokens: limit.burst, updated: now)
            let elapsed = Double((now - bucket.updated).components.attoseconds) / 1e18 + Double((now - bucket.updated).components.seconds)
            bucket.tokens = min(limit.burst, bucket.tokens + elapsed * limit.requestsPerSecond)
            bucket.updated = now
            defer { buckets[tenant] = bucket }
            guard bucket.tokens >= 1 else { return (1 - bucket.tokens) / limit.requestsPerSecond }
            bucket.tokens -= 1
            return nil
        }
    }
}

/// Answers 429 with `Retry-After` when the caller's tenant is over its rate.
struct RateLimitMiddleware: RouterMiddleware {
    typealias Context = FieldOpsRequestContext
    let limiter: TenantRateLimiter

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if let tenant = context.identity?.tenant { try Self.check(limiter, tenant: tenant) }
        return try await next(request, context)
    }

    /// Takes a token for `tenant`. - Throws: 429 `rate_limited` with `Retry-After`.
    static func check(_ limiter: TenantRateLimiter, tenant: String) throws {
        guard let wait = limiter.take(tenant) else { return }
        let seconds = max(1, Int(wait.rounded(.up)))
        throw APIError(
            .tooManyRequests, code: "rate_limited",
            message: "tenant \(tenant) is over its limit of \(EventWriter.number(limiter.limit.requestsPerSecond)) requests per second; retry in \(seconds) s",
            headers: [.retryAfter: String(seconds)]
        )
    }
}

