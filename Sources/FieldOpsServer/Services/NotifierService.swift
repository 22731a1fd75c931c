import AsyncHTTPClient
import DocumentStore
import Foundation
import Logging
import NIOCore
import ServiceLifecycle
import Streams
import Synchronization

/// The `notifier` consumer group: delivers each `notifications` and `taskAssignments` entry to
/// the tenant's webhooks that want its type, signed, with retries and backoff; an entry that
/// still fails after `consumer.maxDeliveries` reads goes to the tenant's dead letters.
///
/// Each node runs one consumer per tenant stream under its stable node name; the group spreads
/// entries across nodes, and what a crashed node held is reclaimed by the others.
public final class NotifierService: Service, Sendable {
    public struct Configuration: Sendable {
        /// Tries per delivery before the entry is left pending for a later retry.
        public var attempts: Int
        /// Wait before the second try; doubled for each further one.
        public var backoff: Duration
        public var timeout: Duration
        /// How often to look for tenants with new webhooks.
        public var discoveryInterval: Duration
        /// Redelivery of failed entries (`claimMinIdle`) and the dead-letter limit (`maxDeliveries`).
        public var consumer: StreamConsumer.Configuration

        public init(
            attempts: Int = 3,
            backoff: Duration = .milliseconds(500),
            timeout: Duration = .seconds(10),
            discoveryInterval: Duration = .seconds(5),
            consumer: StreamConsumer.Configuration = .init(batchSize: 100, claimMinIdle: .seconds(30), claimInterval: .seconds(10), maxDeliveries: 5)
        ) {
            self.attempts = attempts
            self.backoff = backoff
            self.timeout = timeout
            self.discoveryInterval = discoveryInterval
            self.consumer = consumer
        }
    }

    struct DeliveryFailure: Error, CustomStringConvertible {
        let description: String
    }

    let registry: WebhookRegistry
    let redisURL: String
    let node: String
    let configuration: Configuration
    private let client = HTTPClient(eventLoopGroupProvider: .singleton)
    private let consumers = Mutex<[String: StreamConsumer]>([:])
    private let logger: Logger

    public convenience init(dependencies: ServerDependencies, configuration: Configuration = Configuration(), logger: Logger) {
        self.init(registry: WebhookRegistry(writer: dependencies.writer), redisURL: dependencies.redisURL, node: dependencies.configuration.nodeName, configuration: configuration, logger: logger)
    }

    init(registry: WebhookRegistry, redisURL: String, node: String, configuration: Configuration, logger: Logger) {
        self.registry = registry
        self.redisURL = redisURL
        self.node = node
        self.configuration = configuration
        self.logger = logger
    }

    public func run() async throws {
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                while !Task.isCancelled && !Task.isShuttingDownGracefully {
                    for consumer in (try? await newConsumers()) ?? [] {
                        group.addTask { await self.consume(consumer) }
                    }
                    // In short steps, so a graceful shutdown is noticed at once.
                    let next = ContinuousClock.now + configuration.discoveryInterval
                    while ContinuousClock.now < next && !Task.isCancelled && !Task.isShuttingDownGracefully {
                        try? await Task.sleep(for: .milliseconds(100))
                    }
                }
                closeAll()
                await group.waitForAll()
            }
        } onGracefulShutdown: {
            self.closeAll()
        }
        try? await client.shutdown()
    }

    private func closeAll() {
        consumers.withLock { $0.values.forEach { $0.close() } }
    }

    /// Consumers for tenant streams that got webhooks since the last look.
    private func newConsumers() async throws -> [StreamConsumer] {
        var created: [StreamConsumer] = []
        for tenant in try await registry.tenants() {
            for stream in WebhookRegistry.streams {
                let key = tenant + "/" + stream
                guard consumers.withLock({ $0[key] == nil }) else { continue }
                let consumer = try StreamConsumer(
                    redisURL: redisURL, tenant: tenant, stream: stream, group: WebhookRegistry.group, consumer: node,
                    configuration: configuration.consumer, logger: logger
                )
                consumers.withLock { $0[key] = consumer }
                created.append(consumer)
            }
        }
        return created
    }

    private func consume(_ consumer: StreamConsumer) async {
        do {
            try await consumer.subscribe { event in try await self.deliver(event) }
        } catch {
            logger.error("notifier stopped for a stream", metadata: ["tenant": "\(consumer.keys.tenant)", "stream": "\(consumer.stream)", "error": "\(error)"])
        }
        consumer.shutdown()
    }

    /// Sends `event` to every webhook of its tenant that wants it and has not had it yet.
    /// - Throws: when any webhook still failed after its tries: the entry stays pending.
    func deliver(_ event: StreamEvent) async throws {
        let hooks = try await registry.list(tenant: event.tenant).filter { $0.wants(event.eventType) }
        guard !hooks.isEmpty else { return }
        let body = Array(Self.body(event).jsonText.utf8)
        var failures: [String] = []
        for hook in hooks {
            if try await registry.wasDelivered(hook, entryID: event.id, tenant: event.tenant) { continue }
            do {
                try await post(body, to: hook, event: event)
                try await registry.markDelivered(hook, entryID: event.id, tenant: event.tenant)
            } catch {
                failures.append("\(hook.webhookId) (\(hook.url)): \(error)")
            }
        }
        guard failures.isEmpty else {
            logger.warning("webhook delivery failed; the entry will be retried", metadata: ["entry": "\(event.id)", "failures": "\(failures)"])
            throw DeliveryFailure(description: "webhook delivery failed: " + failures.joined(separator: "; "))
        }
    }

    private func post(_ body: [UInt8], to hook: WebhookRegistry.Webhook, event: StreamEvent) async throws {
        var wait = configuration.backoff
        var lastError: any Error = DeliveryFailure(description: "not tried")
        for attempt in 1...max(1, configuration.attempts) {
            do {
                var request = HTTPClientRequest(url: hook.url)
                request.method = .POST
                request.headers.add(name: "Content-Type", value: "application/json")
                request.headers.add(name: "User-Agent", value: "FieldOps-Webhooks/1")
                request.headers.add(name: "X-FieldOps-Event", value: event.eventType)
                request.headers.add(name: "X-FieldOps-Delivery", value: "\(event.stream)/\(event.id)")
                request.headers.add(name: "X-FieldOps-Signature", value: WebhookRegistry.signature(secret: hook.secret, timestamp: Int(Date().timeIntervalSince1970), body: body))
                request.body = .bytes(ByteBuffer(bytes: body))
                let response = try await client.execute(request, timeout: .seconds(configuration.timeout.components.seconds))
                _ = try? await response.body.collect(upTo: 64 * 1024)
                if (200..<300).contains(response.status.code) { return }
                lastError = DeliveryFailure(description: "HTTP \(response.status.code)")
            } catch {
                lastError = error
            }
            if attempt < configuration.attempts {
                try await Task.sleep(for: wait)
                wait *= 2
            }
        }
        throw lastError
    }

    /// What a webhook receives.
    static func body(_ event: StreamEvent) -> JSONValue {
        var routing = JSONObject()
        for (name, value) in event.routing { routing[name] = .string(value) }
        return [
            "id": .string(event.id), "stream": .string(event.stream), "tenant": .string(event.tenant),
            "eventType": .string(event.eventType), "timestamp": .string(event.timestamp),
            "payload": (try? JSONValue(jsonText: event.payload)) ?? .string(event.payload),
            "routing": .object(routing),
        ]
    }
}
