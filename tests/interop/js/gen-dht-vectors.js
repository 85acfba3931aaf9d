#!/usr/bin/env node
'use strict'

// dht-rpc reference-vector generator for the p2pswarm interop tests (spec dht-rpc.md §3, §4, §7).
//
//   node gen-dht-vectors.js [--count N] [--seed S]   -> one JSON object on stdout
//   node gen-dht-vectors.js --selftest                -> checks the fixed vectors of the spec, exit 0/1
//
// Every datagram, id and token is produced by the installed dht-rpc 6.27.0 itself, not by a
// re-implementation: its IO class (lib/io.js) is instantiated with stand-in sockets, table and
// udx objects, and
//   * requests are encoded by Request#_encodeRequest, responses by Request#_sendReply (the code
//     behind reply() / error()), captured from the stand-in socket's trySend();
//   * requests are decoded by Request.decode, responses by IO#onmessage's response path
//     (decodeReply is module-private; a stand-in in-flight request with the right tid catches
//     the decoded reply);
//   * node ids come from lib/peer.js id(), tokens from IO#token(), rotation from IO#_drain(),
//     and the token check from IO#onmessage (accepted -> onrequest, rejected -> the
//     INVALID_TOKEN error reply it sends).
// Randomness comes from a small deterministic PRNG (same construction as gen-vectors.js with
// its own domain string), so a fixed --seed always gives the same output.
//
// JSON format (binary values are lowercase hex, "" = zero bytes; addresses are
// {"host": "a.b.c.d", "port": n}; 64-bit integers `command` and `error` are decimal strings):
// {
//  "seed": "0x…" | "123",
//  "requests":  [{tid, to, id|null, token|null, internal, command, target|null, value|null, hex}],
//  "responses": [{tid, to, id|null, token|null, tokenSecret|null, closerNodes: [addr…],
//                 error, value|null, hex}],
//       tokenSecret = the S1 the token was computed with (token = H256k(S1, to.host))
//  "decodes":   [{case, from, hex, result}], result = null (JS drops the datagram) or
//       {type: "request", tid, to, validId, token, internal, command, target, value} or
//       {type: "response", tid, to, validId, token, closerNodes (null = flag not set), error, value}
//       validId = the id if it equals H256(from), else null (what dht-rpc keeps as from.id)
//  "nodeIds":   [{host, port, id}]
//  "tokens":    [{previous, current, rotations, afterPrevious, afterCurrent,
//                 hosts: [{host, current, previous}]}]    (tokens after the rotations)
//  "tokenChecks": [{previous, current, rotations, from, ephemeral, tableId|null,
//                   closerNodes: [addr…], request, accepted, reply|null}]
//       secrets before `rotations` rotations, then `request` (hex) arrives from `from` on the
//       server socket; accepted = delivered to onrequest; otherwise `reply` is the INVALID_TOKEN
//       reply dht-rpc sent back.
// }

const sodium = require('sodium-universal')
const b4a = require('b4a')
const c = require('compact-encoding')
const IO = require('dht-rpc/lib/io')
const peer = require('dht-rpc/lib/peer')
const commands = require('dht-rpc/lib/commands')
const DHTError = require('dht-rpc/lib/errors')

const MAX_SAFE = 2 ** 53 - 1

// ---------------------------------------------------------------------------------------------
// helpers

const hex = (b) => b4a.toString(b, 'hex')
const hexOrNull = (b) => (b ? hex(b) : null)
const unhex = (s) => b4a.from(s.replace(/\s+/g, ''), 'hex')
const addr = (a) => ({ host: a.host, port: a.port })

function blake2b (outLen, data, key) {
  const out = b4a.alloc(outLen)
  if (key) sodium.crypto_generichash(out, data, key)
  else sodium.crypto_generichash(out, data)
  return out
}

function u64le (n) {
  const b = b4a.alloc(8)
  new DataView(b.buffer, b.byteOffset, 8).setBigUint64(0, BigInt(n), true)
  return b
}

// ---------------------------------------------------------------------------------------------
// Deterministic PRNG:
//   key     = BLAKE2b-256( utf8("p2pswarm-interop/gen-dht-vectors/v1:" + canonicalSeed) )
//   block i = BLAKE2b-512( u64le(i) ; key = key ),  i = 0, 1, 2, ...  (bytes consumed in order)
// Integers: 8 bytes u64 LE, rejection sampling (x < 2^64 - 2^64 mod span), lo + x mod span.

class Prng {
  constructor (canonicalSeed) {
    this.key = blake2b(32, b4a.from('p2pswarm-interop/gen-dht-vectors/v1:' + canonicalSeed))
    this.counter = 0
    this.pool = b4a.alloc(0)
    this.pos = 0
  }

  bytes (n) {
    const out = b4a.alloc(n)
    let off = 0
    while (off < n) {
      if (this.pos === this.pool.length) {
        this.pool = blake2b(64, u64le(this.counter++), this.key)
        this.pos = 0
      }
      const take = Math.min(n - off, this.pool.length - this.pos)
      this.pool.copy(out, off, this.pos, this.pos + take)
      this.pos += take
      off += take
    }
    return out
  }

  int (lo, hi) {
    const blo = BigInt(lo)
    const span = BigInt(hi) - blo + 1n
    const limit = (1n << 64n) - ((1n << 64n) % span)
    for (;;) {
      const x = this.bytes(8).readBigUInt64LE(0)
      if (x < limit) return Number(blo + (x % span))
    }
  }

  bool () {
    return (this.bytes(1)[0] & 1) === 1
  }

  pick (arr) {
    return arr[this.int(0, arr.length - 1)]
  }
}

function parseSeed (s) {
  if (/^[0-9]+$/.test(s)) return BigInt(s).toString(10)
  const m = /^(?:0x)?([0-9a-fA-F]+)$/.exec(s)
  if (m) return '0x' + m[1].toLowerCase()
  throw new Error('--seed must be a decimal integer or a hex string (optionally 0x-prefixed)')
}

// ---------------------------------------------------------------------------------------------
// dht-rpc harness: a real IO with stand-in sockets / table / udx

class FakeSocket {
  constructor (name) {
    this.name = name
    this.sent = []
  }

  trySend (buffer, port, host, ttl) {
    this.sent.push({ buffer: b4a.from(buffer), port, host })
  }

  take () {
    const s = this.sent
    this.sent = []
    return s
  }
}

function makeIo () {
  const udx = { watchNetworkInterfaces: () => ({ destroy () {} }) }
  const table = { id: b4a.alloc(32), nodes: [], closest () { return this.nodes } }
  const h = { accepted: null, response: null }
  const io = new IO(table, udx, {
    onrequest (req) { h.accepted = req },
    onresponse () {}
  })
  io.serverSocket = new FakeSocket('server')
  io.clientSocket = new FakeSocket('client')
  io.firewalled = false
  h.io = io
  h.table = table
  // The Request class is not exported; take it from a created request.
  const probe = io.createRequest({ host: '127.0.0.1', port: 1 }, null, true, 0, null, null, null, 0)
  h.Request = probe.constructor
  io.inflight.length = 0
  io.stats.requests.active = 0
  return h
}

const H = makeIo()

function setIdentity (id) {
  // An id is written iff the node is not ephemeral and the socket is the server socket.
  H.io.ephemeral = id === null
  if (id !== null) H.table.id = id
}

function setSecrets (previous, current) {
  H.io._secrets = [b4a.from(previous), b4a.from(current)]
  H.io._rotateSecrets = 10
}

function rotate (n) {
  for (let i = 0; i < 10 * n; i++) H.io._drain()
}

function encodeRequest ({ tid, to, id, token, internal, command, target, value }) {
  setIdentity(id)
  const req = new H.Request(H.io, H.io.serverSocket, tid, null, to, token, internal, command, target, value, null, 0)
  return b4a.from(req._encodeRequest(token, value, to, H.io.serverSocket))
}

// Through Request#_sendReply, i.e. what reply()/error() send. `secret` is the S1 used for the
// token; closer nodes come from the stand-in table (a target is set when there are any).
function encodeResponse ({ tid, to, id, withToken, secret, closerNodes, error, value }) {
  setIdentity(id)
  setSecrets(b4a.alloc(32), secret)
  H.table.nodes = closerNodes
  const target = closerNodes.length > 0 ? b4a.alloc(32, 0xee) : null
  const req = new H.Request(H.io, H.io.serverSocket, tid, { id: null, ...to }, to, null, true, 0, target, null, null, 0)
  req._sendReply(error, value, withToken, true, to, H.io.serverSocket)
  const sent = H.io.serverSocket.take()
  if (sent.length !== 1) throw new Error('expected one reply datagram')
  if (sent[0].host !== to.host || sent[0].port !== to.port) throw new Error('reply sent elsewhere')
  H.table.nodes = []
  return sent[0].buffer
}

// Decodes one datagram as dht-rpc's receive path does; null = dropped.
function decode (buffer, from) {
  if (buffer.byteLength < 2) return null
  if (buffer[0] === 0x03) {
    const f = { id: null, host: from.host, port: from.port }
    const state = { start: 1, end: buffer.byteLength, buffer }
    const req = H.Request.decode(H.io, H.io.serverSocket, f, state)
    if (req === null) return null
    return {
      type: 'request',
      tid: req.tid,
      to: addr(req.to),
      validId: hexOrNull(req.from.id),
      token: hexOrNull(req.token),
      internal: req.internal,
      command: String(req.command),
      target: hexOrNull(req.target),
      value: hexOrNull(req.value)
    }
  }
  if (buffer[0] === 0x13) {
    // Route the reply to a stand-in in-flight request with its tid (decodeReply is private).
    let tid
    try {
      const st = { start: 1, end: buffer.byteLength, buffer }
      c.uint.decode(st)
      tid = c.uint16.decode(st)
    } catch {
      tid = -1 // decodeReply fails on the same fields: nothing is delivered
    }
    let res = null
    H.io.inflight.push({
      tid,
      _timestamp: Date.now(),
      to: addr(from),
      sent: 1,
      session: null,
      _timeout: null,
      internal: false,
      command: 0,
      onresponse (r) { res = r }
    })
    H.io.stats.requests.active++
    H.io.onmessage(H.io.clientSocket, buffer, { host: from.host, port: from.port })
    if (H.io.inflight.length > 0) { // not delivered
      H.io.inflight.length = 0
      H.io.stats.requests.active--
    }
    if (res === null) return null
    return {
      type: 'response',
      tid: res.tid,
      to: addr(res.to),
      validId: hexOrNull(res.from.id),
      token: hexOrNull(res.token),
      closerNodes: res.closerNodes === null ? null : res.closerNodes.map(addr),
      error: String(res.error),
      value: hexOrNull(res.value)
    }
  }
  return null
}

// ---------------------------------------------------------------------------------------------
// random inputs

function randHost (rng) {
  const r = rng.int(0, 15)
  if (r === 0) return '127.0.0.1'
  if (r === 1) return '0.0.0.0'
  if (r === 2) return '255.255.255.255'
  const b = rng.bytes(4)
  return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`
}

function randPort (rng, min = 0) {
  const r = rng.int(0, 7)
  if (r === 0) return Math.max(min, 0)
  if (r === 1) return 65535
  if (r === 2) return 49737
  return rng.int(Math.max(min, 1), 65535)
}

function randAddr (rng, minPort = 0) {
  return { host: randHost(rng), port: randPort(rng, minPort) }
}

// A uint from every encoded size class (1, 3, 5, 9 bytes), biased towards small values.
function randUint (rng, small) {
  switch (rng.int(0, 7)) {
    case 0: return rng.int(253, 0xffff)
    case 1: return rng.int(0x10000, 0xffffffff)
    case 2: return rng.int(0x100000000, MAX_SAFE)
    case 3: return rng.pick([252, 253, 0xffff, 0x10000, 0xffffffff, 0x100000000, MAX_SAFE])
    case 4: return rng.int(0, 252)
    default: return rng.pick(small)
  }
}

function randValue (rng) {
  const r = rng.int(0, 9)
  const len = r === 0 ? 0 : r === 1 ? rng.int(253, 1200) : rng.int(1, 120)
  return rng.bytes(len)
}

function randRequestInput (rng, flags) {
  return {
    tid: rng.int(0, 65535),
    to: randAddr(rng),
    id: flags & 1 ? rng.bytes(32) : null,
    token: flags & 2 ? rng.bytes(32) : null,
    internal: (flags & 4) !== 0,
    command: randUint(rng, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]),
    target: flags & 8 ? rng.bytes(32) : null,
    value: flags & 16 ? randValue(rng) : null
  }
}

function randResponseInput (rng, flags) {
  const n = flags & 4 ? rng.int(1, 20) : 0
  const closerNodes = []
  for (let i = 0; i < n; i++) closerNodes.push({ id: null, ...randAddr(rng) })
  return {
    tid: rng.int(0, 65535),
    to: randAddr(rng),
    id: flags & 1 ? rng.bytes(32) : null,
    withToken: (flags & 2) !== 0,
    secret: rng.bytes(32),
    closerNodes,
    error: flags & 8 ? randUint(rng, [1, 2, 16, 17]) : 0,
    value: flags & 16 ? randValue(rng) : null
  }
}

function requestEntry (inp) {
  const buf = encodeRequest(inp)
  const back = decode(buf, { host: '10.0.0.1', port: 1 })
  const want = {
    type: 'request',
    tid: inp.tid,
    to: inp.to,
    validId: null,
    token: hexOrNull(inp.token),
    internal: inp.internal,
    command: String(inp.command),
    target: hexOrNull(inp.target),
    value: hexOrNull(inp.value)
  }
  if (JSON.stringify(back) !== JSON.stringify(want)) {
    throw new Error('request did not decode to its input: ' + JSON.stringify({ back, want }))
  }
  return {
    tid: inp.tid,
    to: inp.to,
    id: hexOrNull(inp.id),
    token: hexOrNull(inp.token),
    internal: inp.internal,
    command: String(inp.command),
    target: hexOrNull(inp.target),
    value: hexOrNull(inp.value),
    hex: hex(buf)
  }
}

function responseEntry (inp) {
  const buf = encodeResponse(inp)
  const token = inp.withToken ? blake2b(32, b4a.from(inp.to.host), inp.secret) : null
  const back = decode(buf, { host: '10.0.0.1', port: 1 })
  const want = {
    type: 'response',
    tid: inp.tid,
    to: inp.to,
    validId: null,
    token: hexOrNull(token),
    closerNodes: inp.closerNodes.length > 0 ? inp.closerNodes.map(addr) : null,
    error: String(inp.error),
    value: hexOrNull(inp.value)
  }
  if (JSON.stringify(back) !== JSON.stringify(want)) {
    throw new Error('response did not decode to its input: ' + JSON.stringify({ back, want }))
  }
  return {
    tid: inp.tid,
    to: inp.to,
    id: hexOrNull(inp.id),
    token: hexOrNull(token),
    tokenSecret: inp.withToken ? hex(inp.secret) : null,
    closerNodes: inp.closerNodes.map(addr),
    error: String(inp.error),
    value: hexOrNull(inp.value),
    hex: hex(buf)
  }
}

// ---------------------------------------------------------------------------------------------
// decode cases: tolerant forms and broken datagrams

function uintBytes (n) {
  const st = { start: 0, end: 0, buffer: null }
  c.uint.preencode(st, n)
  st.buffer = b4a.alloc(st.end)
  c.uint.encode(st, n)
  return st.buffer
}

// The flags varint always is one byte at offset 1 in what dht-rpc encodes.
function withFlags (buf, flagBytes) {
  return b4a.concat([buf.subarray(0, 1), flagBytes, buf.subarray(2)])
}

function nonMinimal (n, width) {
  if (width === 3) return b4a.from([0xfd, n & 0xff, 0])
  if (width === 5) return b4a.concat([b4a.from([0xfe]), u64le(n).subarray(0, 4)])
  return b4a.concat([b4a.from([0xff]), u64le(n)])
}

const FIXED_DECODES = [
  // tolerant forms
  ['non-minimal command', '03 04 0100 7f000001 0100 fd 0200 00'],
  ['non-minimal value length', '03 14 0100 7f000001 0100 01 fe 02000000 e4a2'],
  ['closer-nodes flag, empty list', '13 04 0500 7f000001 0100 00'],
  ['error flag, error 0', '13 08 0500 7f000001 0100 00'],
  ['closer flag and error 0 with trailing', '13 0c 0500 7f000001 0100 00 00 99 99'],
  ['non-minimal closer count and error', '13 0c 0500 7f000001 0100 fd 0100 7f0000010200 fe 01000000'],
  ['unknown flag bits (request)', '03 fd e4 ff 0100 7f000001 0100 00 00'],
  ['unknown flag bits (response)', '13 fe e0 00 00 80 0100 7f000001 0100'],
  ['flags as 9-byte uint', '13 ff 1000000000000000 0100 7f000001 0100 00'],
  ['empty value', '13 10 0100 7f000001 0100 00'],
  ['max command', '03 00 0100 7f000001 0100 ff ffffffffffff1f00'],
  ['port 0 in to', '03 00 0100 7f000001 0000 00'],
  // broken
  ['empty', ''],
  ['one byte request', '03'],
  ['one byte response', '13'],
  ['unknown type byte', '23 00 0100 7f000001 0100 00'],
  ['version 2 request', '02 00 0100 7f000001 0100 00'],
  ['udx-shaped', 'ff 01 00 00 01000000 00000000 00000000 00000000'],
  ['command above 2^53-1', '03 00 0100 7f000001 0100 ff 0000000000002000'],
  ['flags above 2^53-1', '03 ff 0000000000002000 0100 7f000001 0100 00'],
  ['error above 2^53-1', '13 08 0100 7f000001 0100 ff 0000000000002000'],
  ['array count above limit', '13 04 0100 7f000001 0100 fe 01001000'],
  ['array count at limit, short', '13 04 0100 7f000001 0100 fe 00001000 7f0000010100'],
  ['value length beyond end', '13 10 0100 7f000001 0100 05 0102'],
  ['missing command', '03 00 0100 7f000001 0100'],
  ['missing id', '13 01 0100 7f000001 0100 0102']
]

function decodeCases (rng, bases, count) {
  const out = []
  const push = (name, buf, from) => {
    from = from || randAddr(rng, 1)
    out.push({ case: name, from, hex: hex(buf), result: decode(buf, from) })
  }
  for (const [name, h] of FIXED_DECODES) push(name, unhex(h))

  // Valid ids: a datagram whose id is H256(from) keeps it.
  for (let i = 0; i < 4; i++) {
    const from = randAddr(rng, 1)
    const id = peer.id(from.host, from.port)
    const isReq = i % 2 === 0
    const buf = isReq
      ? encodeRequest({ ...randRequestInput(rng, rng.int(0, 31)), id })
      : encodeResponse({ ...randResponseInput(rng, rng.int(0, 31)), id })
    push(isReq ? 'valid id (request)' : 'valid id (response)', buf, from)
    const other = { host: from.host, port: from.port === 65535 ? 1 : from.port + 1 }
    push(isReq ? 'id of another port (request)' : 'id of another port (response)', buf, other)
  }

  for (let i = 0; i < count; i++) {
    const base = rng.pick(bases)
    const f = base[1]
    switch (rng.int(0, 6)) {
      case 0:
        push('trailing bytes', b4a.concat([base, rng.bytes(rng.int(1, 8))]))
        break
      case 1:
        push('non-minimal flags', withFlags(base, nonMinimal(f, rng.pick([3, 5, 9]))))
        break
      case 2:
        push('unknown flag bits', withFlags(base, uintBytes(f + 32 * rng.int(1, 2 ** 20))))
        break
      case 3:
        push('truncated', base.subarray(0, rng.int(0, base.length - 1)))
        break
      case 4: {
        const b = b4a.from(base)
        const k = rng.int(0, b.length * 8 - 1)
        b[k >> 3] ^= 1 << (k & 7)
        push('bit flip', b)
        break
      }
      case 5: {
        const b = rng.bytes(rng.int(1, 100))
        b[0] = rng.pick([0x03, 0x13])
        push('random bytes', b)
        break
      }
      default: {
        // random flags over the original fields (fields shift meaning, mostly breaks)
        push('random flags', withFlags(base, uintBytes(rng.int(0, 31))))
      }
    }
  }
  return out
}

// ---------------------------------------------------------------------------------------------
// node ids and tokens

function nodeIds (rng, count) {
  const out = []
  const fixed = [['127.0.0.1', 49737], ['0.0.0.0', 0], ['255.255.255.255', 65535]]
  for (const [host, port] of fixed) out.push({ host, port, id: hex(peer.id(host, port)) })
  for (let i = 0; i < count; i++) {
    const a = randAddr(rng)
    out.push({ host: a.host, port: a.port, id: hex(peer.id(a.host, a.port)) })
  }
  return out
}

function tokens (rng, count) {
  const out = []
  for (let i = 0; i < count; i++) {
    const previous = rng.bytes(32)
    const current = rng.bytes(32)
    const rotations = i % 4
    setSecrets(previous, current)
    rotate(rotations)
    const hosts = []
    for (let k = 0; k < 3; k++) {
      const host = randHost(rng)
      hosts.push({
        host,
        current: hex(H.io.token({ host, port: 1 }, 1)),
        previous: hex(H.io.token({ host, port: 1 }, 0))
      })
    }
    out.push({
      previous: hex(previous),
      current: hex(current),
      rotations,
      afterPrevious: hex(H.io._secrets[0]),
      afterCurrent: hex(H.io._secrets[1]),
      hosts
    })
  }
  return out
}

function tokenChecks (rng, count) {
  const out = []
  for (let i = 0; i < count; i++) {
    const previous = rng.bytes(32)
    const current = rng.bytes(32)
    const from = randAddr(rng, 1)
    setSecrets(previous, current)
    // The token the request carries: issued k rotations before the check, for this host or
    // another one, or random.
    const kind = rng.int(0, 5)
    let rotations = rng.int(0, 3)
    let token
    if (kind <= 2) {
      const host = kind === 2 ? randHost(rng) : from.host
      const issuedAfter = rng.int(0, rotations)
      rotate(issuedAfter)
      token = H.io.token({ host, port: from.port }, 1)
      setSecrets(previous, current)
    } else if (kind === 3) {
      token = H.io.token(from, 0) // the previous secret before any rotation
    } else {
      token = rng.bytes(32)
    }
    if (kind === 3) rotations = 0
    rotate(rotations)
    const withTarget = rng.bool()
    const closer = []
    if (withTarget) for (let k = rng.int(0, 5); k > 0; k--) closer.push({ id: null, ...randAddr(rng) })
    const ephemeral = rng.bool()
    const tableId = ephemeral ? null : rng.bytes(32)
    // The request as the remote sends it (its own id, if any, is irrelevant here).
    const reqBuf = encodeRequest({
      tid: rng.int(0, 65535),
      to: randAddr(rng),
      id: null,
      token,
      internal: rng.bool(),
      command: rng.int(0, 20),
      target: withTarget ? rng.bytes(32) : null,
      value: rng.bool() ? randValue(rng) : null
    })
    // Receiving node state.
    H.io.ephemeral = ephemeral
    if (tableId) H.table.id = tableId
    H.table.nodes = closer
    H.accepted = null
    H.io.onmessage(H.io.serverSocket, reqBuf, { host: from.host, port: from.port })
    const sent = H.io.serverSocket.take()
    H.table.nodes = []
    const accepted = H.accepted !== null
    if (accepted === (sent.length !== 0)) throw new Error('token check: both or neither outcome')
    out.push({
      previous: hex(previous),
      current: hex(current),
      rotations,
      from,
      ephemeral,
      tableId: hexOrNull(tableId),
      closerNodes: withTarget ? closer.map(addr) : [],
      request: hex(reqBuf),
      accepted,
      reply: accepted ? null : hex(sent[0].buffer)
    })
  }
  return out
}

// ---------------------------------------------------------------------------------------------

function generate (canonicalSeed, count) {
  const rng = new Prng(canonicalSeed)
  const requests = []
  const responses = []
  // every flag combination once, then random ones
  for (let f = 0; f < 32; f++) requests.push(requestEntry(randRequestInput(rng, f)))
  for (let f = 0; f < 32; f++) responses.push(responseEntry(randResponseInput(rng, f)))
  for (let i = 0; i < count; i++) {
    requests.push(requestEntry(randRequestInput(rng, rng.int(0, 31))))
    responses.push(responseEntry(randResponseInput(rng, rng.int(0, 31))))
  }
  const bases = requests.concat(responses).map((e) => unhex(e.hex))
  return {
    seed: canonicalSeed,
    requests,
    responses,
    decodes: decodeCases(rng, bases, 4 * count),
    nodeIds: nodeIds(rng, count),
    tokens: tokens(rng, count),
    tokenChecks: tokenChecks(rng, 2 * count)
  }
}

// ---------------------------------------------------------------------------------------------
// selftest: dht-rpc.md §3.4 captures, §4 ids, §5/§6 constants, §7 token and rotation vectors,
// all through the dht-rpc code.

function selftest () {
  let passes = 0
  let failures = 0
  const check = (name, got, want) => {
    const g = typeof got === 'string' ? got : JSON.stringify(got)
    const w = typeof want === 'string' ? want.replace(/\s+/g, '').toLowerCase() : JSON.stringify(want)
    if (g === w) passes++
    else {
      failures++
      console.log('FAIL ' + name + '\n  got  ' + g + '\n  want ' + w)
    }
  }
  const ID = b4a.alloc(32, 0xa5)
  const L = (port) => ({ host: '127.0.0.1', port })
  const from = { host: '127.0.0.2', port: 9 }

  // §3.4 requests: decode with Request.decode, re-encode with _encodeRequest
  const reqCaptures = [
    ['PING', '03 04 c4 39 7f000001 49c2 00',
      { tid: 0x39c4, to: L(49737), id: null, token: null, internal: true, command: 0, target: null, value: null }],
    ['FIND_NODE', '03 0d 51 81 7f000001 4475' + hex(ID) + '02' + '11'.repeat(32),
      { tid: 0x8151, to: L(30020), id: ID, token: null, internal: true, command: 2, target: b4a.alloc(32, 0x11), value: null }],
    ['PING_NAT', '03 14 24 78 7f000001 3175 01 02 e4a2',
      { tid: 0x7824, to: L(30001), id: null, token: null, internal: true, command: 1, target: null, value: unhex('e4a2') }]
  ]
  for (const [name, h, inp] of reqCaptures) {
    check('§3.4 ' + name + ' request encode', hex(encodeRequest(inp)), h)
    const d = decode(unhex(h), from)
    check('§3.4 ' + name + ' request decode', [d.tid, d.to, d.internal, d.command, d.target, d.value],
      [inp.tid, inp.to, inp.internal, String(inp.command), hexOrNull(inp.target), hexOrNull(inp.value)])
  }
  check('§3.4 FIND_NODE request is 75 bytes', String(unhex(reqCaptures[1][1]).length), '75')

  const resCaptures = [
    ['PING reply', '13 00 c4 39 7f000001 90db',
      { tid: 0x39c4, to: L(56208), id: null, withToken: false, secret: ID, closerNodes: [], error: 0, value: null }],
    ['FIND_NODE reply', '13 05 52 81 7f000001 3a75' + hex(ID) + '03 7f0000013a75 7f0000014475 7f0000013175',
      { tid: 0x8152, to: L(30010), id: ID, withToken: false, secret: ID, closerNodes: [L(30010), L(30020), L(30001)], error: 0, value: null }],
    ['PING_NAT reply', '13 01 24 78 7f000001 e4a2' + hex(ID),
      { tid: 0x7824, to: L(41700), id: ID, withToken: false, secret: ID, closerNodes: [], error: 0, value: null }],
    ['UNKNOWN_COMMAND reply', '13 0c 05 85 7f000001 729b 02 7f0000014bc2 7f0000014ac2 01',
      { tid: 0x8505, to: L(39794), id: null, withToken: false, secret: ID, closerNodes: [L(49739), L(49738)], error: DHTError.UNKNOWN_COMMAND, value: null }]
  ]
  for (const [name, h, inp] of resCaptures) {
    check('§3.4 ' + name + ' encode', hex(encodeResponse(inp)), h)
    const d = decode(unhex(h), from)
    check('§3.4 ' + name + ' decode', [d.tid, d.to, d.closerNodes, d.error],
      [inp.tid, inp.to, inp.closerNodes.length ? inp.closerNodes : null, String(inp.error)])
  }
  const full = encodeResponse({ tid: 1, to: L(1), id: ID, withToken: true, secret: ID, closerNodes: [L(2)], error: 0, value: b4a.from('x') })
  check('§3.4 id+token+closer+value flags', hex(full.subarray(0, 2)), '1317')

  // §4 ids
  check('§4 id 127.0.0.1:49737', hex(peer.id('127.0.0.1', 49737)), 'd1dcf835b0d62b9230c41393cb96a34f5f8b9f814f421ca3382dfc1678022e0e')
  check('§4 id 88.99.3.86:49737', hex(peer.id('88.99.3.86', 49737)), '54d4b9c6441048061f80cf69564cee46a5730adfcd59fbe6c056bb49af771546')
  check('§4 id 1.2.3.4:49737', hex(peer.id('1.2.3.4', 49737)), '0d9535fc6d01006576c9e1923a4375cb3f12899e2d12d2d78ebd32197acbfb24')
  const idFrom = { host: '1.2.3.4', port: 49737 }
  const withId = encodeRequest({ tid: 1, to: L(1), id: peer.id(idFrom.host, idFrom.port), token: null, internal: true, command: 0, target: null, value: null })
  check('§4 id validated against the source', decode(withId, idFrom).validId, hex(peer.id(idFrom.host, idFrom.port)))
  check('§4 id of another source dropped', String(decode(withId, { host: '1.2.3.4', port: 49738 }).validId), 'null')

  // §5 / §6 constants
  check('§5 commands', [commands.PING, commands.PING_NAT, commands.FIND_NODE, commands.DOWN_HINT, commands.DELAYED_PING], [0, 1, 2, 3, 4])
  check('§6 errors', [DHTError.UNKNOWN_COMMAND, DHTError.INVALID_TOKEN], [1, 2])

  // §7 tokens and rotation
  setSecrets(b4a.alloc(32), b4a.alloc(32, 0x09))
  check('§7 token(1.2.3.4, S1 = 09*32)', hex(H.io.token({ host: '1.2.3.4', port: 5 }, 1)), '0f60e741d9d100fb66950cabc241648838ee78adb600938eb8c4d1691d99a47a')
  setSecrets(b4a.alloc(32, 0x09), b4a.alloc(32, 0x01))
  rotate(1)
  check('§7 rotation: S0 <- old S1', hex(H.io._secrets[0]), '01'.repeat(32))
  check('§7 rotation: S1 <- H256(old S0)', hex(H.io._secrets[1]), '25d80d45a11b372d5a2357f996ed048e2614ab8a40662b89912a83779d582c85')
  setSecrets(b4a.alloc(32, 0x09), b4a.alloc(32, 0x01))
  for (let i = 0; i < 9; i++) H.io._drain()
  check('§7 no rotation before the 10th drain', hex(H.io._secrets[1]), '01'.repeat(32))

  // determinism
  check('generator deterministic', JSON.stringify(generate('0x1234', 3)) === JSON.stringify(generate('0x1234', 3)) ? 'same' : 'different', 'same')

  console.log(`selftest: ${passes} passed, ${failures} failed`)
  return failures === 0
}

// ---------------------------------------------------------------------------------------------
// main

function usage (msg) {
  if (msg) process.stderr.write('error: ' + msg + '\n')
  process.stderr.write('usage: node gen-dht-vectors.js [--count N] [--seed S] | --selftest\n')
  process.exit(2)
}

function main (argv) {
  process.stdout.on('error', (err) => process.exit(err.code === 'EPIPE' ? 0 : 1))
  let count = 20
  let seed = null
  let selftestMode = false
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--selftest') selftestMode = true
    else if (a === '--count') count = Number(argv[++i])
    else if (a === '--seed') seed = argv[++i]
    else if (a === '-h' || a === '--help') usage()
    else usage('unknown argument ' + a)
  }
  if (selftestMode) process.exit(selftest() ? 0 : 1)
  if (!Number.isInteger(count) || count < 1 || count > 10000) usage('--count must be an integer in 1..10000')
  let canonical
  if (seed === null || seed === undefined) {
    const r = b4a.alloc(8)
    sodium.randombytes_buf(r)
    canonical = '0x' + hex(r)
  } else {
    try {
      canonical = parseSeed(seed)
    } catch (err) {
      usage(err.message)
    }
  }
  process.stdout.write(JSON.stringify(generate(canonical, count)) + '\n')
}

main(process.argv.slice(2))
