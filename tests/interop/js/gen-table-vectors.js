#!/usr/bin/env node
'use strict'

// Reference scenarios for the Rust routing table (kademlia-routing-table 1.0.6) and NAT sampler
// (nat-sampler 1.0.1), both exactly as dht-rpc 6.27.0 uses them.
//
//   node gen-table-vectors.js [--seed S] [--count N]   -> one JSON object on stdout
//
// S is a decimal integer (default 1); the same S always gives the same output. N scales the
// number of scenarios (default 8).
//
// Output:
// {
//   "seed": "S",
//   "tables": [ { "k": 20, "localId": hex, "ops": [op, ...] }, ... ],
//   "nat":    [ { "name": str, "steps": [ { "host": "a.b.c.d", "port": n,
//                 "hits": n, "outHost": str|null, "outPort": n, "size": n, "threshold": n } ] } ]
// }
// Table ops (every op also carries "size" = table.size afterwards):
//   { "op": "add", "id": hex, "result": "added"|"updated"|"full"|"own", "ok": bool }
//        ok = JS table.add() return value; "full" = the row emitted 'full'; "own" = the id equals
//        the local id, refused the way dht-rpc's _addNode does (table.add is not called)
//   { "op": "remove", "id": hex, "ok": bool }
//   { "op": "get", "id": hex, "found": bool }
//   { "op": "closest", "target": hex, "n": n|null, "ids": [hex, ...] }   n null = toArray()
//   { "op": "random", "value": "u64 decimal", "id": hex|null }
//        Math.random() is stubbed to return value / 2^64 (value has <= 40 significant bits so
//        Math.random() * size is exact)
//   { "op": "rebuild", "id": hex, "dropped": [hex, ...], "skippedOwn": hex|null }
//        dht-rpc's id change (index.js, "copy over the old routing table"): toArray() re-added
//        into new Table(id); "dropped" = add() returned false, "skippedOwn" = equal to new id

const Table = require('kademlia-routing-table')
const NatSampler = require('nat-sampler')
const b4a = require('b4a')

// ---------------------------------------------------------------------------------------------
// deterministic PRNG: splitmix64 over BigInt

const MASK64 = (1n << 64n) - 1n

class Rng {
  constructor (seed) {
    this.state = BigInt(seed) & MASK64
  }

  u64 () {
    this.state = (this.state + 0x9e3779b97f4a7c15n) & MASK64
    let z = this.state
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64
    return z ^ (z >> 31n)
  }

  // uniform-enough integer in [lo, hi] (small ranges)
  int (lo, hi) {
    return lo + Number(this.u64() % BigInt(hi - lo + 1))
  }

  chance (p) {
    return this.int(0, 999) < p * 1000
  }

  pick (arr) {
    return arr[this.int(0, arr.length - 1)]
  }

  bytes (n) {
    const b = b4a.alloc(n)
    for (let i = 0; i < n; i++) b[i] = Number(this.u64() & 0xffn)
    return b
  }
}

function parseArgs (argv) {
  const args = { seed: '1', count: 8 }
  for (let i = 2; i < argv.length; i++) {
    if (argv[i] === '--seed') args.seed = argv[++i]
    else if (argv[i] === '--count') args.count = Number(argv[++i])
    else throw new Error('unknown argument ' + argv[i])
  }
  if (!/^[0-9]+$/.test(args.seed)) throw new Error('--seed must be a decimal integer')
  if (!(args.count >= 1)) throw new Error('--count must be >= 1')
  return args
}

const hex = (b) => b4a.toString(b, 'hex')

// ---------------------------------------------------------------------------------------------
// routing table

// an id sharing exactly `shared` leading bits with `local` (shared < 256), rest random
function idInRow (rng, local, shared) {
  const id = rng.bytes(32)
  const byte = shared >> 3
  const bit = 7 - (shared & 7)
  for (let i = 0; i < byte; i++) id[i] = local[i]
  const above = (0xff << (bit + 1)) & 0xff
  const below = (1 << bit) - 1
  id[byte] = (local[byte] & above) | (~local[byte] & (1 << bit)) | (id[byte] & below)
  return id
}

function randomRow (rng) {
  // mostly low rows (overflowing), sometimes anything, sometimes the very last rows
  const r = rng.int(0, 99)
  if (r < 60) return rng.int(0, 6)
  if (r < 90) return rng.int(0, 255)
  return rng.int(248, 255)
}

function tableScenario (rng, index) {
  const kinds = [20, 20, 3, 5, 1, 20, 8, 2]
  const k = kinds[index % kinds.length]
  let local
  const style = index % 4
  if (style === 0) local = rng.bytes(32)
  else if (style === 1) local = b4a.alloc(32, 0)
  else if (style === 2) local = b4a.alloc(32, 0xff)
  else {
    local = rng.bytes(32)
    local[0] = 0x80
  }

  let table = new Table(b4a.from(local), k === 20 ? undefined : { k })
  let full = null
  const watch = (t) => t.on('row', (row) => row.on('full', (node) => { full = node }))
  watch(table)

  const known = [] // every id ever offered, for duplicates / removes / gets
  const ops = []

  const freshId = () => {
    const r = rng.int(0, 99)
    if (r < 40) return rng.bytes(32) // natural distribution: half of them in row 0
    if (r < 95) return idInRow(rng, table.id, randomRow(rng))
    // complement of the local id, or differing only in the last bit
    const id = b4a.from(table.id)
    if (r < 97) for (let i = 0; i < 32; i++) id[i] ^= 0xff
    else id[31] ^= 1
    return id
  }

  const doAdd = (id) => {
    if (b4a.equals(id, table.id)) {
      ops.push({ op: 'add', id: hex(id), result: 'own', ok: false, size: table.size })
      return
    }
    const had = table.has(id)
    full = null
    const ok = table.add({ id: b4a.from(id) })
    let result
    if (ok) result = had ? 'updated' : 'added'
    else if (full !== null && b4a.equals(full.id, id)) result = 'full'
    else throw new Error('add returned false without a full event')
    ops.push({ op: 'add', id: hex(id), result, ok, size: table.size })
  }

  const steps = rng.int(60, 260)
  for (let s = 0; s < steps; s++) {
    const r = rng.int(0, 99)
    if (r < 55 || known.length === 0) {
      const id = freshId()
      known.push(id)
      doAdd(id)
    } else if (r < 65) {
      doAdd(rng.pick(known)) // duplicate (updated, or full again, or re-added after removal)
    } else if (r < 67) {
      doAdd(b4a.from(table.id))
    } else if (r < 74) {
      const id = rng.chance(0.8) ? rng.pick(known) : rng.bytes(32)
      const ok = table.remove(id)
      ops.push({ op: 'remove', id: hex(id), ok, size: table.size })
    } else if (r < 78) {
      const id = rng.chance(0.8) ? rng.pick(known) : freshId()
      ops.push({ op: 'get', id: hex(id), found: table.get(id) !== null, size: table.size })
    } else if (r < 93) {
      let target
      const t = rng.int(0, 9)
      if (t < 4) target = rng.bytes(32)
      else if (t < 7) target = idInRow(rng, table.id, randomRow(rng))
      else if (t < 8) target = b4a.from(table.id)
      else target = b4a.from(rng.pick(known))
      const nKind = rng.int(0, 9)
      const n = nKind < 1 ? null : nKind < 4 ? 20 : nKind < 5 ? 1 : rng.int(1, 60)
      const res = n === null ? table.toArray() : table.closest(target, n)
      ops.push({
        op: 'closest',
        target: hex(n === null ? table.id : target),
        n,
        ids: res.map((node) => hex(node.id)),
        size: table.size
      })
    } else if (r < 98) {
      // 40 significant bits, shifted to the top of a u64
      const value = (rng.u64() >> 24n) << 24n
      const saved = Math.random
      Math.random = () => Number(value) / 2 ** 64
      let node
      try {
        node = table.random()
      } finally {
        Math.random = saved
      }
      ops.push({ op: 'random', value: value.toString(), id: node ? hex(node.id) : null, size: table.size })
    } else {
      // id change: sometimes to a stored node's id, sometimes to a near or random id
      let id
      const t = rng.int(0, 2)
      const nodes = table.toArray()
      if (t === 0 && nodes.length > 0) id = b4a.from(rng.pick(nodes).id)
      else if (t === 1) id = idInRow(rng, table.id, rng.int(0, 3))
      else id = rng.bytes(32)

      const old = table.toArray()
      table = new Table(id, k === 20 ? undefined : { k })
      watch(table) // (dht-rpc attaches its listener afterwards; irrelevant for the table's state)
      const dropped = []
      let skippedOwn = null
      for (const node of old) {
        if (b4a.equals(node.id, id)) {
          skippedOwn = hex(node.id)
          continue
        }
        if (!table.add(node)) dropped.push(hex(node.id))
      }
      ops.push({ op: 'rebuild', id: hex(id), dropped, skippedOwn, size: table.size })
    }
  }

  ops.push({ op: 'closest', target: hex(table.id), n: null, ids: table.toArray().map((n) => hex(n.id)), size: table.size })
  return { k, localId: hex(local), ops }
}

// ---------------------------------------------------------------------------------------------
// nat sampler

function randHost (rng) {
  return [rng.int(1, 223), rng.int(0, 255), rng.int(0, 255), rng.int(1, 254)].join('.')
}

function natScenario (rng, index) {
  const hosts = [randHost(rng), randHost(rng), randHost(rng)]
  const ports = [rng.int(1, 65535), rng.int(1, 65535), rng.int(1, 65535)]
  const len = rng.int(1, 70)
  const kinds = ['consistent', 'randomized', 'mixed', 'switch', 'cycle', 'noisy', 'portzero', 'few']
  const name = kinds[index % kinds.length]
  const obs = []
  for (let i = 0; i < len; i++) {
    switch (name) {
      case 'consistent':
        obs.push([hosts[0], ports[0]])
        break
      case 'randomized':
        obs.push([hosts[0], rng.int(1, 65535)])
        break
      case 'mixed':
        obs.push([rng.pick(hosts), rng.chance(0.5) ? rng.pick(ports) : rng.int(1, 65535)])
        break
      case 'switch': // address change half way
        obs.push(i < len / 2 ? [hosts[0], ports[0]] : [hosts[1], ports[1]])
        break
      case 'cycle': { // period 5 defeats the 4-entry look-back
        const c = i % 5
        obs.push([hosts[c % 3], c < 3 ? ports[0] : ports[1]])
        break
      }
      case 'noisy': // mostly one address, occasional outliers
        obs.push(rng.chance(0.8) ? [hosts[0], ports[0]] : [rng.pick(hosts), rng.pick(ports)])
        break
      case 'portzero':
        obs.push([rng.chance(0.7) ? hosts[0] : hosts[1], rng.chance(0.5) ? 0 : ports[0]])
        break
      default: // few distinct values in random order
        obs.push([rng.pick(hosts.slice(0, 2)), rng.pick(ports.slice(0, 2))])
    }
  }

  const s = new NatSampler()
  const steps = obs.map(([host, port]) => {
    const hits = s.add(host, port)
    return { host, port, hits, outHost: s.host, outPort: s.port, size: s.size, threshold: s._threshold }
  })
  return { name, steps }
}

// ---------------------------------------------------------------------------------------------

function main () {
  const args = parseArgs(process.argv)
  const rng = new Rng(args.seed)
  const out = { seed: args.seed, tables: [], nat: [] }
  for (let i = 0; i < args.count; i++) out.tables.push(tableScenario(rng, i))
  for (let i = 0; i < args.count * 3; i++) out.nat.push(natScenario(rng, i))
  process.stdout.write(JSON.stringify(out) + '\n')
}

main()
