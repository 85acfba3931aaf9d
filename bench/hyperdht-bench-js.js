'use strict'
// JS side of the HyperDHT benchmark; same modes and output as bench/src/bin/hyperdht-bench.rs.
const path = require('path')
const DHT = require(path.join(__dirname, '../tests/interop/js/node_modules/hyperdht'))

function arg (name) {
  const i = process.argv.indexOf(name)
  return i > 0 ? process.argv[i + 1] : null
}
const mode = process.argv[2]
const [bh, bp] = arg('--bootstrap').split(':')

async function main () {
  const node = new DHT({ bootstrap: [{ host: bh, port: Number(bp) }], host: '127.0.0.1' })
  await node.fullyBootstrapped()
  if (mode === 'idle') {
    await new Promise((resolve) => setTimeout(resolve, 2000))
    console.log('rss_kib ' + Math.round(process.memoryUsage().rss / 1024))
  } else if (mode === 'server') {
    const kp = DHT.keyPair(Buffer.from(arg('--seed'), 'hex'))
    const server = node.createServer()
    await server.listen(kp)
    console.log('listening ' + kp.publicKey.toString('hex'))
    await new Promise((resolve) => {
      server.on('connection', (socket) => {
        socket.write(Buffer.from('!'))
        let total = 0
        let t0 = null
        socket.on('data', (d) => { if (t0 === null) t0 = process.hrtime.bigint(); total += d.length })
        socket.on('end', () => {
          const secs = t0 === null ? 0 : Number(process.hrtime.bigint() - t0) / 1e9
          console.log('received ' + total + ' secs ' + secs.toFixed(6))
          socket.end()
        })
        socket.on('close', resolve)
        socket.on('error', resolve)
      })
    })
  } else if (mode === 'client') {
    const n = Number(arg('--bytes') || 64 * 1024 * 1024)
    const t0 = process.hrtime.bigint()
    const socket = node.connect(Buffer.from(arg('--connect'), 'hex'))
    await new Promise((resolve, reject) => {
      socket.once('data', () => {
        console.log('connect_ms ' + (Number(process.hrtime.bigint() - t0) / 1e6).toFixed(3))
        const chunk = Buffer.alloc(65536, 0x5a)
        let sent = 0
        const write = () => {
          while (sent < n) {
            const k = Math.min(chunk.length, n - sent)
            sent += k
            if (!socket.write(k === chunk.length ? chunk : chunk.subarray(0, k))) return socket.once('drain', write)
          }
          socket.end()
        }
        write()
      })
      socket.on('data', () => {})
      socket.on('close', resolve)
      socket.on('error', reject)
    })
  }
  await node.destroy()
  process.exit(0)
}
main().catch((e) => { console.log('error ' + e.message); process.exit(1) })
