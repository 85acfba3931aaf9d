#!/usr/bin/env node
'use strict'
// HyperDHT benchmark: on one local testnet, connect latency (connect → first byte), encrypted
// stream throughput between two processes and idle node memory, Rust vs JS hyperdht, as ratios.
const { spawn } = require('child_process')
const path = require('path')
const readline = require('readline')

const root = path.join(__dirname, '..')
const BYTES = Number(process.argv[process.argv.indexOf('--bytes') + 1] || 0) || 256 * 1024 * 1024
const RUNS = 3

function proc (cmd, args) {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] })
  const lines = []
  const waiters = []
  readline.createInterface({ input: child.stdout }).on('line', (l) => { lines.push(l); waiters.splice(0).forEach((w) => w()) })
  const line = (prefix) => new Promise((resolve, reject) => {
    const check = () => {
      const l = lines.find((x) => x.startsWith(prefix))
      if (l) return resolve(l)
      const e = lines.find((x) => x.startsWith('error'))
      if (e) return reject(new Error(e))
      waiters.push(check)
    }
    check()
  })
  return { child, line }
}

const bins = {
  rust: (args) => proc(path.join(root, 'target/release/hyperdht-bench'), args),
  js: (args) => proc(process.execPath, [path.join(__dirname, 'hyperdht-bench-js.js'), ...args])
}

async function pair (impl, boot, i) {
  const seed = (i.toString(16).padStart(2, '0')).repeat(32)
  const s = bins[impl](['server', '--bootstrap', boot, '--seed', seed])
  const pk = (await s.line('listening ')).split(' ')[1]
  const c = bins[impl](['client', '--bootstrap', boot, '--connect', pk, '--bytes', String(BYTES)])
  const connectMs = Number((await c.line('connect_ms ')).split(' ')[1])
  const recv = (await s.line('received ')).split(' ')
  if (Number(recv[1]) !== BYTES) throw new Error(impl + ' server received ' + recv[1])
  return { connectMs, mbps: BYTES / Number(recv[3]) / 1e6 }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

async function main () {
  const tn = proc(path.join(root, 'target/release/p2pswarm'), ['testnet', '--nodes', '10'])
  const boot = (await tn.line('bootstrap ')).split(' ')[1]
  const res = {}
  let k = 1
  for (const impl of ['rust', 'js']) {
    const runs = []
    for (let r = 0; r < RUNS; r++) runs.push(await pair(impl, boot, k++))
    const idle = bins[impl](['idle', '--bootstrap', boot])
    const rss = Number((await idle.line('rss_kib ')).split(' ')[1])
    res[impl] = { connectMs: median(runs.map((x) => x.connectMs)), mbps: median(runs.map((x) => x.mbps)), rss }
  }
  tn.child.kill()
  console.log(`HyperDHT on a local 10-node testnet (median of ${RUNS}; ${BYTES >> 20} MiB per transfer)`)
  for (const impl of ['rust', 'js']) {
    const r = res[impl]
    console.log(`  ${impl.padEnd(5)} connect→first byte ${r.connectMs.toFixed(2)} ms, throughput ${r.mbps.toFixed(0)} MB/s, idle node process ${(r.rss / 1024).toFixed(1)} MiB`)
  }
  const r = res.rust
  const j = res.js
  console.log(`ratio Rust/JS: connect ${(r.connectMs / j.connectMs).toFixed(2)}x (target <= 1), throughput ${(r.mbps / j.mbps).toFixed(2)}x (target >= 3), idle memory ${(r.rss / j.rss).toFixed(3)}x (target <= 0.125)`)
  process.exit(0)
}
main().catch((e) => { console.error(e); process.exit(1) })
