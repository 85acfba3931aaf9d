// Idiomatic Kotlin over the generated uniffi bindings (io.p2pswarm.uniffi): Flows of events,
// connections and received bytes. Every generated async method is already a `suspend fun`
// (cancelling the coroutine cancels the Rust future; nothing is lost).
//
// Naming: uniffi objects already have `destroy()` (release the native handle) and `close()`
// (AutoCloseable, same); the JS-shaped `destroy()` / `close()` of swarms, discoveries, nodes,
// servers, connections and testnets are called `shutdown()` in Kotlin.
package io.p2pswarm

import io.p2pswarm.uniffi.Connection
import io.p2pswarm.uniffi.P2pswarm
import io.p2pswarm.uniffi.PeerInfo
import io.p2pswarm.uniffi.Server
import io.p2pswarm.uniffi.SwarmEvent
import io.p2pswarm.uniffi.SwarmListener
import kotlinx.coroutines.channels.awaitClose
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.callbackFlow
import kotlinx.coroutines.flow.flow
import kotlinx.coroutines.flow.mapNotNull

/** A new connection with what the swarm knows about the peer (JS `'connection'`). */
data class PeerConnection(val connection: Connection, val peer: PeerInfo)

/** The swarm's events, pulled with `nextEvent()`; completes when the swarm is shut down. */
fun P2pswarm.events(): Flow<SwarmEvent> = flow {
    while (true) {
        emit(nextEvent() ?: break)
    }
}

/**
 * The swarm's events through a listener (on its own native thread); collecting registers the
 * listener, cancelling the collector removes it. Events are buffered, never dropped.
 */
fun P2pswarm.listenerEvents(): Flow<SwarmEvent> = callbackFlow {
    val handle = addListener(object : SwarmListener {
        override fun onEvent(event: SwarmEvent) {
            trySend(event)
        }
    })
    awaitClose {
        handle.cancel()
        handle.close()
    }
}

/** New connections (JS `swarm.on('connection')`), pulled. */
fun P2pswarm.connectionFlow(): Flow<PeerConnection> = events().mapNotNull {
    (it as? SwarmEvent.Connection)?.let { c -> PeerConnection(c.connection, c.peer) }
}

/** Received bytes until the remote ends the stream. */
fun Connection.incoming(): Flow<ByteArray> = flow {
    while (true) {
        emit(read() ?: break)
    }
}

/** Reads exactly [n] bytes (fails at end of stream). */
suspend fun Connection.readExactly(n: Int): ByteArray {
    val out = java.io.ByteArrayOutputStream(n)
    while (out.size() < n) {
        val chunk = read() ?: throw java.io.EOFException("end of stream after ${out.size()} of $n bytes")
        out.write(chunk)
    }
    return out.toByteArray()
}

/** Accepted connections until the server is shut down. */
fun Server.connections(): Flow<Connection> = flow {
    while (true) {
        emit(accept() ?: break)
    }
}

/** Hex of a key, as the JS stack prints keys. */
fun ByteArray.toHex(): String = joinToString("") { "%02x".format(it) }
