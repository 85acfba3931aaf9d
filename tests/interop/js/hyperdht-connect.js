#!/usr/bin/env node
'use strict'
// One side of a hyperdht 6.34 key-addressed connection, for Rust <-> JS connect interop tests.
//
//   node hyperdht-connect.js server --bootstrap HOST:PORT --seed HEX [--bytes N] [--reject PKHEX]
//   node hyperdht-connect.js client --bootstrap HOST:PORT --seed HEX --connect PKHEX [--bytes N]
//   either role: [--relay PKHEX] (relayThrough: a blind relay) [--no-holepunch] (server
//   `holepunch: false`; client `holepunch: () => false, localConnection: false, fastOpen: false`)
//   [--stay-firewalled] (`quickFirewall: false`: the node keeps reporting itself firewalled;
//   without it, its bootstrap may find its port reachable — as it is on one host — and it then
//   reports FIREWALL.OPEN, so the peer connects to it directly and no relay is used)
//
// Both sides use a default (ephemeral, firewalled) DHT node. Each side writes N bytes (byte i is
// (i * 7 + (i >> 11)) & 0xff) and ends, reads and checks the peer's N bytes.
// stdout: server: `listening PKHEX`, then `connection PKHEX`, then `done received=N remote=PKHEX` or
// `error ...`; client: `done received=N remote=PKHEX hash=HEX` or `error CODE MESSAGE`.
// The server handles one connection and exits; everything is bounded by --timeout-ms (60000).
// HDC_DEBUG=1 (client) logs the stream's path and life cycle on stderr.

const DHT = require('hyperdht')

function arg (name, def) {
  const i = process.argv.indexOf(name)
  return i > 0 ? process.argv[i + 1] : def
}
const ROLE = process.argv[2]
const [bh, bp] = arg('--bootstrap', '').split(':')
const SEED = Buffer.from(arg('--seed', '00'.repeat(32)), 'hex')
const N = Number(arg('--bytes', String(1 << 20)))
const REJECT = arg('--reject', null)
const TIMEOUT = Number(arg('--timeout-ms', '60000'))
const RELAY = arg('--relay', null) === null ? null : Buffer.from(arg('--relay'), 'hex')
const NO_HOLEPUNCH = process.argv.includes('--no-holepunch')
const STAY_FIREWALLED = process.argv.includes('--stay-firewalled')

setTimeout(() => { console.log('error timeout'); process.exit(2) }, TIMEOUT).unref()

function pattern (n) {
  const b = Buffer.allocUnsafe(n)
  for (let i = 0; i < n; i++) b[i] = (i * 7 + (i >> 11)) & 0xff
  return b
}

// The secret stream closes once our END is *queued* on UDX; the raw UDX stream closes only
// when both ENDs were acknowledged. Wait for that before tearing the node down, or the last
// packets die with the socket.
function rawClosed (socket) {
  const raw = socket.rawStream
  if (!raw || raw.destroyed) return Promise.resolve()
  return new Promise((resolve) => {
    const t = setTimeout(resolve, 10000)
    raw.once('close', () => { clearTimeout(t); resolve() })
  })
}

function exchange (socket) {
  return new Promise((resolve, reject) => {
    const want = pattern(N)
    let got = 0
    let bad = -1
    socket.on('data', (d) => {
      for (let i = 0; i < d.length && bad < 0; i++) if (d[i] !== want[got + i]) bad = got + i
      got += d.length
    })
    // No `end` on the peer's END: we end once all N bytes are written (below). Ending on the
    // peer's END truncated our own data whenever the peer finished first (e.g. our first
    // window waited for an RTO at a blind relay that had not heard from the peer yet).
    socket.on('error', reject)
    socket.on('close', () => {
      if (bad >= 0) return reject(new Error('mismatch at ' + bad))
      if (got !== N) return reject(new Error('received ' + got + ' of ' + N))
      resolve(got)
    })
    let off = 0
    const CH = 65536
    const write = () => {
      while (off < N) {
        const ok = socket.write(want.subarray(off, Math.min(N, off + CH)))
        off += CH
        if (!ok) return socket.once('drain', write)
      }
      socket.end()
    }
    write()
  })
}

async function main () {
  const node = new DHT({
    bootstrap: [{ host: bh, port: Number(bp) }],
    host: '127.0.0.1',
    quickFirewall: !STAY_FIREWALLED
  })
  await node.fullyBootstrapped()
  const keyPair = DHT.keyPair(SEED)
  if (ROLE === 'server') {
    const server = node.createServer({
      firewall: (remotePublicKey) => REJECT !== null && remotePublicKey.toString('hex') === REJECT,
      relayThrough: RELAY,
      holepunch: NO_HOLEPUNCH ? false : undefined
    })
    await server.listen(keyPair)
    console.log('listening ' + keyPair.publicKey.toString('hex'))
    server.on('connection', async (socket) => {
      console.log('connection ' + socket.remotePublicKey.toString('hex'))
      try {
        const got = await exchange(socket)
        console.log('done received=' + got + ' remote=' + socket.remotePublicKey.toString('hex'))
      } catch (e) {
        console.log('error ' + e.message)
      }
      await rawClosed(socket)
      await server.close()
      await node.destroy()
      process.exit(0)
    })
  } else {
    const opts = { keyPair, relayThrough: RELAY }
    if (NO_HOLEPUNCH) Object.assign(opts, { holepunch: () => false, localConnection: false, fastOpen: false })
    const socket = node.connect(Buffer.from(arg('--connect'), 'hex'), opts)
    socket.on('open', () => {
      const r = socket.rawStream
      if (process.env.HDC_DEBUG) {
        // diagnosis: the path and the stream's life cycle on stderr
        console.error('HDC open raw', r.remoteHost + ':' + r.remotePort, 'remoteId', r.remoteId, 'id', r.id)
        for (const ev of ['end', 'finish', 'close']) socket.on(ev, () => console.error('HDC ' + ev, 'written', socket.rawBytesWritten, 'raw tx', r.bytesTransmitted))
        r.on('close', () => console.error('HDC raw close'))
        socket.on('error', (e) => console.error('HDC error', e.code, e.message))
      }
    })
    try {
      const got = await exchange(socket)
      console.log('done received=' + got + ' remote=' + socket.remotePublicKey.toString('hex') + ' hash=' + socket.handshakeHash.toString('hex'))
    } catch (e) {
      console.log('error ' + (e.code || 'ERR') + ' ' + String(e.message).replace(/\s+/g, ' '))
    }
    await rawClosed(socket)
    await node.destroy()
    process.exit(0)
  }
}

main().catch((e) => { console.log('error ' + (e.code || 'ERR') + ' ' + String(e.message).replace(/\s+/g, ' ')); process.exit(1) })
