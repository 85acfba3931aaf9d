#!/usr/bin/env node
'use strict'
// One side of a hyperdht 6.34 connection in the NAT lab.
//
//   node nat-peer.js server --bootstrap HOST:PORT --seed HEX [--bytes N] [--timeout-ms T] [--connections N]
//   node nat-peer.js client --bootstrap HOST:PORT --seed HEX --connect PKHEX [--bytes N] [--timeout-ms T]
//   either role: [--relay PKHEX] (relayThrough: a blind relay to meet the peer at)
//
// Binds 0.0.0.0 (the lab host's address). Each side sends N bytes (byte i = (i*7 + (i>>11)) & 0xff),
// checks the peer's N bytes. stdout lines:
//   server: `listening PK firewalled=BOOL`, `connection PK path=P`, `done received=N`
//   client: `open ms=T path=P remote=HOST:PORT`, `done received=N`, or `error CODE MESSAGE ms=T`
// path: punched (the stream runs on a hole-punch socket), direct (on the DHT node's own socket).

const path = require('path')
const { createRequire } = require('module')
const req = createRequire(path.join(__dirname, '../../interop/js/package.json'))
const DHT = req('hyperdht')

if (process.argv.includes('--debug')) {
  const HP = req('hyperdht/lib/holepuncher.js')
  const wrap = (name) => {
    const f = HP.prototype[name]
    HP.prototype[name] = function (...a) {
      const r = f.apply(this, a)
      const log = (v) => console.error('[hp] ' + name + ' -> ' + JSON.stringify(v) + ' nat=' + this.nat.firewall +
        ' sampled=' + this.nat.sampled + ' addrs=' + JSON.stringify(this.nat.addresses) + ' remote=' + this.remoteFirewall +
        ' raddrs=' + JSON.stringify(this.remoteAddresses) + ' t=' + Date.now() % 100000)
      if (r && typeof r.then === 'function') r.then(log, (e) => log(String(e)))
      else log(r)
      return r
    }
  }
  for (const n of ['analyze', 'punch', 'destroy', 'updateRemote', 'openSession']) wrap(n)
}

function arg (name, def) {
  const i = process.argv.indexOf(name)
  return i > 0 ? process.argv[i + 1] : def
}
const ROLE = process.argv.slice(2).find((a) => a === 'server' || a === 'client')
const [bh, bp] = arg('--bootstrap', '').split(':')
const SEED = Buffer.from(arg('--seed', '00'.repeat(32)), 'hex')
const N = Number(arg('--bytes', String(65536)))
const TIMEOUT = Number(arg('--timeout-ms', '60000'))
const CONNECTIONS = Number(arg('--connections', '1'))
const RELAY = arg('--relay', null) === null ? null : Buffer.from(arg('--relay'), 'hex')

let t0 = Date.now()
setTimeout(() => { console.log('error TIMEOUT overall timeout ms=' + (Date.now() - t0)); process.exit(2) }, TIMEOUT).unref()

function pattern (n) {
  const b = Buffer.allocUnsafe(n)
  for (let i = 0; i < n; i++) b[i] = (i * 7 + (i >> 11)) & 0xff
  return b
}

// punched: the stream runs on a hole-punch socket (not one of the DHT node's own sockets)
function pathOf (node, socket) {
  const raw = socket.rawStream
  if (!raw || !raw.socket) return 'unknown'
  const own = raw.socket === node.io.serverSocket || raw.socket === node.io.clientSocket
  return own ? 'direct' : 'punched'
}

function exchange (socket) {
  return new Promise((resolve, reject) => {
    const want = pattern(N)
    let got = 0
    let bad = -1
    socket.on('data', (d) => {
      for (let i = 0; i < d.length && bad < 0; i++) if (d[i] !== want[got + i]) bad = got + i
      got += d.length
      if (got >= N) socket.end()
    })
    socket.on('end', () => socket.end())
    socket.on('error', reject)
    socket.on('close', () => {
      if (bad >= 0) return reject(new Error('mismatch at ' + bad))
      if (got !== N) return reject(new Error('received ' + got + ' of ' + N))
      resolve(got)
    })
    socket.write(want)
  })
}

async function main () {
  const node = new DHT({ bootstrap: [{ host: bh, port: Number(bp) }], host: '0.0.0.0' })
  await node.fullyBootstrapped()
  const keyPair = DHT.keyPair(SEED)
  if (ROLE === 'server') {
    const server = node.createServer({ relayThrough: RELAY })
    await server.listen(keyPair)
    console.log('listening ' + keyPair.publicKey.toString('hex') + ' firewalled=' + node.firewalled)
    let left = CONNECTIONS
    server.on('connection', async (socket) => {
      console.log('connection ' + socket.remotePublicKey.toString('hex') + ' path=' + pathOf(node, socket))
      try {
        const got = await exchange(socket)
        console.log('done received=' + got)
      } catch (e) {
        console.log('error ' + e.message)
      }
      if (--left === 0) setTimeout(async () => { await node.destroy(); process.exit(0) }, 1000)
    })
  } else {
    console.log('bootstrapped firewalled=' + node.firewalled)
    t0 = Date.now()
    const socket = node.connect(Buffer.from(arg('--connect'), 'hex'), { keyPair, relayThrough: RELAY })
    socket.on('open', () => {
      const raw = socket.rawStream
      console.log('open ms=' + (Date.now() - t0) + ' path=' + pathOf(node, socket) + ' remote=' + (raw ? raw.remoteHost + ':' + raw.remotePort : '?'))
    })
    try {
      const got = await exchange(socket)
      console.log('done received=' + got)
    } catch (e) {
      console.log('error ' + (e.code || 'ERR') + ' ' + String(e.message).replace(/\s+/g, ' ') + ' ms=' + (Date.now() - t0))
    }
    await node.destroy()
    process.exit(0)
  }
}

main().catch((e) => { console.log('error ' + (e.code || 'ERR') + ' ' + String(e.message).replace(/\s+/g, ' ')); process.exit(1) })
