'use strict'
// JS side of the swarm benchmark (hyperswarm 4.17); same modes and output as
// bench/src/bin/swarm-bench.rs. Exits when stdin closes or after --max-secs (default 300).
const path = require('path')
const Hyperswarm = require(path.join(__dirname, '../tests/interop/js/node_modules/hyperswarm'))

function arg (name) {
  const i = process.argv.indexOf(name)
  return i > 0 ? process.argv[i + 1] : null
}
const mode = process.argv[2]
const [bh, bp] = (arg('--bootstrap') || '').split(':')
const bootstrap = [{ host: bh, port: Number(bp) }]
const topic = Buffer.from(arg('--topic') || '', 'hex')
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const rssKib = () => {
  if (global.gc) global.gc()
  return Math.round(process.memoryUsage().rss / 1024)
}

function fail (msg) {
  console.log('error ' + msg)
  process.exit(1)
}
setTimeout(() => fail('timed out'), Number(arg('--max-secs') || 300) * 1000).unref()
process.stdin.on('end', () => process.exit(0))
process.stdin.resume()

function withTimeout (p, ms, what) {
  let t
  return Promise.race([p, new Promise((resolve, reject) => { t = setTimeout(() => reject(new Error(what + ' timed out')), ms) })])
    .finally(() => clearTimeout(t))
}

// A bootstrapped swarm that reads (and so keeps alive) every connection.
async function swarm (seed) {
  const s = new Hyperswarm({ seed, bootstrap })
  s.on('connection', (socket) => {
    socket.on('data', () => {})
    socket.on('error', () => {})
  })
  await withTimeout(s.dht.fullyBootstrapped(), 30000, 'bootstrap')
  return s
}

const flush = (s) => withTimeout(s.flush(), 30000, 'flush')

async function main () {
  if (!arg('--bootstrap') || topic.length !== 32) fail('need --bootstrap and a 32-byte --topic')
  if (mode === 'server') {
    const s = await swarm(Buffer.from(arg('--seed'), 'hex'))
    s.join(topic, { server: true, client: false })
    await flush(s)
    console.log('joined ' + s.keyPair.publicKey.toString('hex'))
  } else if (mode === 'client') {
    const s = await swarm(Buffer.from(arg('--seed'), 'hex'))
    const t0 = process.hrtime.bigint()
    const got = new Promise((resolve) => s.once('connection', (socket) => resolve([process.hrtime.bigint(), socket])))
    s.join(topic, { server: false, client: true })
    const [t1, socket] = await withTimeout(got, 30000, 'connection')
    console.log('connect_ms ' + (Number(t1 - t0) / 1e6).toFixed(3) + ' remote ' + socket.remotePublicKey.toString('hex'))
    await withTimeout(s.destroy(), 5000, 'destroy').catch(() => {})
    process.exit(0)
  } else if (mode === 'hub') {
    const expect = Number(arg('--expect') || 50)
    const s = await swarm(Buffer.from(arg('--seed'), 'hex'))
    s.join(topic, { server: true, client: false })
    await flush(s)
    await sleep(1000)
    console.log('rss0_kib ' + rssKib() + ' connections ' + s.connections.size)
    const deadline = Date.now() + 120000
    let last = -1
    for (;;) {
      const n = s.connections.size
      if (n !== last) { console.log('connections ' + n); last = n }
      if (n >= expect) break
      if (Date.now() > deadline) fail('only ' + n + ' of ' + expect + ' connections after 120 s')
      await sleep(100)
    }
    await sleep(2000)
    console.log('rss_kib ' + rssKib() + ' connections ' + s.connections.size)
  } else if (mode === 'clients') {
    const prefix = Buffer.from(arg('--seed-prefix'), 'hex')
    const count = Number(arg('--count') || 50)
    const batch = Math.max(1, Number(arg('--batch') || 10))
    const swarms = []
    let b = 0
    for (let i = 0; i < count;) {
      const ids = []
      for (; i < count && ids.length < batch; i++) ids.push(i)
      b++
      const fresh = await Promise.all(ids.map((k) => {
        const seed = Buffer.from(prefix)
        seed.writeBigUInt64BE(BigInt(k), 24)
        return swarm(seed)
      }))
      for (const s of fresh) s.join(topic, { server: false, client: true })
      await Promise.all(fresh.map(flush))
      swarms.push(...fresh)
      const open = swarms.reduce((a, s) => a + s.connections.size, 0)
      console.log('batch ' + b + ' swarms ' + swarms.length + ' connections ' + open)
    }
    console.log('clients_flushed ' + swarms.length)
  } else {
    fail('unknown mode ' + mode)
  }
}
main().catch((e) => fail(e.message))
