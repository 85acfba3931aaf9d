package io.p2pswarm.uniffi

import io.p2pswarm.PeerConnection
import io.p2pswarm.connectionFlow
import io.p2pswarm.connections
import io.p2pswarm.events
import io.p2pswarm.incoming
import io.p2pswarm.listenerEvents
import io.p2pswarm.readExactly
import io.p2pswarm.toHex
import java.io.File
import java.util.concurrent.TimeUnit
import kotlin.random.Random
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.TimeoutCancellationException
import kotlinx.coroutines.async
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.filterIsInstance
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.flow.fold
import kotlinx.coroutines.flow.take
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import kotlinx.coroutines.withTimeoutOrNull
import org.junit.jupiter.api.Assertions.assertArrayEquals
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNotEquals
import org.junit.jupiter.api.Assertions.assertNotNull
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Assumptions.assumeTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.Timeout
import org.junit.jupiter.api.assertThrows

/** Every wait is bounded: 30 s per step, 120 s per test. */
private const val STEP = 30_000L

private fun topic(n: Int) = ByteArray(32) { n.toByte() }

private fun bytes(n: Int, b: Int) = ByteArray(n) { b.toByte() }

/** Runs a test body on Dispatchers.Default (uniffi resumes continuations from native threads). */
private fun test(body: suspend CoroutineScope.() -> Unit) = runBlocking(Dispatchers.Default) {
    withTimeout(120_000) { body() }
}

private suspend fun swarm(net: Testnet, seed: ByteArray? = null, firewall: Firewall? = null) =
    P2pswarm.create(SwarmOptions(seed = seed, bootstrap = net.bootstrap(), firewall = firewall))

private suspend fun nextConnection(s: P2pswarm): PeerConnection =
    withTimeout(STEP) { s.connectionFlow().first() }

/** Threads of this process whose name starts with [prefix] (native threads included). */
private fun threads(prefix: String): Int =
    File("/proc/self/task").listFiles()!!.count {
        runCatching { File(it, "comm").readText().trim() }.getOrDefault("").startsWith(prefix)
    }

/** UDP sockets open in this process (its socket fds whose inode is in /proc/net/udp). */
private fun ownUdpSockets(): Int {
    val inodes = File("/proc/self/net/udp").readLines().drop(1)
        .map { it.trim().split(Regex("\\s+"))[9] }.toSet()
    return File("/proc/self/fd").listFiles()!!.count { f ->
        val l = runCatching { java.nio.file.Files.readSymbolicLink(f.toPath()).toString() }.getOrDefault("")
        l.startsWith("socket:[") && l.removePrefix("socket:[").removeSuffix("]") in inodes
    }
}

class P2pswarmTest {
    @Test
    fun keyPairsAndErrorKinds() {
        val kp = KeyPair.fromSeed(bytes(32, 0))
        assertEquals(32, kp.publicKey().size)
        assertEquals(64, kp.secretKey().size)
        assertArrayEquals(kp.publicKey(), KeyPair.fromSecretKey(kp.secretKey()).publicKey())
        assertFalse(KeyPair.generate().publicKey().contentEquals(kp.publicKey()))
        assertThrows<P2pswarmException.InvalidArgument> { KeyPair.fromSeed(bytes(5, 0)) }
        assertThrows<P2pswarmException.InvalidArgument> { KeyPair.fromSecretKey(bytes(64, 1)) }
        assertThrows<P2pswarmException.InvalidArgument> {
            P2pswarm(SwarmOptions(bootstrap = listOf("not an address")))
        }
        assertThrows<P2pswarmException.InvalidArgument> { P2pswarm(SwarmOptions(host = "::1")) }
        assertThrows<P2pswarmException.InvalidArgument> { Dht(DhtOptions(seed = bytes(3, 0))) }
        // the kind is stable, the detail is for humans
        val e = assertThrows<P2pswarmException> { KeyPair.fromSeed(ByteArray(0)) }
        assertTrue(e is P2pswarmException.InvalidArgument && e.detail.contains("32 bytes"), e.toString())
    }

    @Test
    fun twoSwarmsExchangeDataAndEverySwarmFunction() = test {
        Testnet(3u).use { net ->
            assertEquals(3u, net.size())
            val seed = bytes(32, 7)
            val a = swarm(net, seed = seed)
            val b = P2pswarm(SwarmOptions(bootstrap = net.bootstrap()))
            assertArrayEquals(KeyPair.fromSeed(seed).publicKey(), a.publicKey())
            val d = a.join(topic(1), server = true, client = false)
            assertArrayEquals(topic(1), d.topic())
            withTimeout(STEP) { d.flushed() }
            b.join(topic(1), server = false, client = true)
            assertTrue(withTimeout(STEP) { b.flush() })
            val (ca, pa) = nextConnection(a)
            val (cb, pb) = nextConnection(b)
            assertArrayEquals(a.publicKey(), cb.remotePublicKey())
            assertArrayEquals(b.publicKey(), ca.remotePublicKey())
            assertArrayEquals(b.publicKey(), pa.publicKey())
            assertTrue(cb.isInitiator() && !ca.isInitiator())
            assertArrayEquals(ca.handshakeHash(), cb.handshakeHash())
            assertEquals(64, ca.handshakeHash()!!.size)
            assertNotEquals(ca.id(), 0uL)
            assertTrue(pb.topics().any { it.contentEquals(topic(1)) })
            assertFalse(pb.banned())
            pb.prioritized()
            // data both ways; 1 MiB while reading concurrently
            cb.write("hello".toByteArray())
            assertEquals("hello", String(ca.readExactly(5)))
            ca.tryWrite("world".toByteArray())
            assertEquals("world", String(cb.readExactly(5)))
            val big = Random.nextBytes(1 shl 20)
            val w = async { cb.write(big) }
            assertArrayEquals(big, withTimeout(STEP) { ca.readExactly(big.size) })
            w.await()
            assertEquals(0uL, cb.queuedBytes())
            assertEquals(1, a.connections().size)
            assertEquals(1, b.connections().size)
            assertEquals(0u, a.connecting())
            // end: the remote's incoming flow completes
            cb.end()
            assertEquals(0, withTimeout(STEP) { ca.incoming().toList() }.size)
            ca.end()
            assertNull(withTimeout(STEP) { cb.read() })
            assertNull(withTimeout(STEP) { ca.closed() })
            assertTrue(ca.isClosed())
            // swarm state
            assertTrue(b.peers().any { it.publicKey().contentEquals(a.publicKey()) })
            assertArrayEquals(a.publicKey(), b.peer(a.publicKey())!!.publicKey())
            assertNull(b.peer(bytes(32, 0)))
            val st = a.status(topic(1))!!
            assertTrue(st.server && !st.client && st.sessions >= 1u)
            assertNull(a.status(topic(9)))
            d.refresh(server = true, client = false)
            assertTrue(withTimeout(STEP) { a.flush() })
            a.listen()
            b.suspend()
            assertTrue(b.status(topic(1))!!.suspended)
            b.resume()
            assertFalse(b.status(topic(1))!!.suspended)
            b.joinPeer(a.publicKey())
            assertTrue(b.peer(a.publicKey())!!.explicit())
            b.leavePeer(a.publicKey())
            pb.ban(true)
            assertTrue(b.peer(a.publicKey())!!.banned())
            pb.ban(false)
            d.shutdown()
            a.leave(topic(1))
            b.leave(topic(1))
            a.shutdown()
            b.shutdown()
            a.close()
            b.close()
        }
    }

    @Test
    fun listenerFlowPullAndCancellation() = test {
        Testnet.create(2u).use { net ->
            assertEquals(2u, net.size())
            val a = swarm(net)
            val b = swarm(net)
            // a suspended pull is cancelled; no event is lost
            assertNull(withTimeoutOrNull(200) { b.nextEvent() })
            val connected = async { withTimeout(STEP) { a.listenerEvents().filterIsInstance<SwarmEvent.Connection>().first() } }
            delay(100) // the listener is registered when the flow starts collecting
            val d = a.join(topic(2), server = true, client = false)
            withTimeout(STEP) { d.flushed() }
            b.join(topic(2), server = false, client = true)
            withTimeout(STEP) { b.flush() }
            val ca = connected.await().connection
            val (cb, _) = nextConnection(b) // the pull cancelled before still works
            // a cancelled read loses no data
            assertThrows<TimeoutCancellationException> { withTimeout(200) { ca.read() } }
            cb.write("after cancel".toByteArray())
            assertEquals("after cancel", String(withTimeout(STEP) { ca.readExactly(12) }))
            // a cancelled write leaves the connection usable
            val job = launch { cb.write(Random.nextBytes(4 shl 20)) }
            job.cancel()
            cb.write("x".toByteArray())
            // events pulled as a Flow, after the listener is gone
            b.shutdown()
            val rest = withTimeout(STEP) { b.events().fold(0) { n, _ -> n + 1 } } // completes
            assertTrue(rest >= 0)
            assertThrows<P2pswarmException.Closed> { b.join(topic(3)) }
            assertThrows<P2pswarmException.Closed> { cb.write("x".toByteArray()) }
            a.shutdown()
            a.close()
            b.close()
            net.shutdown()
            net.shutdown()
        }
    }

    @Test
    fun backpressureHoldsTheSenderWhileTheReceiverDoesNotRead() = test {
        Testnet().use { net ->
            val a = swarm(net)
            val b = swarm(net)
            val d = a.join(topic(7), server = true, client = false)
            withTimeout(STEP) { d.flushed() }
            b.join(topic(7), server = false, client = true)
            withTimeout(STEP) { b.flush() }
            val (ca, _) = nextConnection(a)
            val (cb, _) = nextConnection(b)
            val chunks = List(20) { Random.nextBytes(1 shl 20) }
            var sent = 0
            val w = launch {
                for (c in chunks) {
                    cb.write(c)
                    sent++
                }
            }
            delay(3000)
            assertFalse(w.isCompleted, "20 MiB went out while the receiver read nothing")
            println("backpressure: held back after $sent MiB")
            val got = withTimeout(60_000) { ca.readExactly(20 shl 20) }
            var off = 0
            for (c in chunks) {
                assertArrayEquals(c, got.copyOfRange(off, off + c.size))
                off += c.size
            }
            withTimeout(STEP) { w.join() }
            a.shutdown()
            b.shutdown()
            a.close()
            b.close()
        }
    }

    @Test
    fun firewallRejects() = test {
        Testnet().use { net ->
            val seen = java.util.concurrent.ConcurrentLinkedQueue<String>()
            val a = swarm(net, firewall = object : Firewall {
                override fun reject(remotePublicKey: ByteArray): Boolean {
                    seen.add(remotePublicKey.toHex())
                    return true
                }
            })
            val b = swarm(net)
            val d = a.join(topic(4), server = true, client = false)
            withTimeout(STEP) { d.flushed() }
            b.join(topic(4), server = false, client = true)
            withTimeout(STEP) { b.flush() }
            assertTrue(seen.contains(b.publicKey().toHex()))
            assertEquals(0, a.connections().size)
            assertEquals(0, b.connections().size)
            // the rejected peer is banned: a Ban event
            val ban = withTimeout(STEP) { a.events().filterIsInstance<SwarmEvent.Ban>().first() }
            assertArrayEquals(b.publicKey(), ban.peer.publicKey())
            assertTrue(ban.peer.banned())
            a.shutdown()
            b.shutdown()
            a.close()
            b.close()
        }
    }

    @Test
    fun dht() = test {
        Testnet().use { net ->
            val n1 = Dht.create(DhtOptions(bootstrap = net.bootstrap()))
            val n2 = Dht(DhtOptions(bootstrap = net.bootstrap(), seed = bytes(32, 3)))
            assertArrayEquals(KeyPair.fromSeed(bytes(32, 3)).publicKey(), n2.publicKey())
            val server = n1.listen()
            assertArrayEquals(n1.publicKey(), server.publicKey())
            val c = n2.connect(n1.publicKey())
            val s = withTimeout(STEP) { server.connections().first() }
            c.write("ping".toByteArray())
            assertEquals("ping", String(withTimeout(STEP) { s.readExactly(4) }))
            s.write("pong".toByteArray())
            assertEquals("pong", String(withTimeout(STEP) { c.readExactly(4) }))
            assertThrows<P2pswarmException.PeerNotFound> { n2.connect(KeyPair.generate().publicKey()) }
            val kp = KeyPair.generate()
            assertTrue(n1.announce(topic(5), kp) > 0u)
            val found = n2.lookup(topic(5))
            assertTrue(found.any { r -> r.peers.any { it.publicKey.contentEquals(kp.publicKey()) } })
            n1.unannounce(topic(5), kp)
            val h = n1.immutablePut("immutable".toByteArray())
            assertEquals("immutable", String(n2.immutableGet(h)))
            assertTrue(n1.mutablePut(kp, "v1".toByteArray(), 1uL) > 0u)
            val v = n2.mutableGet(kp.publicKey())
            assertEquals(1uL, v.seq)
            assertEquals("v1", String(v.value))
            assertEquals(64, v.signature.size)
            assertThrows<P2pswarmException.NotFound> { n2.mutableGet(kp.publicKey(), 5uL) }
            server.shutdown()
            server.shutdown()
            assertNull(withTimeout(STEP) { server.accept() })
            c.shutdown()
            n1.shutdown()
            n2.shutdown()
            assertThrows<P2pswarmException.Closed> { n1.lookup(topic(5)) }
            // a swarm's DHT node
            val sw = swarm(net)
            val sd = sw.dht()
            assertArrayEquals(sw.publicKey(), sd.publicKey())
            assertEquals("immutable", String(sd.immutableGet(h)))
            sw.shutdown()
            listOf<AutoCloseable>(sd, sw, n1, n2, server, c, s, kp).forEach { it.close() }
        }
    }

    @Test
    @Timeout(value = 300, unit = TimeUnit.SECONDS)
    fun shutdownWithoutLeaksOrHangs() = test {
        var rt0 = 0
        var ls0 = 0
        var fds0 = 0
        var udp0 = 0
        repeat(4) { round ->
            if (round == 1) { // after a warm-up round (the JVM and JNA open files once)
                System.gc()
                delay(200)
                rt0 = threads("p2pswarm-rt")
                ls0 = threads("p2pswarm-listen")
                fds0 = File("/proc/self/fd").list()!!.size
                udp0 = ownUdpSockets()
            }
            Testnet().use { net ->
                val a = swarm(net)
                val b = swarm(net)
                val pending = async { a.nextEvent() } // suspended across the shutdown
                val h = b.addListener(object : SwarmListener {
                    override fun onEvent(event: SwarmEvent) {}
                })
                val d = a.join(topic(10 + round), server = true, client = false)
                withTimeout(STEP) { d.flushed() }
                b.join(topic(10 + round), server = false, client = true)
                withTimeout(STEP) { b.flush() }
                // shutdown with connections open, a pull pending and a listener registered
                a.shutdown()
                b.shutdown()
                withTimeout(STEP) { pending.await() } // ends (an event or null), never hangs
                withTimeout(STEP) { a.events().toList() }.forEach { it.destroy() } // the flow completes
                h.close()
                d.close()
                a.close()
                b.close()
            }
        }
        // runtime and listener threads are gone, descriptors are back
        withTimeout(STEP) {
            while (threads("p2pswarm-rt") > rt0 || threads("p2pswarm-listen") > ls0) delay(50)
        }
        // Handles the test did not close (events' connections and peers) hold no socket: the
        // descriptors are back before any GC (uniffi's Cleaner frees the rest later).
        val fdsNow = { File("/proc/self/fd").list()!!.size }
        val fdsBeforeGc = fdsNow()
        val udpBeforeGc = ownUdpSockets()
        withTimeoutOrNull(10_000) {
            while (fdsNow() > fds0 + 2) {
                System.gc()
                delay(100)
            }
        }
        println("shutdownWithoutLeaksOrHangs: fds $fds0 -> $fdsBeforeGc before GC -> ${fdsNow()} after; own UDP sockets $udp0 -> $udpBeforeGc")
        assertEquals(udp0, udpBeforeGc, "UDP sockets open after destroy")
        assertTrue(fdsBeforeGc <= fds0 + 2, "fds $fds0 -> $fdsBeforeGc after destroy, before GC")
        val fds = fdsNow()
        assertEquals(0, rt0, "runtime threads left after the warm-up round")
        assertTrue(fds <= fds0 + 2, "fds $fds0 -> $fds")
    }

    @Test
    fun kotlinSwarmTalksToJsHyperswarm() = test {
        assumeTrue(
            System.getenv("P2PSWARM_NETNS") == "1",
            "needs a network namespace: run inside tests/interop/netns.sh as root (bindings/uniffi/tests/run.sh does)",
        )
        val js = System.getenv("P2PSWARM_JS_DIR")!!
        Testnet().use { net ->
            val s = swarm(net)
            val t = topic(6)
            val proc = ProcessBuilder(
                "node", "$js/hyperswarm-peer.js", "--bootstrap", net.bootstrap()[0],
                "--topic", t.toHex(), "--seed", "11".repeat(32), "--server",
            ).redirectError(ProcessBuilder.Redirect.INHERIT).start()
            try {
                val lines = java.util.concurrent.LinkedBlockingQueue<String>()
                Thread {
                    proc.inputStream.bufferedReader().forEachLine { lines.add(it) }
                }.apply { isDaemon = true }.start()
                val line = { lines.poll(STEP, TimeUnit.MILLISECONDS) }
                assertEquals("joined", line())
                s.join(t, server = false, client = true)
                withTimeout(STEP) { s.flush() }
                val (c, peer) = nextConnection(s)
                assertArrayEquals(KeyPair.fromSeed(bytes(32, 0x11)).publicKey(), peer.publicKey())
                assertEquals("hello from js", String(withTimeout(STEP) { c.readExactly(13) }))
                c.write("hello from kotlin".toByteArray())
                var got: String? = null
                for (i in 0 until 20) {
                    val l = line() ?: break
                    if (l.startsWith("data ")) {
                        got = l.split(" ", limit = 3)[2]
                        break
                    }
                }
                assertEquals("hello from kotlin", got)
            } finally {
                proc.outputStream.use { it.write("exit\n".toByteArray()) }
                if (!proc.waitFor(10, TimeUnit.SECONDS)) proc.destroyForcibly()
            }
            s.shutdown()
            s.close()
        }
    }
}
