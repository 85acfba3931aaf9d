#!/usr/bin/env node
'use strict'
// A blind-relay server (npm blind-relay 1.6.1 on a hyperdht 6.34 server), for the relay interop
// tests. Its DHT node is persistent and unfirewalled (as testnet nodes), so peers reach it
// directly.
//
//   node blind-relay-server.js --bootstrap HOST:PORT --seed HEX
//
// stdout: `relay PKHEX HOST:PORT HOST:PORT` (its DHT server and client sockets) once listening, then `pair INITIATOR` for every matched half
// (`pair true` / `pair false`). Runs until killed (bounded by --timeout-ms, default 120000).

const DHT = require('hyperdht')
const { Server: RelayServer } = require('blind-relay')

function arg (name, def) {
  const i = process.argv.indexOf(name)
  return i > 0 ? process.argv[i + 1] : def
}
const [bh, bp] = arg('--bootstrap', '').split(':')
const SEED = Buffer.from(arg('--seed', '00'.repeat(32)), 'hex')
const TIMEOUT = Number(arg('--timeout-ms', '120000'))
setTimeout(() => process.exit(0), TIMEOUT).unref()

async function main () {
  const node = new DHT({
    bootstrap: [{ host: bh, port: Number(bp) }],
    host: '127.0.0.1',
    ephemeral: false,
    firewalled: false
  })
  await node.fullyBootstrapped()
  const relay = new RelayServer({
    createStream (opts) {
      return node.createRawStream({ ...opts, framed: true })
    }
  })
  const server = node.createServer({ shareLocalAddress: false }, (socket) => {
    const session = relay.accept(socket, { id: socket.remotePublicKey })
    session.on('pair', (isInitiator) => console.log('pair ' + isInitiator))
    session.on('error', () => {})
    socket.on('error', () => {})
  })
  const keyPair = DHT.keyPair(SEED)
  await server.listen(keyPair)
  const a = node.address()
  const c = node.io.clientSocket.address()
  console.log('relay ' + keyPair.publicKey.toString('hex') + ' ' + a.host + ':' + a.port + ' ' + a.host + ':' + c.port)
}

main().catch((e) => { console.log('error ' + (e.code || 'ERR') + ' ' + e.message); process.exit(1) })
