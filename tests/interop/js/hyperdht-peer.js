#!/usr/bin/env node
'use strict'
// JS hyperdht 6.34 nodes driven by a line protocol, for Rust <-> JS HyperDHT interop tests.
//
//   node hyperdht-peer.js [--testnet N] [--bootstrap HOST:PORT] [--host 127.0.0.1]
//
// With --testnet N it starts a hyperdht testnet of N persistent nodes (createTestnet) and uses
// its first node for commands; with --bootstrap it starts one (ephemeral) client node joining
// that network. stdout: `ready HOST:PORT` (a bootstrap address), then one answer line per stdin
// command (hex everywhere):
//   announce TOPIC SEED          -> announced
//   unannounce TOPIC SEED        -> unannounced
//   lookup TOPIC                 -> peers PK,PK,...          (union over all replies)
//   iput VALUE                   -> hash HASH
//   iget HASH                    -> value VALUE | none
//   mput SEED SEQ VALUE          -> mput ok | mput error CODE
//   mget PK SEQ                  -> mvalue SEQ VALUE | none
//   exit                         -> bye
// Exits by itself after 120 s without input.

const DHT = require('hyperdht')
const createTestnet = require('hyperdht/testnet')
const readline = require('readline')

function arg (name, def) {
  const i = process.argv.indexOf(name)
  return i > 0 ? process.argv[i + 1] : def
}
const HOST = arg('--host', '127.0.0.1')
const SIZE = Number(arg('--testnet', '0'))
const BOOT = arg('--bootstrap', null)
const hex = (b) => Buffer.from(b).toString('hex')
const buf = (h) => Buffer.from(h, 'hex')

let idle = null
function resetIdle () {
  clearTimeout(idle)
  idle = setTimeout(() => { console.log('error idle'); process.exit(2) }, 120000)
}

async function main () {
  resetIdle()
  let node
  let testnet = null
  let ready
  if (SIZE > 0) {
    testnet = await createTestnet(SIZE, { host: HOST })
    node = testnet.nodes[SIZE - 1]
    ready = testnet.bootstrap[0].host + ':' + testnet.bootstrap[0].port
  } else {
    const [h, p] = BOOT.split(':')
    node = new DHT({ bootstrap: [{ host: h, port: Number(p) }], host: HOST })
    await node.fullyBootstrapped()
    ready = BOOT
  }
  console.log('ready ' + ready)
  const rl = readline.createInterface({ input: process.stdin })
  for await (const line of rl) {
    resetIdle()
    const [cmd, a, b, c] = line.trim().split(/\s+/)
    try {
      if (cmd === 'announce') {
        await node.announce(buf(a), DHT.keyPair(buf(b))).finished()
        console.log('announced')
      } else if (cmd === 'unannounce') {
        await node.unannounce(buf(a), DHT.keyPair(buf(b)))
        console.log('unannounced')
      } else if (cmd === 'lookup') {
        const seen = new Set()
        for await (const r of node.lookup(buf(a))) for (const p of r.peers) seen.add(hex(p.publicKey))
        console.log('peers ' + [...seen].join(','))
      } else if (cmd === 'iput') {
        const { hash } = await node.immutablePut(buf(a))
        console.log('hash ' + hex(hash))
      } else if (cmd === 'iget') {
        const r = await node.immutableGet(buf(a))
        console.log(r ? 'value ' + hex(r.value) : 'none')
      } else if (cmd === 'mput') {
        try {
          await node.mutablePut(DHT.keyPair(buf(a)), buf(c), { seq: Number(b) })
          console.log('mput ok')
        } catch (e) {
          console.log('mput error ' + (e.code || e.message))
        }
      } else if (cmd === 'mget') {
        const r = await node.mutableGet(buf(a), { seq: Number(b) })
        console.log(r ? 'mvalue ' + r.seq + ' ' + hex(r.value) : 'none')
      } else if (cmd === 'exit') {
        break
      } else {
        console.log('error unknown command ' + cmd)
      }
    } catch (e) {
      console.log(cmd + ' error ' + String(e.message || e).replace(/\s+/g, ' '))
    }
  }
  if (testnet) await testnet.destroy()
  else await node.destroy()
  console.log('bye')
  process.exit(0)
}

main().catch((e) => { console.log('error ' + String(e.message || e).replace(/\s+/g, ' ')); process.exit(1) })
