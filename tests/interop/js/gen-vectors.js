#!/usr/bin/env node
'use strict'

// Reference-vector generator for the p2pswarm interop tests.
//
//   node gen-vectors.js [--count N] [--seed S]   -> one JSON object on stdout
//   node gen-vectors.js --selftest                -> checks the fixed vectors of the specs, exit 0/1
//
// Every value is computed by the real JS stack (sodium-universal, hypercore-crypto,
// compact-encoding, noise-handshake + noise-curve-ed). Randomness comes from a small
// deterministic PRNG defined below, so a fixed --seed always gives the same output.
// See README.md for the JSON format.

const sodium = require('sodium-universal')
const b4a = require('b4a')
const c = require('compact-encoding')
const hcrypto = require('hypercore-crypto')
const Noise = require('noise-handshake')
const curve = require('noise-curve-ed')
const SecretStream = require('@hyperswarm/secret-stream')

const NS_PEER_HANDSHAKE = hcrypto.namespace('hyperswarm/dht', [0])[0]
const NS_PEER_HOLEPUNCH = hcrypto.namespace('hyperswarm/dht', [1])[0]

// ---------------------------------------------------------------------------------------------
// helpers

const hex = (b) => b4a.toString(b, 'hex')
const unhex = (s) => b4a.from(s.replace(/\s+/g, ''), 'hex')
const copy = (b) => b4a.from(b) // noise-handshake zeroes some buffers it was given; keep our own
const filled = (byte, n) => b4a.alloc(n, byte)

function blake2b (outLen, data, key) {
  const out = b4a.alloc(outLen)
  if (key) sodium.crypto_generichash(out, data, key)
  else sodium.crypto_generichash(out, data)
  return out
}

function seedKeyPair (seed) {
  const publicKey = b4a.alloc(sodium.crypto_sign_PUBLICKEYBYTES)
  const secretKey = b4a.alloc(sodium.crypto_sign_SECRETKEYBYTES)
  sodium.crypto_sign_seed_keypair(publicKey, secretKey, seed)
  return { publicKey, secretKey }
}

function u64le (n) {
  const b = b4a.alloc(8)
  const v = new DataView(b.buffer, b.byteOffset, 8)
  v.setBigUint64(0, BigInt(n), true)
  return b
}

// ---------------------------------------------------------------------------------------------
// Deterministic PRNG (our own construction, trivially re-implementable elsewhere):
//   key      = BLAKE2b-256( utf8("p2pswarm-interop/gen-vectors/v1:" + canonicalSeed) )
//   block i  = BLAKE2b-512( u64le(i) ; key = key ),   i = 0, 1, 2, ...
//   stream   = block 0 || block 1 || ...   (bytes are consumed in order, never reused)
// Integers are drawn from that byte stream as described in the methods below.

class Prng {
  constructor (canonicalSeed) {
    this.key = blake2b(32, b4a.from('p2pswarm-interop/gen-vectors/v1:' + canonicalSeed))
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

  u32 () {
    return this.bytes(4).readUInt32LE(0)
  }

  // uniform integer in [lo, hi] (BigInt arithmetic, rejection sampling, any range up to 2^64)
  bigRange (lo, hi) {
    lo = BigInt(lo)
    hi = BigInt(hi)
    const span = hi - lo + 1n
    const limit = (1n << 64n) - ((1n << 64n) % span)
    for (;;) {
      const x = this.bytes(8).readBigUInt64LE(0)
      if (x < limit) return lo + (x % span)
    }
  }

  // uniform integer in [lo, hi] as a Number (range must stay within safe integers)
  int (lo, hi) {
    return Number(this.bigRange(lo, hi))
  }

  pick (arr) {
    return arr[this.int(0, arr.length - 1)]
  }

  bool () {
    return (this.bytes(1)[0] & 1) === 1
  }
}

function parseSeed (s) {
  // canonical forms: decimal integer "1234" or lowercase hex "0x..."
  if (/^[0-9]+$/.test(s)) return BigInt(s).toString(10)
  const m = /^(?:0x)?([0-9a-fA-F]+)$/.exec(s)
  if (m) return '0x' + m[1].toLowerCase()
  throw new Error('--seed must be a decimal integer or a hex string (optionally 0x-prefixed)')
}

// ---------------------------------------------------------------------------------------------
// Noise runs (noise-handshake with noise-curve-ed, ephemerals injected)
//
// Injection: NoiseState.send() does `if (this.e === null) this.e = this.curve.generateKeyPair()`
// when it meets the `e` token, so assigning `state.e = curve.generateKeyPair(ephSeed)` right
// before the send() that carries `e` makes the ephemeral deterministic. generateKeyPair(seed)
// is crypto_sign_seed_keypair(seed). A fresh key pair object is passed each time because the
// library zeroes `e` (and the received `re`, which is a view of the incoming message buffer!)
// once the handshake completes.

function runNoise (pattern, { initiatorSeed, responderSeed, initiatorEphSeed, responderEphSeed, prologue, payloads }) {
  const iStatic = curve.generateKeyPair(initiatorSeed)
  const rStatic = curve.generateKeyPair(responderSeed)
  const iPk = copy(iStatic.publicKey)
  const rPk = copy(rStatic.publicKey)

  const ini = new Noise(pattern, true, iStatic, { curve })
  const res = new Noise(pattern, false, rStatic, { curve })
  ini.initialise(prologue, pattern === 'IK' ? rPk : undefined)
  res.initialise(prologue)

  const eph = {
    i: () => { ini.e = curve.generateKeyPair(initiatorEphSeed) },
    r: () => { res.e = curve.generateKeyPair(responderEphSeed) }
  }

  const msgs = []
  const nmsg = pattern === 'XX' ? 3 : 2
  for (let k = 0; k < nmsg; k++) {
    const fromInit = k % 2 === 0
    const sender = fromInit ? ini : res
    const receiver = fromInit ? res : ini
    if (k === 0) eph.i()
    if (k === 1) eph.r()
    const msg = copy(sender.send(payloads[k]))
    msgs.push(msg)
    const got = receiver.recv(copy(msg))
    if (!b4a.equals(got, payloads[k])) throw new Error(pattern + ': payload ' + (k + 1) + ' mismatch')
  }

  if (!ini.complete || !res.complete) throw new Error(pattern + ': handshake not complete')
  if (!b4a.equals(ini.hash, res.hash)) throw new Error(pattern + ': hash mismatch')
  if (!b4a.equals(ini.tx, res.rx) || !b4a.equals(ini.rx, res.tx)) throw new Error(pattern + ': split mismatch')
  if (!b4a.equals(ini.rs, rPk) || !b4a.equals(res.rs, iPk)) throw new Error(pattern + ': remote static mismatch')

  return {
    initiatorPublicKey: iPk,
    responderPublicKey: rPk,
    msgs,
    hash: copy(ini.hash),
    initiatorTx: copy(ini.tx),
    initiatorRx: copy(ini.rx)
  }
}

function noiseEntry (pattern, inp) {
  const r = runNoise(pattern, inp)
  const e = {
    initiatorSeed: hex(inp.initiatorSeed),
    responderSeed: hex(inp.responderSeed),
    initiatorEphSeed: hex(inp.initiatorEphSeed),
    responderEphSeed: hex(inp.responderEphSeed),
    prologue: hex(inp.prologue),
    payload1: hex(inp.payloads[0]),
    payload2: hex(inp.payloads[1])
  }
  if (pattern === 'XX') e.payload3 = hex(inp.payloads[2])
  e.msg1 = hex(r.msgs[0])
  e.msg2 = hex(r.msgs[1])
  if (pattern === 'XX') e.msg3 = hex(r.msgs[2])
  e.hash = hex(r.hash)
  e.initiatorTx = hex(r.initiatorTx)
  e.initiatorRx = hex(r.initiatorRx)
  return e
}

// ---------------------------------------------------------------------------------------------
// secretstream / secretbox

const SS = {
  STATEBYTES: sodium.crypto_secretstream_xchacha20poly1305_STATEBYTES,
  HEADERBYTES: sodium.crypto_secretstream_xchacha20poly1305_HEADERBYTES,
  ABYTES: sodium.crypto_secretstream_xchacha20poly1305_ABYTES,
  TAG_MESSAGE: sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
}

// crypto_secretstream_xchacha20poly1305_init_push draws its header from the OS RNG. To get a
// reproducible header we initialise the push state with init_pull(header, key): in libsodium
// both functions set up the state identically from (header, key) (HChaCha20 subkey, counter 1,
// inonce = header[16..24], zero padding); init_push only adds `randombytes_buf(header)` first.
// The selftest checks this equivalence against a real init_push.
function secretstreamPushState (key, header) {
  const state = b4a.alloc(SS.STATEBYTES)
  sodium.crypto_secretstream_xchacha20poly1305_init_pull(state, header, key)
  return state
}

function secretstreamPush (state, message) {
  const out = b4a.alloc(message.length + SS.ABYTES)
  sodium.crypto_secretstream_xchacha20poly1305_push(state, out, message, null, SS.TAG_MESSAGE)
  return out
}

function secretboxDatagram (key, counter, message) {
  const nonce = b4a.alloc(sodium.crypto_secretbox_NONCEBYTES)
  nonce.set(counter, 0)
  const box = b4a.alloc(message.length + sodium.crypto_secretbox_MACBYTES)
  sodium.crypto_secretbox_easy(box, message, nonce, key)
  return b4a.concat([counter, box])
}

// ---------------------------------------------------------------------------------------------
// compact-encoding entries

const ENCODERS = {
  uint: c.uint,
  uint8: c.uint8,
  uint16: c.uint16,
  uint24: c.uint24,
  uint32: c.uint32,
  uint64: c.uint64,
  bool: c.bool,
  buffer: c.buffer,
  optionalBuffer: c.optionalBuffer,
  string: c.string,
  fixed32: c.fixed32,
  fixed64: c.fixed64,
  ipv4Address: c.ipv4Address,
  ipv6Address: c.ipv6Address,
  array_uint: c.array(c.uint),
  array_buffer: c.array(c.buffer),
  array_ipv4Address: c.array(c.ipv4Address)
}

// JSON value -> the JS value handed to the encoder
function toJs (type, v) {
  switch (type) {
    case 'uint': case 'uint8': case 'uint16': case 'uint24': case 'uint32': case 'uint64':
      return Number(v)
    case 'buffer': case 'optionalBuffer':
      return v === null ? null : unhex(v)
    case 'fixed32': case 'fixed64':
      return unhex(v)
    case 'array_uint':
      return v.map(Number)
    case 'array_buffer':
      return v.map(unhex)
    default:
      return v // bool, string, addresses, arrays of addresses
  }
}

function encEntry (type, value) {
  const buf = c.encode(ENCODERS[type], toJs(type, value))
  return { type, value, hex: hex(buf) }
}

const MAX_SAFE = 2n ** 53n - 1n
const UINT_CLASSES = [[0n, 252n], [253n, 65535n], [65536n, 2n ** 32n - 1n], [2n ** 32n, MAX_SAFE]]

function randUintString (rng) {
  const [lo, hi] = rng.pick(UINT_CLASSES)
  return rng.bigRange(lo, hi).toString()
}

function randIpv4 (rng) {
  const b = rng.bytes(4)
  return { host: Array.from(b).join('.'), port: rng.int(0, 65535) }
}

// Random IPv6 address in one of several textual forms the compact-encoding parser handles
// (hex groups separated by ':', at most one '::'). Returns the string and the 16 bytes it
// denotes, so the generator can assert the encoder agrees with an independent reading.
function randIpv6 (rng) {
  const groups = []
  for (let i = 0; i < 8; i++) groups.push(rng.int(0, 3) === 0 ? 0 : rng.int(0, 0xffff))
  // sometimes force a run of zeros so '::' compression kicks in
  if (rng.bool()) {
    const start = rng.int(0, 7)
    const len = rng.int(1, 8 - start)
    for (let i = start; i < start + len; i++) groups[i] = 0
  }
  const bytes = b4a.alloc(16)
  groups.forEach((g, i) => bytes.writeUInt16BE(g, 2 * i))

  const form = rng.int(0, 3)
  let host
  if (form === 0) {
    host = groups.map((g) => g.toString(16).padStart(4, '0')).join(':') // full, zero padded
  } else if (form === 1) {
    host = groups.map((g) => g.toString(16)).join(':') // full, no leading zeros
  } else {
    // RFC 5952-style compression of the longest zero run (length >= 1 allowed here)
    let bestStart = -1
    let bestLen = 0
    for (let i = 0; i < 8;) {
      if (groups[i] !== 0) { i++; continue }
      let j = i
      while (j < 8 && groups[j] === 0) j++
      if (j - i > bestLen) { bestStart = i; bestLen = j - i }
      i = j
    }
    const part = (a) => a.map((g) => g.toString(16)).join(':')
    if (bestLen === 0) host = part(groups)
    else host = part(groups.slice(0, bestStart)) + '::' + part(groups.slice(bestStart + bestLen))
    if (form === 3) host = host.toUpperCase()
  }
  return { host, port: rng.int(0, 65535), bytes }
}

// random Unicode string: ASCII, Latin-1, Greek/Cyrillic, CJK, emoji (astral), combining marks
const CP_RANGES = [
  [0x20, 0x7e], [0x20, 0x7e], [0x20, 0x7e], [0x00, 0x1f],
  [0xa0, 0xff], [0x370, 0x3ff], [0x400, 0x4ff], [0x300, 0x36f],
  [0x4e00, 0x9fff], [0xac00, 0xd7a3], [0x1f300, 0x1f64f], [0x1f900, 0x1f9ff], [0x10000, 0x1000f]
]

function randString (rng, maxLen) {
  const n = rng.int(0, maxLen)
  const asciiOnly = rng.int(0, 3) === 0
  let s = ''
  for (let i = 0; i < n; i++) {
    const [lo, hi] = asciiOnly ? [0x20, 0x7e] : rng.pick(CP_RANGES)
    s += String.fromCodePoint(rng.int(lo, hi))
  }
  return s
}

function genEncodings (rng, count) {
  const out = []
  const push = (t, v) => out.push(encEntry(t, v))

  // uint: boundaries, then random values of each size class
  for (const v of [0n, 1n, 252n, 253n, 254n, 255n, 256n, 65535n, 65536n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 32n + 1n, MAX_SAFE]) {
    push('uint', v.toString())
  }
  for (let i = 0; i < count; i++) push('uint', rng.bigRange(...UINT_CLASSES[i % 4]).toString())

  const fixedInts = [['uint8', 8n], ['uint16', 16n], ['uint24', 24n], ['uint32', 32n]]
  for (const [t, bits] of fixedInts) {
    const max = (1n << bits) - 1n
    for (const v of [0n, 1n, max]) push(t, v.toString())
    for (let i = 0; i < count; i++) push(t, rng.bigRange(0n, max).toString())
  }
  // uint64: the JS encoder only takes safe integers (<= 2^53-1); it throws above that
  for (const v of [0n, 1n, 2n ** 32n - 1n, 2n ** 32n, MAX_SAFE]) push('uint64', v.toString())
  for (let i = 0; i < count; i++) push('uint64', rng.bigRange(0n, MAX_SAFE).toString())

  push('bool', false)
  push('bool', true)
  for (let i = 0; i < count; i++) push('bool', rng.bool())

  // buffer: c.buffer.encode(null) THROWS in compact-encoding 3.x, so null is recorded under
  // "optionalBuffer" (null -> 00) instead; see README
  push('buffer', '')
  push('buffer', hex(b4a.from('abc')))
  push('buffer', hex(rng.bytes(252)))
  push('buffer', hex(rng.bytes(253)))
  for (let i = 0; i < count; i++) push('buffer', hex(rng.bytes(rng.int(0, 300))))

  push('optionalBuffer', null)
  push('optionalBuffer', '')
  for (let i = 0; i < Math.max(2, count >> 2); i++) push('optionalBuffer', hex(rng.bytes(rng.int(1, 100))))

  push('string', '')
  push('string', 'hello')
  push('string', 'héllo wörld ✓ 日本語 😀👍🏽')
  push('string', 'a'.repeat(64) + 'é') // crosses compact-encoding's ASCII fast-path limit
  for (let i = 0; i < count; i++) push('string', randString(rng, i % 5 === 4 ? 200 : 40))

  for (let i = 0; i < count; i++) push('fixed32', hex(rng.bytes(32)))
  for (let i = 0; i < count; i++) push('fixed64', hex(rng.bytes(64)))

  push('ipv4Address', { host: '1.2.3.4', port: 49737 })
  push('ipv4Address', { host: '0.0.0.0', port: 0 })
  push('ipv4Address', { host: '255.255.255.255', port: 65535 })
  for (let i = 0; i < count; i++) push('ipv4Address', randIpv4(rng))

  const v6 = [
    { host: '::1', port: 1 },
    { host: '::', port: 0 },
    { host: 'fe80::1', port: 49737 },
    { host: '2001:db8::8a2e:370:7334', port: 65535 },
    { host: 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', port: 8080 }
  ]
  for (const a of v6) push('ipv6Address', a)
  for (let i = 0; i < count; i++) {
    const a = randIpv6(rng)
    const e = encEntry('ipv6Address', { host: a.host, port: a.port })
    const expect = b4a.concat([a.bytes, b4a.from([a.port & 0xff, a.port >> 8])])
    if (e.hex !== hex(expect)) throw new Error('ipv6 encoder disagrees with generator for ' + a.host)
    out.push(e)
  }

  push('array_uint', [])
  for (let i = 0; i < count; i++) {
    const n = rng.int(0, 8)
    push('array_uint', Array.from({ length: n }, () => randUintString(rng)))
  }
  push('array_buffer', [])
  push('array_buffer', [''])
  for (let i = 0; i < count; i++) {
    const n = rng.int(0, 5)
    push('array_buffer', Array.from({ length: n }, () => hex(rng.bytes(rng.int(0, 40)))))
  }
  push('array_ipv4Address', [])
  for (let i = 0; i < count; i++) {
    const n = rng.int(0, 5)
    push('array_ipv4Address', Array.from({ length: n }, () => randIpv4(rng)))
  }

  // round-trip sanity: every entry decodes back to the same bytes
  for (const e of out) {
    const enc = ENCODERS[e.type]
    const back = c.encode(enc, c.decode(enc, unhex(e.hex)))
    if (hex(back) !== e.hex) throw new Error('round trip failed for ' + JSON.stringify(e))
  }
  return out
}

// ---------------------------------------------------------------------------------------------
// generator

function generate (canonicalSeed, count) {
  const rng = new Prng(canonicalSeed)
  const out = { seed: canonicalSeed }

  out.keypairs = []
  for (let i = 0; i < count; i++) {
    const seed = rng.bytes(32)
    const kp = seedKeyPair(seed)
    out.keypairs.push({ seed: hex(seed), publicKey: hex(kp.publicKey), secretKey: hex(kp.secretKey) })
  }

  out.hashes = []
  const special = [0, 1, 127, 128, 129, 256]
  for (let i = 0; i < count; i++) {
    const len = i < special.length ? special[i] : rng.int(0, 300)
    const data = rng.bytes(len)
    // sodium-native only accepts generichash keys of 16..64 bytes (KEYBYTES_MIN..KEYBYTES_MAX)
    const key = rng.bytes(i === 1 ? 64 : i === 2 ? 16 : rng.int(16, 64))
    out.hashes.push({
      data: hex(data),
      blake2b256: hex(blake2b(32, data)),
      blake2b512: hex(blake2b(64, data)),
      key: hex(key),
      keyed256: hex(blake2b(32, data, key))
    })
  }

  out.namespaces = []
  const nsList = [['hyperswarm/dht', 11], ['hyperswarm/secret-stream', 3], ['', 1]]
  const extra = Math.max(3, count >> 2)
  for (let i = 0; i < extra; i++) nsList.push([randString(rng, 30), rng.int(1, 8)])
  for (const [name, n] of nsList) {
    out.namespaces.push({ name, count: n, values: hcrypto.namespace(name, n).map(hex) })
  }

  out.signatures = []
  for (let i = 0; i < count; i++) {
    const seed = rng.bytes(32)
    const message = rng.bytes(i === 0 ? 0 : rng.int(0, 300))
    const sig = b4a.alloc(sodium.crypto_sign_BYTES)
    const kp = seedKeyPair(seed)
    sodium.crypto_sign_detached(sig, message, kp.secretKey)
    if (!sodium.crypto_sign_verify_detached(sig, message, kp.publicKey)) throw new Error('sig verify')
    out.signatures.push({ seed: hex(seed), message: hex(message), signature: hex(sig) })
  }

  out.dh = []
  for (let i = 0; i < count; i++) {
    const seedA = rng.bytes(32)
    const seedB = rng.bytes(32)
    const a = seedKeyPair(seedA)
    const b = seedKeyPair(seedB)
    const shared = curve.dh(b.publicKey, a)
    if (!b4a.equals(shared, curve.dh(a.publicKey, b))) throw new Error('dh not symmetric')
    out.dh.push({ seedA: hex(seedA), publicKeyB: hex(b.publicKey), shared: hex(shared) })
  }

  out.encodings = genEncodings(rng, count)

  out.ik = []
  for (let i = 0; i < count; i++) {
    out.ik.push(noiseEntry('IK', {
      initiatorSeed: rng.bytes(32),
      responderSeed: rng.bytes(32),
      initiatorEphSeed: rng.bytes(32),
      responderEphSeed: rng.bytes(32),
      prologue: NS_PEER_HANDSHAKE,
      payloads: [rng.bytes(i === 0 ? 0 : rng.int(0, 200)), rng.bytes(i === 0 ? 0 : rng.int(0, 200))]
    }))
  }

  out.xx = []
  for (let i = 0; i < count; i++) {
    const p = () => rng.bytes(i === 0 || rng.int(0, 2) === 0 ? 0 : rng.int(1, 200))
    out.xx.push(noiseEntry('XX', {
      initiatorSeed: rng.bytes(32),
      responderSeed: rng.bytes(32),
      initiatorEphSeed: rng.bytes(32),
      responderEphSeed: rng.bytes(32),
      prologue: b4a.alloc(0),
      payloads: [p(), p(), p()]
    }))
  }

  out.secretstream = []
  for (let i = 0; i < count; i++) {
    const key = rng.bytes(32)
    const header = rng.bytes(SS.HEADERBYTES)
    const state = secretstreamPushState(key, header)
    const n = rng.int(1, 6)
    const messages = []
    for (let j = 0; j < n; j++) messages.push(rng.bytes(j === 0 && i % 4 === 0 ? 0 : rng.int(0, 2000)))
    const ciphertexts = messages.map((m) => secretstreamPush(state, m))
    // decrypt check with an independent pull state
    const pull = b4a.alloc(SS.STATEBYTES)
    sodium.crypto_secretstream_xchacha20poly1305_init_pull(pull, header, key)
    ciphertexts.forEach((ct, j) => {
      const m = b4a.alloc(ct.length - SS.ABYTES)
      const tag = b4a.alloc(1)
      sodium.crypto_secretstream_xchacha20poly1305_pull(pull, m, tag, ct, null)
      if (!b4a.equals(m, messages[j]) || tag[0] !== 0) throw new Error('secretstream pull mismatch')
    })
    out.secretstream.push({ key: hex(key), header: hex(header), messages: messages.map(hex), ciphertexts: ciphertexts.map(hex) })
  }

  out.secretbox = []
  for (let i = 0; i < count; i++) {
    const key = rng.bytes(32)
    const counter = rng.bytes(8)
    const message = rng.bytes(i === 0 ? 0 : rng.int(0, 300))
    out.secretbox.push({ key: hex(key), counter: hex(counter), message: hex(message), datagram: hex(secretboxDatagram(key, counter, message)) })
  }

  return out
}

// ---------------------------------------------------------------------------------------------
// selftest: fixed vectors from shared/spec (secret-stream.md §11/§12, hyperdht.md §1/§3.8/§8.2,
// dht-rpc.md §2)

function selftest () {
  let failures = 0
  let passes = 0
  const check = (name, got, want) => {
    const g = typeof got === 'string' ? got : hex(got)
    const w = want.replace(/\s+/g, '').toLowerCase()
    if (g === w) {
      passes++
    } else {
      failures++
      console.log('FAIL ' + name + '\n  got  ' + g + '\n  want ' + w)
    }
  }

  // --- constants (secret-stream.md §11, hyperdht.md §1.2)
  const [NSI, NSR, NSS] = hcrypto.namespace('hyperswarm/secret-stream', 3)
  check('NS_INITIATOR', NSI, 'a931a0155b5c09e6d28628236af83c4b8a6af9af60986edeede9dc5d63192bf7')
  check('NS_RESPONDER', NSR, '742c9d833d430af4c48a8705e91631eecf295442bbca18996e597097723b1061')
  check('NS_SEND', NSS, 'aab97d097471f56651b0460ffc8aaa7d3342f7377597d60b925a1dac689adcbf')
  const dhNs = hcrypto.namespace('hyperswarm/dht', 11)
  check('NS_PEER_HANDSHAKE', dhNs[0], '14d6d4b49214ab1033ed204976caa258bae9e1e8543b9ad1fd996a910b0c4e3a')
  check('NS_PEER_HOLEPUNCH', dhNs[1], 'f1191cd5e67b10b54a507033280ed1ff0e12278268d5679c8f93d417210d168b')
  check('NS_ANNOUNCE', dhNs[4], '36386adddf9f6fd60db83a6f42fc159d1146aa8644037664230aaa1f0179d497')
  check('NS_UNANNOUNCE', dhNs[5], 'ded293cd93fb395e756ecf5fff426529e72c36eacc22e5ed944d9099a2561e32')
  check('NS_MUTABLE_PUT', dhNs[6], '668e823edd5ce7f5338d68bf1161f4a3c28ce437ee2ab49efd30d99366039b1e')
  check('NS_PLUGIN', dhNs[10], '6b8a2a8623f28c6c02a1e22abe515ce31cafd9af61d4b69970639aa7eb96a8d5')

  // --- hyperdht.md §1.1 / §1.2
  const kp01 = seedKeyPair(filled(0x01, 32))
  check('hyperdht keyPair(01*32)', kp01.publicKey, '8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c')
  check('hyperdht keyPair(02*32)', seedKeyPair(filled(0x02, 32)).publicKey, '8139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394')
  check('H256(pk of seed 01)', blake2b(32, kp01.publicKey), 'c5e21ab1c9f6022d81c3b25e3436cb7f1df77f9652ae3e1310c28e621dd87b4c')
  check('H256("hello")', blake2b(32, b4a.from('hello')), '324dcf027dd4a30a932c441f365a25e86b173defa4b8e58948253471b81b72cf')

  // --- dht-rpc.md §2 compact-encoding vectors
  const uintVec = [[0, '00'], [252, 'fc'], [253, 'fdfd00'], [65535, 'fdffff'], [65536, 'fe00000100'],
    [2 ** 32 - 1, 'feffffffff'], [2 ** 32, 'ff0000000001000000']]
  for (const [n, h] of uintVec) check('uint ' + n, c.encode(c.uint, n), h)
  check('buffer "abc"', c.encode(c.buffer, b4a.from('abc')), '03616263')
  check('buffer empty', c.encode(c.buffer, b4a.alloc(0)), '00')
  check('ipv4 1.2.3.4:49737', c.encode(c.ipv4Address, { host: '1.2.3.4', port: 49737 }), '0102030449c2')
  check('ipv6 ::1 port 1', c.encode(c.ipv6Address, { host: '::1', port: 1 }), '00'.repeat(15) + '01' + '0100')

  // --- hyperdht.md §3.8 noisePayload vectors: decode + re-encode with hyperdht's own messages
  const m = require('hyperdht/lib/messages')
  const clientPayload = '01 1a 00 00 01 c0a8010a49c2 01 00 fdd204 00 01'.replace(/ /g, '')
  const serverPayload = '01 59 00 02 00 01 0101010149c2 02020202409c 01 00 fd2e16 00 01 01 0101010149c2'.replace(/ /g, '')
  check('noisePayload client (re-encode)', c.encode(m.noisePayload, c.decode(m.noisePayload, unhex(clientPayload))), clientPayload)
  check('noisePayload server (re-encode)', c.encode(m.noisePayload, c.decode(m.noisePayload, unhex(serverPayload))), serverPayload)

  // --- secret-stream.md §12 keys + DH
  const s11 = filled(0x11, 32)
  const s22 = filled(0x22, 32)
  const s33 = filled(0x33, 32)
  const s44 = filled(0x44, 32)
  const kpI = seedKeyPair(s11)
  const kpR = seedKeyPair(s22)
  check('§12 initiator static pk', kpI.publicKey, 'd04ab232742bb4ab3a1368bd4615e4e6d0224ab71a016baf8520a332c9778737')
  check('§12 initiator secretKey64', kpI.secretKey, '11'.repeat(32) + 'd04ab232742bb4ab3a1368bd4615e4e6d0224ab71a016baf8520a332c9778737')
  check('§12 responder static pk', kpR.publicKey, 'a09aa5f47a6759802ff955f8dc2d2a14a5c99d23be97f864127ff9383455a4f0')
  check('§12 initiator eph pk', seedKeyPair(s33).publicKey, '17cb79fb2b4120f2b1ec65e4198d6e08b28e813feb01e4a400839b85e18080ce')
  check('§12 responder eph pk', seedKeyPair(s44).publicKey, 'd759793bbc13a2819a827c76adb6fba8a49aee007f49f2d0992d99b825ad2c48')
  const h512 = b4a.alloc(64)
  sodium.crypto_hash_sha512(h512, s11)
  const scalar = h512.subarray(0, 32)
  scalar[0] &= 248; scalar[31] &= 127; scalar[31] |= 64
  check('§12 initiator scalar', scalar, '805b920bda4cd49d251d3329144a0cf8bdaaa07502626fa87f08e80faedab15f')
  check('§12 DH(init sk, resp pk)', curve.dh(kpR.publicKey, kpI), '2b6355c5f0e9667ee457b73ad5dc3cb172abf8d62362402d732c4e8241b97380')
  check('§12 DH(resp sk, init pk)', curve.dh(kpI.publicKey, kpR), '2b6355c5f0e9667ee457b73ad5dc3cb172abf8d62362402d732c4e8241b97380')

  // --- §12 XX
  const xx = runNoise('XX', {
    initiatorSeed: s11, responderSeed: s22, initiatorEphSeed: s33, responderEphSeed: s44,
    prologue: b4a.alloc(0), payloads: [b4a.alloc(0), b4a.alloc(0), b4a.alloc(0)]
  })
  check('§12 XX msg1', xx.msgs[0], '17cb79fb2b4120f2b1ec65e4198d6e08b28e813feb01e4a400839b85e18080ce')
  check('§12 XX msg2', xx.msgs[1], `d759793bbc13a2819a827c76adb6fba8a49aee007f49f2d0992d99b825ad2c48
    57fad62264e58c462cf599a3a94f59ffe686a8603c1b6f8c0bc07f4de6db04a5
    66c1bcd64d53fd78a7cc6a6a4efb20f0f6725cbf580bc37f7bc1503773389b42`)
  check('§12 XX msg3', xx.msgs[2], `adec8846a8bb239fabc493e519ea5dc1e69ef015935a5cdcbf5f8bff6794c6e6
    57548e0c16588a228ab22e2061e6292b06e83bf6efacbf95c1899f9c8f630f8c`)
  check('§12 XX hash', xx.hash, `904bbe89cd78fb98b811db439e8c9b546f524311b5ca9cc38393af54937661f2
    5ebc1dbfd3f12d1bb77a8dfbc52027ce3c4111c60e4dfac926822ef8d79e9bcc`)
  check('§12 XX init tx', xx.initiatorTx, '78b14100bcd57f02f9e58fabd03b064db09f4811cfb0c69c74c8c68c4003090b')
  check('§12 XX init rx', xx.initiatorRx, '5c949cf136128f8f2bc59d63473515e57da48520f8e7742e3f40745a47b75db9')
  const idI = SecretStream.id(xx.hash, true)
  check('§12 stream id (initiator)', idI, '81db16addd83a7be6d290f46957a17f55a8e18008cdfb6ad6a2a00198919b670')
  check('§12 stream id (responder)', SecretStream.id(xx.hash, false), '33bdb0e5fa9b7df6f0636ab020c5adba68e3ca9719dd8ad144bb231ec85c843c')
  const sendKeyI = blake2b(32, b4a.concat([NSI, NSS]), xx.hash)
  check('§12 send key (initiator)', sendKeyI, '268ee8db15293bb25fc6b56474490306bdcd847aaa231d732d396e9245ab4ebf')
  check('§12 send key (responder)', blake2b(32, b4a.concat([NSR, NSS]), xx.hash), '0ec2ca1c7735f2a6317d799645ebdb903129f08c562a65407bf360f7d9c489d5')

  // --- §12 IK
  const ik = runNoise('IK', {
    initiatorSeed: s11, responderSeed: s22, initiatorEphSeed: s33, responderEphSeed: s44,
    prologue: NS_PEER_HANDSHAKE, payloads: [b4a.from('hello'), b4a.from('world')]
  })
  check('§12 IK msg1', ik.msgs[0], `17cb79fb2b4120f2b1ec65e4198d6e08b28e813feb01e4a400839b85e18080ce
    15f7bd8bd352460911fcb50301c66e7967d957326fabc34eb4cada65150624ac
    8734704844ace0641bde64c92f4c20672361cb4ec4cbf6805781617f13354ea8
    72ad5aa324`)
  check('§12 IK msg2', ik.msgs[1], `d759793bbc13a2819a827c76adb6fba8a49aee007f49f2d0992d99b825ad2c48
    d0792f94a44baf829b2aa4435b79b5750df81da3c8`)
  check('§12 IK hash', ik.hash, `a84b77b86605d715c2ad9275c95a6b5d2e21442d0b1b4d1003e06118353dd452
    64a8552153c714aaefc2bee2b1b1c94d20b48b244263580c4d53e4721815f9eb`)
  check('§12 IK init tx', ik.initiatorTx, '0449dc486159e766f752316ddeb055984cc0ad321ca030c4df8f52c054e8e813')
  check('§12 IK init rx', ik.initiatorRx, '556f6d151502cf93ef0534537a6f4a0a3d450fc2b7c134673493541d45db730b')
  check('§12 IK holepunchSecret', blake2b(32, NS_PEER_HOLEPUNCH, ik.hash), '15a0b110818afc92f2cfee571438688b4b5c5c1a6e831d79ff8c946a566fa9af')
  check('§12 IK initiator remoteId', SecretStream.id(ik.hash, false), 'bcf10b331ce80052f2c81dd7872f7dcef5cc1a6c101f3ef07fd986d24edacab1')

  // --- hyperdht.md §8.2
  const dht = runNoise('IK', {
    initiatorSeed: filled(0x02, 32), responderSeed: filled(0x01, 32),
    initiatorEphSeed: filled(0x03, 32), responderEphSeed: filled(0x04, 32),
    prologue: NS_PEER_HANDSHAKE, payloads: [unhex(clientPayload), unhex(serverPayload)]
  })
  check('hyperdht §8.2 init eph pk prefix', hex(seedKeyPair(filled(0x03, 32)).publicKey).slice(0, 8), 'ed4928c6')
  check('hyperdht §8.2 resp eph pk prefix', hex(seedKeyPair(filled(0x04, 32)).publicKey).slice(0, 8), 'ca93ac17')
  check('hyperdht §8.2 msg1', dht.msgs[0], 'ed4928c628d1c2c6eae90338905995612959273a5c63f93636c14614ac8737d1eb98e814d9b061b59c29cb8a24bd293ee473e09abb37a0a40f29c9113dab177d939149ef1d5cb5e8eafb3b626eba3288d748bd565b35331091d541ce4b58cae4458b36a5e242109fdf01bf7ae70cac6e008b')
  check('hyperdht §8.2 msg2', dht.msgs[1], 'ca93ac1705187071d67b83c7ff0efe8108e8ec4530575d7726879333dbdabe7cf0c569e9b2c8017300f996e571fcce7fdf11bbd2c74730bb67e051a4dd0bab8328dde0b1ffa653701af7c5458d130903')
  check('hyperdht §8.2 hash', dht.hash, 'c401287ccbc34a0b2b029f471299b9b70a709e46c2a83b5cbd473be9c9769ac959587376e4aec780747eb0afb223980d8d3ae82771944e7f1aad987baa100905')
  check('hyperdht §8.2 init tx', dht.initiatorTx, '88f41322c8efc67f344de059727676294ec96ff366637cc0db4d57a58a03c3a1')
  check('hyperdht §8.2 init rx', dht.initiatorRx, '2d9e8726cff2116154a33281bfb730696d45a7dbc01ec0c702f82e9c83002685')
  check('hyperdht §8.2 holepunchSecret', blake2b(32, NS_PEER_HOLEPUNCH, dht.hash), '82a4d8751e5f0c2548cff6232f429a18c06eb099e90f4178be6030d750c0397e')
  check('hyperdht §8.2 responder stream id', SecretStream.id(dht.hash, false), 'a54ebf342ffd073f53b095f11e9c3f310d74b3c17e9180444d87d7bf533d4133')

  // --- the same IK run through hyperdht's own NoiseWrap (prologue + payload encoding as shipped)
  {
    const NoiseWrap = require('hyperdht/lib/noise-wrap')
    const client = new NoiseWrap(curve.generateKeyPair(filled(0x02, 32)), seedKeyPair(filled(0x01, 32)).publicKey)
    const server = new NoiseWrap(curve.generateKeyPair(filled(0x01, 32)), null)
    client.handshake.e = curve.generateKeyPair(filled(0x03, 32))
    const m1 = copy(client.send(c.decode(m.noisePayload, unhex(clientPayload))))
    server.recv(copy(m1))
    server.handshake.e = curve.generateKeyPair(filled(0x04, 32))
    const m2 = copy(server.send(c.decode(m.noisePayload, unhex(serverPayload))))
    client.recv(copy(m2))
    const f = client.final()
    check('NoiseWrap msg1 == §8.2', m1, hex(dht.msgs[0]))
    check('NoiseWrap msg2 == §8.2', m2, hex(dht.msgs[1]))
    check('NoiseWrap holepunchSecret', f.holepunchSecret, '82a4d8751e5f0c2548cff6232f429a18c06eb099e90f4178be6030d750c0397e')
    check('NoiseWrap remoteId', f.remoteId, 'a54ebf342ffd073f53b095f11e9c3f310d74b3c17e9180444d87d7bf533d4133')
  }

  // --- §12 secretstream frames (key = XX initiator tx, header a0..b7)
  const ssHeader = b4a.from(Array.from({ length: 24 }, (_, i) => 0xa0 + i))
  const st = secretstreamPushState(xx.initiatorTx, ssHeader)
  check('§12 HChaCha20 subkey (state.k)', st.subarray(0, 32), '9b732730fab5343111328c686f0d57a302b8effc508bfcfbfc99cd1e0b02faa0')
  const frame = (ct) => b4a.concat([b4a.from([ct.length & 0xff, (ct.length >> 8) & 0xff, ct.length >> 16]), ct])
  check('§12 initiator header frame', b4a.concat([b4a.from([56, 0, 0]), idI, ssHeader]),
    '380000 81db16addd83a7be6d290f46957a17f55a8e18008cdfb6ad6a2a00198919b670 a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7')
  check('§12 frame 1 "hello"', frame(secretstreamPush(st, b4a.from('hello'))), '160000 07457c6794f30f2bf5f8d250c07ce3e21ff8bd50a76f')
  check('§12 frame 2 ""', frame(secretstreamPush(st, b4a.alloc(0))), '110000 4970e8f2ba98a873a59bcc956eb0683751')
  check('§12 frame 3', frame(secretstreamPush(st, b4a.from('a longer message that spans more than sixteen bytes'))),
    `440000 3202ac5e314c276eb6dc65eb0674d81d7cb2c3f01e60825be46ceea7053801a0
     f12e10d5ded6095a4d334a6029728c5d93d6d3dbacccdd1ce5feecff024eb8f4 7886173d`)

  // --- init_pull-as-push equivalence against a real (random-header) init_push
  for (let i = 0; i < 4; i++) {
    const key = b4a.alloc(32)
    sodium.randombytes_buf(key)
    const a = b4a.alloc(SS.STATEBYTES)
    const hdr = b4a.alloc(SS.HEADERBYTES)
    sodium.crypto_secretstream_xchacha20poly1305_init_push(a, hdr, key)
    const b = secretstreamPushState(key, hdr)
    check('init_push state == init_pull state #' + i, a, hex(b))
    const msg = b4a.alloc(100 * i)
    sodium.randombytes_buf(msg)
    check('init_push ct == init_pull-state ct #' + i, secretstreamPush(a, msg), hex(secretstreamPush(b, msg)))
  }

  // --- §12 unordered datagram
  check('§12 datagram "ping"', secretboxDatagram(sendKeyI, unhex('0102030405060708'), b4a.from('ping')),
    '0102030405060708 33fb2fa71c8157b18462a821f4dd38f6 ebc5a67a')

  // --- determinism of the generator
  const g1 = JSON.stringify(generate('0x1234', 3))
  const g2 = JSON.stringify(generate('0x1234', 3))
  check('generator deterministic', g1 === g2 ? 'same' : 'different', 'same')

  console.log(`selftest: ${passes} passed, ${failures} failed`)
  return failures === 0
}

// ---------------------------------------------------------------------------------------------
// main

function usage (msg) {
  if (msg) process.stderr.write('error: ' + msg + '\n')
  process.stderr.write('usage: node gen-vectors.js [--count N] [--seed S] | --selftest\n')
  process.exit(2)
}

function main (argv) {
  // a consumer that stops reading early (e.g. `| head`) is not an error
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
