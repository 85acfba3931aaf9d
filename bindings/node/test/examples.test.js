'use strict'
// The examples in examples/node run against the addon, through `require('p2pswarm')`.
const test = require('node:test')
const assert = require('node:assert')
const fs = require('fs')
const os = require('os')
const path = require('path')
const { execFile } = require('child_process')
const createTestnet = require('../testnet')

const examples = path.join(__dirname, '..', '..', '..', 'examples', 'node')
const modules = fs.mkdtempSync(path.join(os.tmpdir(), 'p2pswarm-node-path-'))
fs.symlinkSync(path.join(__dirname, '..'), path.join(modules, 'p2pswarm'))
test.after(() => fs.rmSync(modules, { recursive: true, force: true }))

function run (file, env) {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(examples, file)], { env: { ...process.env, NODE_PATH: modules, ...env }, timeout: 60000 }, (err, stdout, stderr) => resolve({ err, stdout, stderr }))
  })
}

test("hyperswarm's README usage example runs with require('p2pswarm') on a local testnet", async () => {
  const tn = await createTestnet(3)
  const r = await run('readme.js', { P2PSWARM_BOOTSTRAP: JSON.stringify(tn.bootstrap) })
  await tn.destroy()
  assert.strictEqual(r.err, null, r.stderr)
  assert.match(r.stdout, /swarm2 got: this is a server connection/)
  assert.match(r.stdout, /done/)
})

test('the DHT example runs', async () => {
  const r = await run('dht.js', {})
  assert.strictEqual(r.err, null, r.stderr)
  assert.match(r.stdout, /echo: hello dht/)
  assert.match(r.stdout, /mutable: my record seq 1/)
})
