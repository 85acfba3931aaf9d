'use strict'
// Runs inside a private network namespace (see interop.test.js): an addon swarm and a real JS
// hyperswarm 4.17 (tests/interop/js/hyperswarm-peer.js) find each other on a local testnet and
// exchange messages, with the addon as client and then as server. Exit 0 on success.
const path = require('path')
const crypto = require('crypto')
const readline = require('readline')
const { spawn } = require('child_process')
const P2Pswarm = require('..')
const createTestnet = require('../testnet')

const PEER = path.join(__dirname, '..', '..', '..', 'tests', 'interop', 'js', 'hyperswarm-peer.js')

function startJs (bootstrap, topic, role) {
  const seed = crypto.randomBytes(32)
  const child = spawn(process.execPath, [PEER, '--bootstrap', bootstrap, '--topic', topic.toString('hex'), '--seed', seed.toString('hex'), '--' + role], { stdio: ['pipe', 'pipe', 'inherit'] })
  const lines = []
  const waiters = []
  readline.createInterface({ input: child.stdout }).on('line', (line) => {
    lines.push(line)
    for (const w of waiters.slice()) if (w.re.test(line)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(line) }
  })
  function wait (re, ms = 30000) {
    const hit = lines.find((l) => re.test(l))
    if (hit) return Promise.resolve(hit)
    return new Promise((resolve, reject) => {
      const w = { re, resolve }
      waiters.push(w)
      setTimeout(() => reject(new Error('js peer: timed out waiting for ' + re + '; got: ' + lines.join(' | '))), ms)
    })
  }
  return { child, wait, seed }
}

async function round (tn, bootstrap, addonRole) {
  const topic = crypto.randomBytes(32)
  const jsRole = addonRole === 'client' ? 'server' : 'client'
  const swarm = new P2Pswarm({ bootstrap: tn.bootstrap })
  const gotData = new Promise((resolve) => {
    swarm.on('connection', (sock, info) => {
      sock.on('error', () => {})
      sock.on('data', (d) => resolve({ text: d.toString(), info, sock }))
      sock.write('hello from addon')
    })
  })
  let js
  if (addonRole === 'server') {
    await swarm.join(topic, { server: true, client: false }).flushed()
    js = startJs(bootstrap, topic, jsRole)
  } else {
    js = startJs(bootstrap, topic, jsRole)
    await js.wait(/^joined$/)
    swarm.join(topic, { server: false, client: true })
  }
  const timer = setTimeout(() => { console.error('timeout in round ' + addonRole); process.exit(2) }, 60000)
  const { text, info } = await gotData
  if (text !== 'hello from js') throw new Error('addon got ' + JSON.stringify(text))
  const seenByJs = (await js.wait(/^connection /)).split(' ')[1]
  if (seenByJs !== swarm.keyPair.publicKey.toString('hex')) throw new Error('the JS peer saw another key')
  if (!info.publicKey.equals(P2Pswarm.keyPair(js.seed).publicKey)) throw new Error('the addon saw another key')
  await js.wait(/^data \S+ hello from addon$/)
  clearTimeout(timer)
  js.child.stdin.write('exit\n')
  await js.wait(/^bye$/)
  await swarm.destroy()
  console.log('ok addon-' + addonRole + ' <-> js-' + jsRole)
}

async function main () {
  const tn = await createTestnet(3)
  const bootstrap = tn.bootstrap[0].host + ':' + tn.bootstrap[0].port
  await round(tn, bootstrap, 'client')
  await round(tn, bootstrap, 'server')
  await tn.destroy()
  process.exit(0)
}
main().catch((e) => { console.error(e); process.exit(1) })
