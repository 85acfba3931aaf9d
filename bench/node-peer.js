'use strict'
// One side of the Node benchmark (bench/run-node.sh): the p2pswarm addon or JS hyperswarm 4.17
// in its own process, driven by arguments and stdin.
//
//   node node-peer.js IMPL recv  --bootstrap H:P --topic HEX --bytes N   -> ready / done MS
//   node node-peer.js IMPL send  --bootstrap H:P --topic HEX --bytes N
//   node node-peer.js IMPL hub   --bootstrap H:P --topic HEX             -> ready; stdin "rss"
//   node node-peer.js IMPL peers --bootstrap H:P --topic HEX --count K   -> connected K
// IMPL: addon | js. Exits when stdin closes or after 300 s.
const path = require('path')

const impl = process.argv[2]
const mode = process.argv[3]
function arg (name) {
  const i = process.argv.indexOf(name)
  return i > 0 ? process.argv[i + 1] : null
}
const Swarm = impl === 'js'
  ? require(path.join(__dirname, '../tests/interop/js/node_modules/hyperswarm'))
  : require(path.join(__dirname, '../bindings/node'))
const [bh, bp] = arg('--bootstrap').split(':')
const bootstrap = [{ host: bh, port: Number(bp) }]
const topic = Buffer.from(arg('--topic'), 'hex')
const bytes = Number(arg('--bytes') || 0)

setTimeout(() => { console.log('error timed out'); process.exit(1) }, 300000).unref()
process.stdin.on('end', () => process.exit(0))

const rssKib = () => {
  if (global.gc) { global.gc(); global.gc() }
  return Math.round(process.memoryUsage().rss / 1024)
}

async function main () {
  if (mode === 'recv') {
    const s = new Swarm({ bootstrap })
    s.on('connection', (sock) => {
      sock.on('error', () => {})
      let n = 0
      let t0 = 0
      sock.on('data', (d) => {
        if (n === 0) t0 = process.hrtime.bigint()
        n += d.length
        if (n >= bytes) {
          const ms = Number(process.hrtime.bigint() - t0) / 1e6
          console.log('done ' + ms.toFixed(1) + ' ' + n)
          sock.end()
        }
      })
    })
    await s.join(topic, { server: true, client: false }).flushed()
    console.log('ready')
  } else if (mode === 'send') {
    const s = new Swarm({ bootstrap })
    s.once('connection', async (sock) => {
      sock.on('error', () => {})
      const chunk = Buffer.alloc(64 * 1024, 0x61)
      let sent = 0
      while (sent < bytes) {
        sent += chunk.length
        if (!sock.write(chunk)) await new Promise((resolve) => sock.once('drain', resolve))
      }
    })
    s.join(topic, { server: false, client: true })
  } else if (mode === 'hub') {
    const s = new Swarm({ bootstrap })
    s.on('connection', (sock) => {
      sock.on('error', () => {})
      sock.on('data', (d) => sock.write(d))
    })
    await s.join(topic, { server: true, client: false }).flushed()
    await new Promise((resolve) => setTimeout(resolve, 500))
    console.log('ready ' + rssKib())
    require('readline').createInterface({ input: process.stdin }).on('line', (line) => {
      if (line === 'rss') console.log('rss ' + rssKib() + ' ' + s.connections.size)
    })
  } else if (mode === 'peers') {
    const count = Number(arg('--count'))
    const swarms = []
    let open = 0
    for (let i = 0; i < count; i++) {
      const s = new Swarm({ bootstrap })
      s.once('connection', (sock) => {
        sock.on('error', () => {})
        sock.on('data', () => {})
        sock.write(Buffer.alloc(16 * 1024, 1))
        if (++open === count) console.log('connected ' + open)
      })
      s.join(topic, { server: false, client: true })
      swarms.push(s)
    }
  }
  process.stdin.resume()
}
main().catch((e) => { console.log('error ' + e.message); process.exit(1) })
