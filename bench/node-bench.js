'use strict'
// Node benchmark: the p2pswarm addon vs JS hyperswarm 4.17, each between two Node processes on
// one local testnet (started by the addon). Prints throughput (MiB/s over --mib MiB, best of
// --runs) and the memory a hub process gains per connection (--conns peers; the median of --runs
// fresh hubs, each sample printed: one sample swings by +-20 KiB/conn for JS), then the ratios.
//   node bench/node-bench.js [--mib 128] [--runs 3] [--conns 20]
const path = require('path')
const crypto = require('crypto')
const readline = require('readline')
const { spawn } = require('child_process')
const createTestnet = require(path.join(__dirname, '../bindings/node/testnet'))

function arg (name, dflt) {
  const i = process.argv.indexOf(name)
  return i > 0 ? Number(process.argv[i + 1]) : dflt
}
const MIB = arg('--mib', 128)
const RUNS = arg('--runs', 3)
const CONNS = arg('--conns', 20)
const PEER = path.join(__dirname, 'node-peer.js')

function start (args) {
  const child = spawn(process.execPath, ['--expose-gc', PEER, ...args], { stdio: ['pipe', 'pipe', 'inherit'] })
  const lines = []
  const waiters = []
  readline.createInterface({ input: child.stdout }).on('line', (line) => {
    if (line.startsWith('error')) console.error(args[0] + ' ' + args[1] + ': ' + line)
    lines.push(line)
    for (const w of waiters.slice()) {
      const i = lines.findIndex((l) => w.re.test(l))
      if (i >= 0) { waiters.splice(waiters.indexOf(w), 1); w.resolve(lines.splice(i, 1)[0]) }
    }
  })
  child.wait = (re, ms = 120000) => {
    const i = lines.findIndex((l) => re.test(l))
    if (i >= 0) return Promise.resolve(lines.splice(i, 1)[0])
    return new Promise((resolve, reject) => {
      waiters.push({ re, resolve })
      setTimeout(() => reject(new Error(args.slice(0, 2).join(' ') + ': timed out waiting for ' + re)), ms).unref()
    })
  }
  child.stop = () => new Promise((resolve) => { child.on('exit', resolve); child.stdin.end(); setTimeout(() => child.kill('SIGKILL'), 5000).unref() })
  return child
}

async function throughput (impl, bootstrap) {
  let best = 0
  for (let r = 0; r < RUNS; r++) {
    const topic = crypto.randomBytes(32).toString('hex')
    const common = ['--bootstrap', bootstrap, '--topic', topic, '--bytes', String(MIB * 1024 * 1024)]
    const recv = start([impl, 'recv', ...common])
    await recv.wait(/^ready$/)
    const send = start([impl, 'send', ...common])
    const done = await recv.wait(/^done /, 240000)
    const ms = Number(done.split(' ')[1])
    const mibs = MIB / (ms / 1000)
    best = Math.max(best, mibs)
    await Promise.all([recv.stop(), send.stop()])
  }
  return best
}

async function memory (impl, bootstrap) {
  const topic = crypto.randomBytes(32).toString('hex')
  const hub = start([impl, 'hub', '--bootstrap', bootstrap, '--topic', topic])
  const before = Number((await hub.wait(/^ready /)).split(' ')[1])
  const peers = start([impl, 'peers', '--bootstrap', bootstrap, '--topic', topic, '--count', String(CONNS)])
  await peers.wait(/^connected /, 180000)
  await new Promise((resolve) => setTimeout(resolve, 1000))
  hub.stdin.write('rss\n')
  const [, rss, conns] = (await hub.wait(/^rss /)).split(' ').map(Number)
  await Promise.all([hub.stop(), peers.stop()])
  return { before, after: rss, conns, perConn: (rss - before) / Math.max(1, conns) }
}

async function main () {
  const tn = await createTestnet(3)
  const bootstrap = tn.bootstrap[0].host + ':' + tn.bootstrap[0].port
  const res = {}
  for (const impl of ['addon', 'js']) {
    const tp = await throughput(impl, bootstrap)
    const samples = []
    for (let r = 0; r < RUNS; r++) samples.push(await memory(impl, bootstrap))
    samples.sort((a, b) => a.perConn - b.perConn)
    const mem = samples[Math.floor(samples.length / 2)]
    res[impl] = { tp, mem }
    const all = samples.map((m) => m.perConn.toFixed(0)).join(' ')
    console.log(`${impl.padEnd(5)}  throughput ${tp.toFixed(1)} MiB/s (best of ${RUNS}, ${MIB} MiB)   hub RSS ${mem.before} -> ${mem.after} KiB with ${mem.conns} connections: ${mem.perConn.toFixed(0)} KiB/connection (median of ${RUNS}: ${all})`)
  }
  const tpRatio = res.addon.tp / res.js.tp
  const memRatio = res.addon.mem.perConn / res.js.mem.perConn
  console.log(`ratio  throughput addon/js ${tpRatio.toFixed(2)}x (target >= 2.5x)   memory per connection addon/js ${memRatio.toFixed(2)} (target <= 0.5)`)
  await tn.destroy()
  process.exit(0)
}
main().catch((e) => { console.error(e); process.exit(1) })
