#!/usr/bin/env node
'use strict'
// Single-stream UDX throughput between two processes on loopback, for every pairing of the Rust
// peer (target/release/udx-peer) and udx-native 1.21.3 (tests/interop/js/udx-peer.js), measured
// in the same run; prints MB/s, CPU seconds per GiB (sender + receiver) and the ratios to JS↔JS.
//
//   node bench/udx-bench.js [--bytes N] [--runs R]      (bench/run-udx.sh builds and runs it)

const { spawn } = require('child_process')
const path = require('path')
const readline = require('readline')

const root = path.join(__dirname, '..')
const RUST = path.join(root, 'target/release/udx-peer')
const JS = path.join(root, 'tests/interop/js/udx-peer.js')

function arg (name, def) {
  const i = process.argv.indexOf(name)
  return i > 0 ? Number(process.argv[i + 1]) : def
}
const BYTES = arg('--bytes', 256 * 1024 * 1024)
const RUNS = arg('--runs', 3)

function peer (kind, args) {
  const cmd = kind === 'rust' ? RUST : process.execPath
  const argv = kind === 'rust' ? args : [JS, ...args]
  const child = spawn(cmd, argv, { stdio: ['pipe', 'pipe', 'pipe'] })
  const lines = []
  let cpu = null
  let waiter = null
  readline.createInterface({ input: child.stdout }).on('line', (l) => {
    lines.push(l)
    if (waiter) waiter()
  })
  readline.createInterface({ input: child.stderr }).on('line', (l) => {
    const m = /^cpu user_us=(\d+) sys_us=(\d+)/.exec(l)
    if (m) cpu = (Number(m[1]) + Number(m[2])) / 1e6
  })
  const exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)))
  const line = (prefix) => new Promise((resolve, reject) => {
    const check = () => {
      const l = lines.find((x) => x.startsWith(prefix))
      if (l) return resolve(l)
      if (child.exitCode !== null) return reject(new Error(kind + ' peer exited: ' + lines.join(' | ')))
    }
    waiter = check
    check()
    child.on('exit', check)
  })
  return { child, line, exited, cpu: () => cpu, lines }
}

async function once (senderKind, receiverKind) {
  const timeout = ['--timeout-ms', '300000', '--data', 'block']
  const a = peer(senderKind, ['--local-id', '1', '--remote-id', '2', '--role', 'a', '--bytes', String(BYTES), '--recv-bytes', '0', ...timeout])
  const b = peer(receiverKind, ['--local-id', '2', '--remote-id', '1', '--role', 'b', '--bytes', '0', '--recv-bytes', String(BYTES), ...timeout])
  const pa = (await a.line('bound ')).split(' ')[1]
  const pb = (await b.line('bound ')).split(' ')[1]
  const t0 = process.hrtime.bigint()
  b.child.stdin.write('connect 127.0.0.1:' + pa + '\n')
  a.child.stdin.write('connect 127.0.0.1:' + pb + '\n')
  await Promise.all([b.line('done '), a.line('done ')])
  const secs = Number(process.hrtime.bigint() - t0) / 1e9
  const [ca, cb] = await Promise.all([a.exited, b.exited])
  if (ca !== 0 || cb !== 0) throw new Error('peer failed: ' + a.lines.join(' | ') + ' / ' + b.lines.join(' | '))
  return { mbps: BYTES / secs / 1e6, cpuPerGiB: (a.cpu() + b.cpu()) / (BYTES / 2 ** 30), secs }
}

function median (xs) {
  const s = [...xs].sort((x, y) => x - y)
  return s[Math.floor(s.length / 2)]
}

async function main () {
  const pairs = [['rust', 'rust'], ['rust', 'js'], ['js', 'rust'], ['js', 'js']]
  const results = {}
  console.log(`UDX single stream, ${BYTES / 2 ** 20} MiB one way over loopback, median of ${RUNS} runs`)
  for (const [s, r] of pairs) {
    const runs = []
    for (let i = 0; i < RUNS; i++) runs.push(await once(s, r))
    const res = { mbps: median(runs.map((x) => x.mbps)), cpu: median(runs.map((x) => x.cpuPerGiB)) }
    results[s + '→' + r] = res
    console.log(`  ${(s + ' → ' + r).padEnd(14)} ${res.mbps.toFixed(0).padStart(6)} MB/s   ${res.cpu.toFixed(2).padStart(6)} CPU-s/GiB`)
  }
  const js = results['js→js']
  const rr = results['rust→rust']
  console.log(`ratio Rust↔Rust / JS↔JS: throughput ${(rr.mbps / js.mbps).toFixed(2)}×, CPU per GiB ${(rr.cpu / js.cpu).toFixed(2)}× (target ≥ 3× and ≤ 0.33×)`)
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
