// XCTest of the Swift package (run by build.sh where a Swift toolchain is installed): two swarms
// on a loopback testnet exchange data through the AsyncStream adapters, errors have stable
// kinds, and destroy ends the event stream.
import Foundation
import XCTest
@testable import P2pswarm

private func topic(_ n: UInt8) -> Data { Data(repeating: n, count: 32) }

final class P2pswarmTests: XCTestCase {
    func testKeyPairsAndErrors() throws {
        let kp = try KeyPair.fromSeed(seed: Data(count: 32))
        XCTAssertEqual(kp.publicKey().count, 32)
        XCTAssertEqual(try KeyPair.fromSecretKey(secretKey: kp.secretKey()).publicKey(), kp.publicKey())
        XCTAssertThrowsError(try KeyPair.fromSeed(seed: Data(count: 3))) { error in
            guard case P2pswarmError.InvalidArgument = error else {
                return XCTFail("unexpected \(error)")
            }
        }
    }

    func testTwoSwarmsExchangeData() async throws {
        let net = try await Testnet.create(size: 3)
        let a = try await P2pswarm.create(options: SwarmOptions(bootstrap: net.bootstrap()))
        let b = try await P2pswarm.create(options: SwarmOptions(bootstrap: net.bootstrap()))
        let d = try await a.join(topic: topic(1), server: true, client: false)
        _ = try await d.flushed()
        _ = try await b.join(topic: topic(1), server: false, client: true)
        _ = try await b.flush()
        var ia = a.connectionStream().makeAsyncIterator()
        var ib = b.connectionStream().makeAsyncIterator()
        let ca = await ia.next()!
        let cb = await ib.next()!
        XCTAssertEqual(cb.connection.remotePublicKey(), a.publicKey())
        XCTAssertEqual(cb.peer.publicKey(), a.publicKey())
        try await cb.connection.write(data: Data("hello".utf8))
        let got = try await ca.connection.readExactly(5)
        XCTAssertEqual(String(decoding: got, as: UTF8.self), "hello")
        try cb.connection.end()
        var n = 0
        for try await chunk in ca.connection.incoming() { n += chunk.count }
        XCTAssertEqual(n, 0)
        try await a.destroy()
        try await b.destroy()
        for await _ in b.events() {}  // finishes after destroy
        do {
            _ = try await b.join(topic: topic(2), server: true, client: true)
            XCTFail("join after destroy")
        } catch P2pswarmError.Closed {
        }
        net.destroy()
    }

    func testListenerStreamAndPendingPull() async throws {
        let net = try await Testnet.create(size: 3)
        let a = try await P2pswarm.create(options: SwarmOptions(bootstrap: net.bootstrap()))
        let b = try await P2pswarm.create(options: SwarmOptions(bootstrap: net.bootstrap()))
        // a pull pending across other calls completes with the next event (uniffi's Swift does
        // not cancel Rust calls on Task cancellation: the call completes when its result arrives)
        let pending = Task { await b.nextEvent() }
        let events = a.listenerEvents()
        let d = try await a.join(topic: topic(2), server: true, client: false)
        _ = try await d.flushed()
        _ = try await b.join(topic: topic(2), server: false, client: true)
        _ = try await b.flush()
        var connection: Connection?
        for await event in events {
            if case let .connection(c, _) = event {
                connection = c
                break
            }
        }
        let first = await pending.value
        XCTAssertNotNil(first)
        var ib = b.connectionStream().makeAsyncIterator()
        let cb = await ib.next()!
        try await cb.connection.write(data: Data("swift".utf8))
        let got = try await connection!.readExactly(5)
        XCTAssertEqual(String(decoding: got, as: UTF8.self), "swift")
        XCTAssertEqual(a.connections().count, 1)
        try await a.destroy()
        try await b.destroy()
        net.destroy()
    }
}
