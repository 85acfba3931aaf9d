#!/usr/bin/env node
'use strict'
// Swarm benchmark: on one local testnet, join → connection latency of a client swarm to a server
// swarm, and the memory of one hub swarm holding 50 connections, Rust vs JS hyperswarm 4.17, as
// ratios. The 50 clients are 50 client-only swarms in one helper process of the hub's own
// implementation (Rust clients for the Rust hub, JS clients for the JS hub; `--clients rust|js`
// uses one implementation for both hubs).
//
//   node bench/swarm-bench.js [--runs N] [--conns N] [--clients matched|rust|js]
const { spawn } = require('child_process')
const path = require('path')
const readline = require('readline')

const root = path.join(__dirname, '..')
const target = path.resolve(root, process.env.CARGO_TARGET_DIR || 'target')
function opt (name, dflt) {
  const i = process.argv.indexOf(name)
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1] : dflt
}
const RUNS = Math.max(1, Number(opt('--runs', 7)))
const CONNS = Math.max(1, Number(opt('--conns', 50)))
const CLIENTS = opt('--clients', 'matched')
if (!['matched', 'rust', 'js'].includes(CLIENTS)) fail('--clients must be matched, rust or js')
const HUB_TIMEOUT_MS = 90000

const children = new Set()

function killAll () {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null) {
      try { c.stdin.end() } catch {}
      try { c.kill('SIGKILL') } catch {}
    }
  }
  children.clear()
}
process.on('exit', killAll)
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => fail('interrupted by ' + sig))

function fail (msg) {
  console.error('swarm-bench: error: ' + msg)
  killAll()
  process.exit(1)
}

function proc (name, cmd, args, env = process.env) {
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'inherit'], env })
  children.add(child)
  child.stdin.on('error', () => {})
  const lines = []
  const waiters = []
  let exited = null
  const wake = () => waiters.splice(0).forEach((w) => w())
  readline.createInterface({ input: child.stdout }).on('line', (l) => { lines.push(l); wake() })
  child.on('exit', (code, sig) => { exited = sig || code; children.delete(child); wake() })
  child.on('error', (e) => { exited = e.message; children.delete(child); wake() })
  // Resolves with the first line starting with prefix; rejects on an `error` line, an exit
  // first, or after ms.
  const line = (prefix, ms) => new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name}: no "${prefix.trim()}" within ${ms / 1000} s`)), ms)
    const check = () => {
      const l = lines.find((x) => x.startsWith(prefix))
      if (l) { clearTimeout(timer); return resolve(l) }
      const e = lines.find((x) => x.startsWith('error'))
      if (e) { clearTimeout(timer); return reject(new Error(`${name}: ${e}`)) }
      if (exited !== null) { clearTimeout(timer); return reject(new Error(`${name} exited (${exited}) before "${prefix.trim()}"`)) }
      waiters.push(check)
    }
    check()
  })
  const stop = () => new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null || !children.has(child)) return resolve()
    const t = setTimeout(() => { try { child.kill('SIGKILL') } catch {} }, 3000)
    child.once('exit', () => { clearTimeout(t); resolve() })
    child.stdin.end() // our peers exit when stdin closes
    try { child.kill('SIGTERM') } catch {}
  })
  return { child, line, stop }
}

const bins = {
  rust: (name, args) => proc(name, path.join(target, 'release/swarm-bench'), args),
  js: (name, args) => proc(name, process.execPath, ['--expose-gc', path.join(__dirname, 'swarm-bench-js.js'), ...args])
}

const hex = (b, n = 32) => b.toString(16).padStart(2, '0').repeat(n)
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

async function latencyRun (impl, boot, topic, serverKey, r) {
  const seed = hex(impl === 'rust' ? 0x40 + r : 0x80 + r)
  const c = bins[impl](`${impl} client #${r + 1}`, ['client', '--bootstrap', boot, '--topic', topic, '--seed', seed])
  try {
    const f = (await c.line('connect_ms ', 45000)).split(' ')
    if (f[3] !== serverKey) throw new Error(`${impl} client #${r + 1} connected to ${f[3]}, not the server ${serverKey}`)
    return Number(f[1])
  } finally {
    await c.stop()
  }
}

async function hub (impl, clientImpl, boot, tag) {
  const topic = hex(tag)
  const common = ['--bootstrap', boot, '--topic', topic]
  const h = bins[impl](`${impl} hub`, ['hub', ...common, '--seed', hex(tag + 1), '--expect', String(CONNS)])
  let cl = null
  try {
    const rss0 = Number((await h.line('rss0_kib ', 45000)).split(' ')[1])
    cl = bins[clientImpl](`${clientImpl} clients`, ['clients', ...common, '--seed-prefix', hex(tag + 2), '--count', String(CONNS), '--batch', '10'])
    const fields = (await h.line('rss_kib ', HUB_TIMEOUT_MS)).split(' ')
    const rss = Number(fields[1])
    const conns = Number(fields[3])
    if (conns < CONNS) throw new Error(`${impl} hub: only ${conns} of ${CONNS} connections at the measurement`)
    return { rss0, rss, conns }
  } finally {
    if (cl) await cl.stop()
    await h.stop()
  }
}

async function main () {
  const tn = proc('testnet', path.join(target, 'release/p2pswarm'), ['testnet', '--nodes', '10'],
    { ...process.env, RUST_LOG: process.env.RUST_LOG || 'warn' })
  const boot = (await tn.line('bootstrap ', 30000)).split(' ')[1]
  if (!/^127\.0\.0\.1:\d+$/.test(boot)) throw new Error('testnet bootstrap is not on loopback: ' + boot)

  // 1. join → connection latency: one server per implementation, a fresh client process (fresh
  // key) per run, runs interleaved Rust / JS.
  const servers = {}
  const serverKeys = {}
  const topics = { rust: hex(0x11), js: hex(0x12) }
  for (const [impl, seed] of [['rust', 0x21], ['js', 0x22]]) {
    servers[impl] = bins[impl](`${impl} server`, ['server', '--bootstrap', boot, '--topic', topics[impl], '--seed', hex(seed)])
    serverKeys[impl] = (await servers[impl].line('joined ', 45000)).split(' ')[1]
  }
  const lat = { rust: [], js: [] }
  for (let r = 0; r < RUNS; r++) {
    for (const impl of ['rust', 'js']) lat[impl].push(await latencyRun(impl, boot, topics[impl], serverKeys[impl], r))
  }
  for (const impl of ['rust', 'js']) await servers[impl].stop()

  // 2. memory of one hub swarm holding CONNS connections.
  const mem = {}
  for (const [impl, tag] of [['rust', 0xa0], ['js', 0xb0]]) {
    const clientImpl = CLIENTS === 'matched' ? impl : CLIENTS
    mem[impl] = await hub(impl, clientImpl, boot, tag)
    mem[impl].clientImpl = clientImpl
  }
  await tn.stop()

  const ms = (x) => x.toFixed(1)
  const mib = (k) => (k / 1024).toFixed(1)
  console.log(`Swarm on a local 10-node testnet: join → connection latency (median of ${RUNS}), hub with ${CONNS} connections`)
  for (const impl of ['rust', 'js']) {
    const m = mem[impl]
    const per = (m.rss - m.rss0) / CONNS
    console.log(`  ${impl.padEnd(5)} join→connection ${ms(median(lat[impl]))} ms (runs: ${lat[impl].map(ms).join(', ')}); ` +
      `hub RSS ${mib(m.rss0)} MiB joined → ${mib(m.rss)} MiB with ${m.conns} connections (${m.clientImpl} clients), ${per.toFixed(1)} KiB/connection`)
  }
  const r = mem.rust
  const j = mem.js
  const perR = (r.rss - r.rss0) / CONNS
  const perJ = (j.rss - j.rss0) / CONNS
  console.log(`ratio Rust/JS: join→connection ${(median(lat.rust) / median(lat.js)).toFixed(2)}x (target <= 1), ` +
    `hub memory ${(r.rss / j.rss).toFixed(3)}x (target <= 0.25), per connection ${perJ > 0 ? (perR / perJ).toFixed(3) + 'x' : 'n/a'}`)
  killAll()
  process.exit(0)
}
main().catch((e) => fail(e.message))
