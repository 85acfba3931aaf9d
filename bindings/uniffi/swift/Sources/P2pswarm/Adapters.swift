// AsyncStream adapters over the generated bindings (P2pswarmFFI.swift). Every generated async
// method is already `async`; cancelling the Task cancels the Rust future and loses nothing.
import Foundation

/// A new connection with what the swarm knows about the peer (JS `'connection'`).
public struct PeerConnection: @unchecked Sendable {
    public let connection: Connection
    public let peer: PeerInfo
}

private final class StreamListener: SwarmListener, @unchecked Sendable {
    let continuation: AsyncStream<SwarmEvent>.Continuation
    init(_ continuation: AsyncStream<SwarmEvent>.Continuation) { self.continuation = continuation }
    func onEvent(event: SwarmEvent) { continuation.yield(event) }
}

extension P2pswarm {
    /// The swarm's events, pulled with `nextEvent()`; finishes when the swarm is destroyed.
    public func events() -> AsyncStream<SwarmEvent> {
        AsyncStream { continuation in
            let task = Task {
                while !Task.isCancelled, let event = await self.nextEvent() {
                    continuation.yield(event)
                }
                continuation.finish()
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    /// The swarm's events through a listener (on its own native thread): registered while the
    /// stream is iterated, removed when it terminates.
    public func listenerEvents() -> AsyncStream<SwarmEvent> {
        AsyncStream { continuation in
            do {
                let handle = try self.addListener(listener: StreamListener(continuation))
                continuation.onTermination = { _ in handle.cancel() }
            } catch {
                continuation.finish()
            }
        }
    }

    /// New connections (JS `swarm.on('connection')`), pulled.
    public func connectionStream() -> AsyncStream<PeerConnection> {
        AsyncStream { continuation in
            let task = Task {
                for await event in self.events() {
                    if case let .connection(connection, peer) = event {
                        continuation.yield(PeerConnection(connection: connection, peer: peer))
                    }
                }
                continuation.finish()
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }
}

extension Connection {
    /// Received bytes until the remote ends the stream; fails if the connection fails.
    public func incoming() -> AsyncThrowingStream<Data, Error> {
        AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    while let data = try await self.read() {
                        continuation.yield(data)
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    /// Reads exactly `count` bytes (fails at end of stream).
    public func readExactly(_ count: Int) async throws -> Data {
        var out = Data()
        while out.count < count {
            guard let chunk = try await read() else {
                throw P2pswarmError.Io(detail: "end of stream after \(out.count) of \(count) bytes")
            }
            out.append(chunk)
        }
        return out
    }
}

extension Server {
    /// Accepted connections until the server is closed.
    public func connections() -> AsyncStream<Connection> {
        AsyncStream { continuation in
            let task = Task {
                while !Task.isCancelled, let connection = await self.accept() {
                    continuation.yield(connection)
                }
                continuation.finish()
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }
}
