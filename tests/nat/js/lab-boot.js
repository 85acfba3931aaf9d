#!/usr/bin/env node
'use strict'
// Bootstrap DHT nodes for the NAT lab (run inside the lab's "public" namespace).
//
//   node lab-boot.js --host 10.10.0.1 [--port 49737] [--nodes 6] [--delay-ms 5] [--timeout-ms 300000]
//
// Starts N persistent, unfirewalled hyperdht 6.34 nodes on HOST (first on PORT), every datagram
// they send delayed by DELAY ms (netem is not available; without latency a reachable peer can
// finish bootstrapping before the probe proving it reachable returns, see nat-lab.md).
// stdout: `ready HOST:PORT`. Exits after --timeout-ms (or when killed).

const path = require('path')
const { createRequire } = require('module')
const req = createRequire(path.join(__dirname, '../../interop/js/package.json'))
const DHT = req('hyperdht')
const UDX = req('udx-native')

function arg (name, def) {
  const i = process.argv.indexOf(name)
  return i > 0 ? process.argv[i + 1] : def
}
const HOST = arg('--host', '10.10.0.1')
const PORT = Number(arg('--port', '49737'))
const NODES = Number(arg('--nodes', '6'))
const DELAY = Number(arg('--delay-ms', '5'))
const TIMEOUT = Number(arg('--timeout-ms', '300000'))

setTimeout(() => process.exit(0), TIMEOUT).unref()

if (DELAY > 0) {
  const probe = new UDX().createSocket()
  const proto = Object.getPrototypeOf(probe)
  const trySend = proto.trySend
  const send = proto.send
  proto.trySend = function (...args) {
    const buf = Buffer.from(args[0])
    setTimeout(() => { try { trySend.call(this, buf, ...args.slice(1)) } catch {} }, DELAY)
  }
  proto.send = function (...args) {
    const buf = Buffer.from(args[0])
    return new Promise((resolve) => setTimeout(() => {
      try { send.call(this, buf, ...args.slice(1)).then(resolve, () => resolve(false)) } catch { resolve(false) }
    }, DELAY))
  }
}

async function main () {
  const bootstrap = [{ host: HOST, port: PORT }]
  const nodes = []
  const first = new DHT({ ephemeral: false, firewalled: false, bootstrap: [], port: PORT, host: HOST })
  await first.fullyBootstrapped()
  nodes.push(first)
  while (nodes.length < NODES) {
    const n = new DHT({ ephemeral: false, firewalled: false, bootstrap, host: HOST })
    await n.fullyBootstrapped()
    nodes.push(n)
  }
  console.log('ready ' + HOST + ':' + first.address().port)
}

main().catch((e) => { console.log('error ' + String(e.message || e)); process.exit(1) })
