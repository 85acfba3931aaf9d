'use strict'
// JS side of the DHT benchmark (see bench/src/bin/dht-bench.rs): 100 dht-rpc 6.27 nodes in this
// process, lookup latency percentiles and resident memory per node, as one JSON line.
const path = require('path')
const DHT = require(path.join(__dirname, '../tests/interop/js/node_modules/dht-rpc'))
const dgram = require('dgram')

function arg (name, def) {
  const i = process.argv.indexOf(name)
  return i > 0 ? Number(process.argv[i + 1]) : def
}
const NODES = arg('--nodes', 100)
const LOOKUPS = arg('--lookups', 200)
const HOST = '127.0.0.1'

function freePort () {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4')
    s.bind(0, HOST, () => { const p = s.address().port; s.close(() => resolve(p)) })
  })
}

async function main () {
  if (global.gc) global.gc()
  const before = process.memoryUsage().rss
  const port = await freePort()
  const boot = DHT.bootstrapper(port, HOST, { host: HOST })
  await boot.ready()
  const all = [boot]
  for (let i = 1; i < NODES; i++) {
    const n = new DHT({ bootstrap: [HOST + ':' + port], ephemeral: false, host: HOST })
    await n.fullyBootstrapped()
    all.push(n)
  }
  await new Promise((resolve) => setTimeout(resolve, 2000))
  if (global.gc) global.gc()
  const after = process.memoryUsage().rss
  let seed = 0x12345678
  const next = () => { seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5; return seed >>> 0 }
  const lat = []
  for (let i = 0; i < LOOKUPS; i++) {
    const target = Buffer.alloc(32)
    for (let j = 0; j < 32; j += 4) target.writeUInt32LE(next(), j)
    const from = next() % NODES
    const t0 = process.hrtime.bigint()
    const q = all[from].findNode(target)
    await q.finished()
    lat.push(Number(process.hrtime.bigint() - t0) / 1e6)
  }
  lat.sort((a, b) => a - b)
  const pct = (p) => lat[Math.floor((lat.length - 1) * p)]
  const persistent = all.filter((n) => !n.ephemeral).length
  console.log(JSON.stringify({ impl: 'js', nodes: NODES, persistent, lookups: LOOKUPS, p50_ms: pct(0.5), p90_ms: pct(0.9), mean_ms: lat.reduce((a, b) => a + b, 0) / lat.length, kib_per_node: (after - before) / 1024 / NODES }))
  await Promise.all(all.map((n) => n.destroy()))
  process.exit(0)
}
main().catch((e) => { console.error(e); process.exit(1) })
