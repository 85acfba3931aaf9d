'use strict'
const test = require('node:test')
const assert = require('node:assert')
const crypto = require('crypto')
const P2Pswarm = require('..')
const { createTestnet, within, once, topic } = require('./helpers')

const TOTAL = 64 * 1024 * 1024
const CHUNK = 64 * 1024

test('64 MiB transfer arrives intact, with back-pressure on a stalled reader', { timeout: 300000 }, async () => {
  const tn = await createTestnet(2)
  const a = new P2Pswarm({ bootstrap: tn.bootstrap })
  const b = new P2Pswarm({ bootstrap: tn.bootstrap })
  const t = topic('transfer')
  await a.join(t, { server: true, client: false }).flushed()
  const gotA = once(a, 'connection')
  const gotB = once(b, 'connection')
  b.join(t, { server: false, client: true })
  const [[recv], [send]] = await Promise.all([gotA, gotB])

  // sender: 64 MiB of pseudo-random bytes, honouring write() === false
  const sent = crypto.createHash('sha256')
  let accepted = 0
  let refused = 0
  const sending = (async () => {
    let off = 0
    let x = 1
    while (off < TOTAL) {
      const buf = Buffer.allocUnsafe(CHUNK)
      for (let i = 0; i < CHUNK; i += 4) { x = (x * 1103515245 + 12345) >>> 0; buf.writeUInt32LE(x, i) }
      sent.update(buf)
      off += CHUNK
      if (!send.write(buf, () => { accepted += CHUNK })) {
        refused++
        await once(send, 'drain', 60000)
      }
    }
    send.end()
  })()

  // receiver stalls first: the sender must be held back well below 64 MiB
  await new Promise((r) => setTimeout(r, 1500))
  const acceptedWhileStalled = accepted
  assert.ok(acceptedWhileStalled < 48 * 1024 * 1024, 'sender held back while the reader stalls (accepted ' + acceptedWhileStalled + ')')
  assert.ok(refused > 0, 'write() returned false')

  const got = crypto.createHash('sha256')
  let n = 0
  recv.on('data', (d) => { got.update(d); n += d.length })
  await within(240000, 'end of transfer', new Promise((resolve) => recv.on('end', resolve)))
  await sending
  assert.strictEqual(n, TOTAL)
  assert.strictEqual(got.digest('hex'), sent.digest('hex'))
  await Promise.all([a.destroy(), b.destroy()])
  await tn.destroy()
})
