#!/usr/bin/env node
'use strict'
// A group of JS dht-rpc 6.27 nodes driven by a line protocol, for Rust <-> JS DHT interop tests.
//
//   node dht-peer.js [--nodes N] [--host 127.0.0.1] [--bootstrap HOST:PORT]
//
// Without --bootstrap the first node is a bootstrapper (DHT.bootstrapper) and the others join
// it; with --bootstrap every node joins that network. All nodes are created with
// ephemeral:false and answer application command 42 with the value "js-ok" (and a token).
//
// stdout: `ready BOOTSTRAP_HOST:PORT`, then one `node HOST:PORT ID` line per node, then the
// answer line of each stdin command:
//   find TARGET_HEX          -> closest HOST:PORT,...      (node 0's findNode closest replies)
//   has ID_HEX               -> has N                      (JS nodes whose table holds the id)
//   token HOST:PORT          -> token FIRST SECOND BOGUS   (error codes: plain request, request
//                                                         with the returned token, bogus token)
//   commit TARGET_HEX        -> commit ok N | commit error MESSAGE  (query command 42, commit)
//   exit                     -> bye
// Every step is bounded in time; the process exits by itself after 120 s without input.

const DHT = require('dht-rpc')
const dgram = require('dgram')
const readline = require('readline')

function arg (name, def) {
  const i = process.argv.indexOf(name)
  return i > 0 ? process.argv[i + 1] : def
}

const N = Number(arg('--nodes', '10'))
const HOST = arg('--host', '127.0.0.1')
const BOOT = arg('--bootstrap', null)

function freePort () {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4')
    s.bind(0, HOST, () => {
      const p = s.address().port
      s.close(() => resolve(p))
    })
  })
}

function serve (node) {
  node.on('request', (req) => {
    if (req.command === 42) req.reply(Buffer.from('js-ok'))
  })
}

let idle = null
function resetIdle () {
  clearTimeout(idle)
  idle = setTimeout(() => { console.log('error idle'); process.exit(2) }, 120000)
}

async function main () {
  resetIdle()
  const nodes = []
  let bootstrap = BOOT
  if (!bootstrap) {
    const port = await freePort()
    const b = DHT.bootstrapper(port, HOST, { host: HOST })
    await b.ready()
    serve(b)
    nodes.push(b)
    bootstrap = HOST + ':' + port
  }
  while (nodes.length < N) {
    const node = new DHT({ bootstrap: [bootstrap], ephemeral: false, host: HOST })
    serve(node)
    nodes.push(node)
    await node.fullyBootstrapped()
  }
  await Promise.all(nodes.map((n) => n.fullyBootstrapped()))
  console.log('ready ' + bootstrap)
  for (const n of nodes) {
    const a = n.address()
    console.log('node ' + a.host + ':' + a.port + ' ' + (n.id ? n.id.toString('hex') : 'ephemeral'))
  }
  const rl = readline.createInterface({ input: process.stdin })
  for await (const line of rl) {
    resetIdle()
    const [cmd, arg1] = line.trim().split(/\s+/)
    try {
      if (cmd === 'find') {
        const q = nodes[0].findNode(Buffer.from(arg1, 'hex'))
        await q.finished()
        console.log('closest ' + q.closestReplies.map((r) => r.from.host + ':' + r.from.port).join(','))
      } else if (cmd === 'has') {
        const id = Buffer.from(arg1, 'hex')
        console.log('has ' + nodes.filter((n) => n.table.has(id)).length)
      } else if (cmd === 'token') {
        const [host, port] = arg1.split(':')
        const to = { host, port: Number(port) }
        const first = await nodes[0].request({ command: 42, target: Buffer.alloc(32, 7) }, to)
        const second = await nodes[0].request({ command: 42, target: Buffer.alloc(32, 7), token: first.token }, to)
        const bogus = await nodes[0].request({ command: 42, target: Buffer.alloc(32, 7), token: Buffer.alloc(32, 1) }, to)
        console.log('token ' + first.error + ' ' + second.error + ' ' + bogus.error + (first.token ? '' : ' no-token'))
      } else if (cmd === 'commit') {
        const q = nodes[0].query({ target: Buffer.from(arg1, 'hex'), command: 42, value: Buffer.from('v') }, { commit: true })
        await q.finished()
        console.log('commit ok ' + q.closestReplies.length)
      } else if (cmd === 'exit') {
        break
      } else {
        console.log('error unknown command ' + cmd)
      }
    } catch (e) {
      console.log(cmd + ' error ' + String(e.message || e).replace(/\s+/g, ' '))
    }
  }
  await Promise.all(nodes.map((n) => n.destroy()))
  console.log('bye')
  process.exit(0)
}

main().catch((e) => {
  console.log('error ' + String(e.message || e).replace(/\s+/g, ' '))
  process.exit(1)
})
