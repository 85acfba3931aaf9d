'use strict'
// The addon hands memory freed after a burst back to the OS (src/trim.rs): Linux with glibc only.
const test = require('node:test')
const assert = require('node:assert')
const { spawnSync } = require('child_process')
const path = require('path')

const glibc = process.platform === 'linux' && Boolean(process.report.getReport().header.glibcVersionRuntime)
const root = JSON.stringify(path.join(__dirname, '..'))
// Two swarms connect and exchange 64 KiB each way, then the child waits (at most 10 s) until a
// trim has followed the burst, and prints the trim count and whether the helper thread exists.
const body = `
const P2Pswarm = require(${root})
const native = require(${root} + '/lib/native')
const createTestnet = require(${root} + '/testnet')
const fs = require('fs')
const threads = () => fs.readdirSync('/proc/self/task').map((t) => { try { return fs.readFileSync('/proc/self/task/' + t + '/comm', 'utf8').trim() } catch { return '' } })
;(async () => {
  const tn = await createTestnet(2)
  const a = new P2Pswarm({ bootstrap: tn.bootstrap })
  const b = new P2Pswarm({ bootstrap: tn.bootstrap })
  const t = Buffer.alloc(32, 7)
  a.on('connection', (s) => { s.on('error', () => {}); s.on('data', (d) => s.write(d)) })
  await a.join(t, { server: true, client: false }).flushed()
  const got = new Promise((resolve) => b.once('connection', resolve))
  b.join(t, { server: false, client: true })
  const sock = await got
  sock.on('error', () => {})
  let echoed = 0
  await new Promise((resolve) => { sock.on('data', (d) => { echoed += d.length; if (echoed >= 65536) resolve() }); sock.write(Buffer.alloc(65536, 1)) })
  const before = native.memoryTrims()
  let after = before
  for (let i = 0; i < 100 && before !== null && after === before; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100))
    after = native.memoryTrims()
  }
  console.log(JSON.stringify({ before, after, thread: threads().includes('p2pswarm-trim') }))
  process.exit(0)
})().catch((e) => { console.error(e); process.exit(1) })
`

function run (env) {
  const r = spawnSync(process.execPath, ['-e', body], { timeout: 60000, encoding: 'utf8', env: { ...process.env, ...env } })
  assert.strictEqual(r.error, undefined, 'no timeout')
  assert.strictEqual(r.status, 0, r.stderr)
  return JSON.parse(r.stdout.trim().split('\n').pop())
}

test('after a burst of traffic, freed memory is handed back to the OS once the addon is quiet', { skip: !glibc && 'Linux with glibc only' }, () => {
  const r = run({ P2PSWARM_MALLOC_TRIM: '' })
  assert.strictEqual(typeof r.before, 'number')
  assert.ok(r.after > r.before, 'a trim followed the burst: ' + JSON.stringify(r))
  assert.strictEqual(r.thread, true, 'the p2pswarm-trim thread runs')
})

test('P2PSWARM_MALLOC_TRIM=0 turns it off', { skip: !glibc && 'Linux with glibc only' }, () => {
  const r = run({ P2PSWARM_MALLOC_TRIM: '0' })
  assert.strictEqual(r.before, null)
  assert.strictEqual(r.after, null)
  assert.strictEqual(r.thread, false, 'no p2pswarm-trim thread')
})
