'use strict'
// An addon swarm and a real JS hyperswarm (tests/interop/js) talk inside a private network
// namespace (tests/interop/netns.sh), the addon as client and as server. Needs root (skipped
// otherwise) and `npm ci` in tests/interop/js.
const test = require('node:test')
const assert = require('node:assert')
const fs = require('fs')
const path = require('path')
const { spawnSync } = require('child_process')

const repo = path.join(__dirname, '..', '..', '..')
const netns = path.join(repo, 'tests', 'interop', 'netns.sh')
const jsStack = path.join(repo, 'tests', 'interop', 'js', 'node_modules', 'hyperswarm')

let skip = false
if (typeof process.getuid === 'function' && process.getuid() !== 0) skip = 'needs root for a network namespace (tests/interop/netns.sh): run as root to include the JS interop test'
else if (!fs.existsSync(jsStack)) skip = 'JS hyperswarm not installed: run `npm ci` in tests/interop/js'

test('addon swarm <-> JS hyperswarm 4.17 in a network namespace (both roles)', { skip, timeout: 180000 }, (t) => {
  const r = spawnSync('bash', [netns, '--', process.execPath, path.join(__dirname, 'interop-driver.js')], { encoding: 'utf8', timeout: 170000 })
  if (r.status === 4) {
    t.skip('network namespaces not permitted here: ' + r.stderr.trim())
    return
  }
  assert.strictEqual(r.status, 0, 'driver failed:\n' + r.stdout + '\n' + r.stderr)
  assert.match(r.stdout, /ok addon-client <-> js-server/)
  assert.match(r.stdout, /ok addon-server <-> js-client/)
})
