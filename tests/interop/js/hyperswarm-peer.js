#!/usr/bin/env node
'use strict'
// A JS hyperswarm 4.17 peer driven by a line protocol, for Rust <-> JS swarm interop tests.
//
//   node hyperswarm-peer.js --bootstrap HOST:PORT --topic HEX --seed HEX [--server] [--client]
//
// stdout: `joined` once the topic is flushed, `connection PKHEX` per connection event,
// `data PKHEX TEXT` per received message; on stdin `count` -> `connections N`, `exit` -> `bye`.
// Every connection is greeted with "hello from js". Exits by itself after 120 s without input.
const Hyperswarm = require('hyperswarm')
const readline = require('readline')

function arg (name) {
  const i = process.argv.indexOf(name)
  return i > 0 ? process.argv[i + 1] : null
}
const [bh, bp] = arg('--bootstrap').split(':')
const server = process.argv.includes('--server')
const client = process.argv.includes('--client')

// HS_PEER_DEBUG=1: connection life cycle on stderr.
function debug (msg) {
  if (process.env.HS_PEER_DEBUG) process.stderr.write('[js ' + new Date().toISOString() + '] ' + msg + '\n')
}

let idle = null
function resetIdle () {
  clearTimeout(idle)
  idle = setTimeout(() => { console.log('error idle'); process.exit(2) }, 120000)
}

async function main () {
  resetIdle()
  const swarm = new Hyperswarm({ seed: Buffer.from(arg('--seed'), 'hex'), bootstrap: [{ host: bh, port: Number(bp) }] })
  if (process.env.HS_PEER_DEBUG) {
    const connect = swarm.dht.connect.bind(swarm.dht)
    swarm.dht.connect = (publicKey, opts) => {
      const s = connect(publicKey, opts)
      debug('dial ' + publicKey.toString('hex').slice(0, 8))
      s.on('open', () => debug('dial open'))
      s.on('close', () => debug('dial close error=' + (s.errored ? s.errored.message || s.errored.code : 'none')))
      return s
    }
  }
  swarm.on('connection', (socket, info) => {
    const pk = info.publicKey.toString('hex')
    console.log('connection ' + pk)
    debug('connection initiator=' + socket.isInitiator + ' raw=' + (socket.rawStream && socket.rawStream.id) + ' remote=' + (socket.rawStream && socket.rawStream.remoteHost + ':' + socket.rawStream.remotePort))
    socket.on('close', () => debug('close initiator=' + socket.isInitiator + ' error=' + (socket.errored ? socket.errored.message || socket.errored.code : 'none') + ' read=' + socket.rawBytesRead + ' written=' + socket.rawBytesWritten))
    socket.on('data', (d) => console.log('data ' + pk + ' ' + d.toString()))
    socket.on('error', () => {})
    socket.write('hello from js')
  })
  const discovery = swarm.join(Buffer.from(arg('--topic'), 'hex'), { server, client })
  await discovery.flushed()
  await swarm.flush()
  console.log('joined')
  const rl = readline.createInterface({ input: process.stdin })
  for await (const line of rl) {
    resetIdle()
    if (line === 'count') console.log('connections ' + swarm.connections.size)
    if (line === 'flush') { await swarm.flush(); console.log('flushed') }
    if (line === 'exit') break
  }
  await swarm.destroy()
  console.log('bye')
  process.exit(0)
}
main().catch((e) => { console.log('error ' + e.message); process.exit(1) })
