'use strict'
const test = require('node:test')
const assert = require('node:assert')
const path = require('path')
const { spawnSync } = require('child_process')
const P2Pswarm = require('..')
const DHT = require('../dht')
const { createTestnet, once, topic } = require('./helpers')

test('wrong types and lengths throw TypeErrors with clear messages', async () => {
  const tn = await createTestnet(1)
  const bootstrap = tn.bootstrap
  assert.throws(() => new P2Pswarm({ seed: Buffer.alloc(31) }), { name: 'TypeError', message: /seed must be a 32-byte Buffer \(got a 31-byte buffer\)/ })
  assert.throws(() => new P2Pswarm({ seed: 'abc' }), { name: 'TypeError', message: /seed must be a 32-byte Buffer/ })
  assert.throws(() => new P2Pswarm({ keyPair: { publicKey: Buffer.alloc(32) } }), { name: 'TypeError', message: /keyPair.secretKey must be a 64-byte Buffer/ })
  assert.throws(() => new P2Pswarm({ keyPair: 5 }), { name: 'TypeError', message: /keyPair must be an object/ })
  assert.throws(() => new P2Pswarm({ maxPeers: -1 }), { name: 'TypeError', message: /maxPeers must be a non-negative integer/ })
  assert.throws(() => new P2Pswarm({ maxPeers: 'ten' }), { name: 'TypeError', message: /maxPeers/ })
  assert.throws(() => new P2Pswarm({ firewall: 'no' }), { name: 'TypeError', message: /firewall must be a function/ })
  assert.throws(() => new P2Pswarm({ bootstrap: 'x' }), { name: 'TypeError', message: /bootstrap must be an array/ })
  assert.throws(() => new P2Pswarm({ bootstrap: [{ host: 'example.org', port: 1 }] }), { name: 'TypeError', message: /IPv4/ })
  assert.throws(() => new P2Pswarm({ bootstrap: [{ host: '127.0.0.1', port: 70000 }] }), { name: 'TypeError', message: /port/ })
  assert.throws(() => new P2Pswarm({ dht: {} }), { name: 'TypeError', message: /dht must be/ })
  assert.throws(() => new P2Pswarm(42), { name: 'TypeError', message: /options must be an object/ })

  const s = new P2Pswarm({ bootstrap })
  assert.throws(() => s.join(), { name: 'TypeError', message: /Topic is required and must be a 32-byte buffer/ })
  assert.throws(() => s.join(Buffer.alloc(16)), { name: 'TypeError', message: /32-byte buffer \(got a 16-byte buffer\)/ })
  assert.throws(() => s.join('topic'), TypeError)
  assert.throws(() => s.join(topic('t'), { server: 'yes' }), { name: 'TypeError', message: /server must be a boolean/ })
  assert.throws(() => s.joinPeer(Buffer.alloc(31)), { name: 'TypeError', message: /publicKey must be a 32-byte Buffer/ })
  assert.throws(() => s.leavePeer(null), { name: 'TypeError', message: /publicKey must be a 32-byte Buffer \(got null\)/ })
  assert.throws(() => s.status(1), TypeError)
  await assert.rejects(s.leave(Buffer.alloc(3)), TypeError)

  assert.throws(() => DHT.keyPair(Buffer.alloc(5)), { name: 'TypeError', message: /seed must be a 32-byte Buffer/ })
  const d = tn.createNode()
  assert.throws(() => d.connect(Buffer.alloc(8)), { name: 'TypeError', message: /remotePublicKey must be a 32-byte Buffer/ })
  assert.throws(() => d.lookup(null), TypeError)
  await assert.rejects(d.immutableGet(Buffer.alloc(3)), { name: 'TypeError', message: /hash must be a 32-byte Buffer/ })
  await assert.rejects(d.immutablePut('str'), { name: 'TypeError', message: /value must be a Buffer/ })
  await assert.rejects(d.mutablePut(DHT.keyPair(), Buffer.from('x'), { seq: -1 }), { name: 'TypeError', message: /seq/ })
  await assert.rejects(d.mutableGet(Buffer.alloc(2)), TypeError)
  await s.destroy()
  await tn.destroy()
})

// Run in a child: node:test owns this process's uncaughtException hook.
test('a throwing listener does not kill the swarm', () => {
  const root = JSON.stringify(path.join(__dirname, '..'))
  const script = `
const P2Pswarm = require(${root})
const createTestnet = require(${root} + '/testnet')
async function main () {
  const tn = await createTestnet(2)
  const a = new P2Pswarm({ bootstrap: tn.bootstrap })
  const b = new P2Pswarm({ bootstrap: tn.bootstrap })
  let n = 0
  a.on('connection', (sock) => {
    sock.on('data', (d) => {
      if (d.toString() === 'boom') throw new Error('data listener exploded')
      sock.write('echo ' + d)
    })
    n++
    throw new Error('connection listener exploded')
  })
  b.on('update', () => { throw new Error('update listener exploded') })
  const t = Buffer.alloc(32, 4)
  await a.join(t, { server: true, client: false }).flushed()
  const got = new Promise((resolve) => b.once('connection', resolve))
  b.join(t, { server: false, client: true })
  const sock = await got
  sock.write('boom')
  await new Promise((r) => setTimeout(r, 100))
  sock.write('still alive')
  const d = await new Promise((resolve) => sock.once('data', resolve))
  console.log(d.toString() + ' ' + n)
  await Promise.all([a.destroy(), b.destroy()])
  await tn.destroy()
}
main()
`
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 60000 })
  assert.strictEqual(r.error, undefined, 'no timeout')
  assert.strictEqual(r.status, 0, r.stderr)
  assert.strictEqual(r.stdout.trim(), 'echo still alive 1')
  assert.match(r.stderr, /a listener threw \(the swarm keeps running\): Error: connection listener exploded/)
  assert.match(r.stderr, /data listener exploded/)
  assert.match(r.stderr, /update listener exploded/)
})
