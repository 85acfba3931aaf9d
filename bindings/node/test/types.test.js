'use strict'
// The TypeScript declarations (index.d.ts, dht.d.ts, testnet.d.ts) compile under strict mode
// against a program that uses every API (test/types/check.ts).
const test = require('node:test')
const assert = require('node:assert')
const path = require('path')
const { spawnSync } = require('child_process')

test('type declarations compile (tsc --strict)', () => {
  const tsc = require.resolve('typescript/bin/tsc')
  const r = spawnSync(process.execPath, [tsc, '-p', path.join(__dirname, 'types')], { encoding: 'utf8', timeout: 120000 })
  assert.strictEqual(r.status, 0, r.stdout + r.stderr)
})
