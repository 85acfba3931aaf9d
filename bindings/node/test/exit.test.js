'use strict'
const test = require('node:test')
const assert = require('node:assert')
const { spawnSync } = require('child_process')
const path = require('path')

const root = JSON.stringify(path.join(__dirname, '..'))
const prelude = `
const P2Pswarm = require(${root})
const createTestnet = require(${root} + '/testnet')
async function connected () {
  const tn = await createTestnet(2)
  const a = new P2Pswarm({ bootstrap: tn.bootstrap })
  const b = new P2Pswarm({ bootstrap: tn.bootstrap })
  const t = Buffer.alloc(32, 9)
  const got = new Promise((resolve) => b.once('connection', resolve))
  a.on('connection', (s) => { s.on('error', () => {}); s.write('x') })
  await a.join(t, { server: true, client: false }).flushed()
  b.join(t, { server: false, client: true })
  const sock = await got
  sock.on('error', () => {})
  return { tn, a, b, sock }
}
`

function run (body) {
  const t0 = Date.now()
  const r = spawnSync(process.execPath, ['-e', prelude + body], { timeout: 30000, encoding: 'utf8' })
  return { ...r, ms: Date.now() - t0 }
}

test('process.exit() with live swarms and open connections exits at once', () => {
  const r = run('connected().then(() => { console.log("up"); process.exit(3) })')
  assert.strictEqual(r.error, undefined, 'no timeout')
  assert.strictEqual(r.stdout.trim(), 'up', r.stderr)
  assert.strictEqual(r.status, 3)
})

test('an exception with live swarms ends the process', () => {
  const r = run('connected().then(() => { throw new Error("bye") })')
  assert.strictEqual(r.error, undefined, 'no timeout')
  assert.notStrictEqual(r.status, 0)
  assert.match(r.stderr, /bye/)
})

test('the process exits by itself once the swarms are destroyed', () => {
  const r = run('connected().then(async ({ tn, a, b }) => { await a.destroy(); await b.destroy(); await tn.destroy(); console.log("done") })')
  assert.strictEqual(r.error, undefined, 'exited by itself (no hang)')
  assert.strictEqual(r.status, 0, r.stderr)
  assert.strictEqual(r.stdout.trim(), 'done')
})
