#!/usr/bin/env node
'use strict'

// hyperdht message and signature reference vectors for the p2pswarm interop tests
// (spec hyperdht.md §1.2, §3, §5, §11).
//
//   node gen-hyperdht-vectors.js [--count N] [--seed S]   -> one JSON object on stdout
//   node gen-hyperdht-vectors.js --selftest                -> checks the fixed spec vectors, exit 0/1
//
// Everything is produced by the installed JS packages themselves, never re-implemented:
//   * encodings: hyperdht 6.34.0 lib/messages.js (peer, announce, lookupRawReply,
//     mutableSignable, mutablePutRequest, mutableGetResponse, handshake, holepunch, noisePayload,
//     holepunchPayload, pluginRequest) through compact-encoding 3.5.2's encode/decode, and
//     hyperdht-address 1.1.1 (the address format connect() parses);
//   * key strings: hypercore-id-encoding's decode (what connect() calls on a string), z32;
//   * signatures: lib/persistent.js Persistent.signAnnounce / signUnannounce / signMutable /
//     verifyMutable; the announce / unannounce verdicts come from a real Persistent instance's
//     onannounce / onunannounce handlers (accepted = the handler replied), with a stand-in dht
//     object ({ id, _router }) and stand-in requests.
// Randomness comes from the same PRNG construction as gen-dht-vectors.js with its own domain
// string ("p2pswarm-interop/gen-hyperdht-vectors/v1:"), so a fixed --seed (and --count) always
// gives the same output.
//
// JSON format. Binary values are lowercase hex ("" = zero bytes); addresses are
// {"host", "port"}; every integer is a JSON number (all are <= 2^53 - 1).
// {
//  "seed": "0x…" | "123",
//  "vectors": { <kind>: [{ value, hex, decoded }] }
//      kind is one of peer, announce, lookupRawReply, mutableSignable, mutablePutRequest,
//      mutableGetResponse, handshake, holepunch, noisePayload, holepunchPayload, pluginRequest,
//      hyperdhtAddress. `value` is the encoder's input normalised to the decoder's shape (what
//      the bytes mean; e.g. the udx / secretStream / relayThrough versions the encoder writes,
//      bump 0 for an absent bump, [] for absent address lists), `hex` what the JS encoder wrote,
//      `decoded` what the JS decoder returns for `hex`. Each kind first lists every
//      optional-field combination, then random ones. Shapes (JS field names):
//        peer               {publicKey, relayAddresses: [addr]}
//        announce           {peer|null, refresh|null, signature|null, bump}
//        lookupRawReply     {peers: [peer], bump}
//        mutableSignable    {seq, value}
//        mutablePutRequest  {publicKey, seq, value, signature}
//        mutableGetResponse {seq, value, signature}
//        handshake          {mode, noise, peerAddress|null, relayAddress|null}
//        holepunch          {mode, id, payload, peerAddress|null}
//        noisePayload       {version, error, firewall, holepunch: {id, relays: [{relayAddress,
//                            peerAddress}]}|null, addresses4: [addr], addresses6: [addr],
//                            udx: {version, reusableSocket, id, seq}|null,
//                            secretStream: {version}|null, relayThrough: {version, publicKey,
//                            token}|null, relayAddresses: [addr]|null}
//        holepunchPayload   {connected, punching, error, firewall, round, addresses: [addr]|null,
//                            remoteAddress|null, token|null, remoteToken|null}
//        pluginRequest      {plugin, version, command, value|null}
//        hyperdhtAddress    {key, nodes: [addr]|null}
//  "decodes": [{kind, case, hex, decoded|null}]   arbitrary bytes (cut, mutated, extended,
//      hand-made) and what the JS decoder makes of them; null = it throws
//  "keyStrings": [{input, key|null}]   hypercore-id-encoding decode (connect()'s string path);
//      null = it throws
//  "z32": [{bytes, text}]   z32.encode(bytes) = text; z32Decodes: [{text, bytes|null}]
//  "announces" / "unannounces": [{seed, publicKey, target, nodeId, token, peer, refresh|null,
//      signature, checks: [{case, target, nodeId, token, value, accepted}]}]
//      signature = Persistent.signAnnounce/signUnannounce(target, token, nodeId, {peer, refresh});
//      each check sends `value` (an announce encoding) with `token` and `target` to a Persistent
//      whose dht.id is `nodeId`; accepted = the handler replied (signature valid)
//  "mutables": [{seed, publicKey, seq, value, signature, putHex,
//      checks: [{case, publicKey, seq, value, signature, accepted}]}]
//      accepted = Persistent.verifyMutable(signature, seq, value, publicKey)
// }

const sodium = require('sodium-universal')
const b4a = require('b4a')
const c = require('compact-encoding')
const z32 = require('z32')
const idEncoding = require('hypercore-id-encoding')
const HyperDHTAddress = require('hyperdht-address')
const m = require('hyperdht/lib/messages')
const Persistent = require('hyperdht/lib/persistent')
const { createKeyPair, hash } = require('hyperdht/lib/crypto')
const { COMMANDS, ERROR, FIREWALL, NS } = require('hyperdht/lib/constants')

const MAX_SAFE = 2 ** 53 - 1

// ---------------------------------------------------------------------------------------------
// helpers

const hex = (b) => b4a.toString(b, 'hex')
const hexOrNull = (b) => (b ? hex(b) : null)
const unhex = (s) => b4a.from(s.replace(/\s+/g, ''), 'hex')
const addr = (a) => ({ host: a.host, port: a.port })
const addrOrNull = (a) => (a ? addr(a) : null)

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

function tryDecode (enc, buf) {
  try {
    return c.decode(enc, buf)
  } catch {
    return null
  }
}

// ---------------------------------------------------------------------------------------------
// Deterministic PRNG (as gen-dht-vectors.js, own domain string):
//   key     = BLAKE2b-256( utf8("p2pswarm-interop/gen-hyperdht-vectors/v1:" + canonicalSeed) )
//   block i = BLAKE2b-512( u64le(i) ; key = key ),  i = 0, 1, 2, ...  (bytes consumed in order)
// Integers: 8 bytes u64 LE, rejection sampling (x < 2^64 - 2^64 mod span), lo + x mod span.

class Prng {
  constructor (canonicalSeed) {
    this.key = blake2b(32, b4a.from('p2pswarm-interop/gen-hyperdht-vectors/v1:' + canonicalSeed))
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

  // A uint over every varint size (1, 3, 5 and 9 bytes), small values more often.
  uint () {
    switch (this.int(0, 5)) {
      case 0: return this.int(0, 3)
      case 1: return this.int(0, 0xfc)
      case 2: return this.int(0xfd, 0xffff)
      case 3: return this.int(0x10000, 0xffffffff)
      case 4: return this.int(2 ** 32, MAX_SAFE)
      default: return this.pick([0, 0xfc, 0xfd, 0xffff, 0x10000, 0xffffffff, 2 ** 32, MAX_SAFE])
    }
  }

  // A value the JS encoders size as one byte (their preencode assumes < 253): mostly the known
  // enum values.
  small (known) {
    return this.int(0, 3) === 0 ? this.int(0, 0xfc) : this.int(0, known)
  }

  buf (max) {
    return this.bytes(this.int(0, max))
  }

  addr4 () {
    const b = this.bytes(4)
    return { host: `${b[0]}.${b[1]}.${b[2]}.${b[3]}`, port: this.int(0, 0xffff) }
  }

  addr6 () {
    const b = this.bytes(16)
    const groups = []
    for (let i = 0; i < 16; i += 2) groups.push(((b[i] << 8) | b[i + 1]).toString(16))
    return { host: groups.join(':'), port: this.int(0, 0xffff) }
  }

  list (max, gen) {
    const n = this.int(0, max)
    const out = []
    for (let i = 0; i < n; i++) out.push(gen())
    return out
  }

  string () {
    const parts = ['a', 'z', '0', '-', '/', ' ', 'é', 'ß', '€', '中', '😀', 'hyperswarm', 'plugin']
    let s = ''
    const n = this.int(0, 8)
    for (let i = 0; i < n; i++) s += this.pick(parts)
    return s
  }
}

function parseSeed (s) {
  if (/^[0-9]+$/.test(s)) return BigInt(s).toString(10)
  const mm = /^(?:0x)?([0-9a-fA-F]+)$/.exec(s)
  if (mm) return '0x' + mm[1].toLowerCase()
  throw new Error('--seed must be a decimal integer or a hex string (optionally 0x-prefixed)')
}

// ---------------------------------------------------------------------------------------------
// Normalisation of decoder-shaped objects to JSON

const normPeer = (p) => ({ publicKey: hex(p.publicKey), relayAddresses: p.relayAddresses.map(addr) })

const NORM = {
  peer: normPeer,
  announce: (a) => ({
    peer: a.peer ? normPeer(a.peer) : null,
    refresh: hexOrNull(a.refresh),
    signature: hexOrNull(a.signature),
    bump: a.bump || 0
  }),
  lookupRawReply: (r) => ({ peers: r.peers.map(normPeer), bump: r.bump }),
  mutableSignable: (r) => ({ seq: r.seq, value: hex(r.value) }),
  mutablePutRequest: (r) => ({
    publicKey: hex(r.publicKey), seq: r.seq, value: hex(r.value), signature: hex(r.signature)
  }),
  mutableGetResponse: (r) => ({ seq: r.seq, value: hex(r.value), signature: hex(r.signature) }),
  handshake: (h) => ({
    mode: h.mode, noise: hex(h.noise), peerAddress: addrOrNull(h.peerAddress), relayAddress: addrOrNull(h.relayAddress)
  }),
  holepunch: (h) => ({ mode: h.mode, id: h.id, payload: hex(h.payload), peerAddress: addrOrNull(h.peerAddress) }),
  noisePayload: (p) => ({
    version: p.version,
    error: p.error,
    firewall: p.firewall,
    holepunch: p.holepunch
      ? { id: p.holepunch.id, relays: p.holepunch.relays.map((r) => ({ relayAddress: addr(r.relayAddress), peerAddress: addr(r.peerAddress) })) }
      : null,
    addresses4: (p.addresses4 || []).map(addr),
    addresses6: (p.addresses6 || []).map(addr),
    udx: p.udx ? { version: p.udx.version, reusableSocket: !!p.udx.reusableSocket, id: p.udx.id, seq: p.udx.seq } : null,
    secretStream: p.secretStream ? { version: p.secretStream.version } : null,
    relayThrough: p.relayThrough
      ? { version: p.relayThrough.version, publicKey: hex(p.relayThrough.publicKey), token: hex(p.relayThrough.token) }
      : null,
    relayAddresses: p.relayAddresses ? p.relayAddresses.map(addr) : null
  }),
  holepunchPayload: (p) => ({
    connected: !!p.connected,
    punching: !!p.punching,
    error: p.error,
    firewall: p.firewall,
    round: p.round,
    addresses: p.addresses ? p.addresses.map(addr) : null,
    remoteAddress: addrOrNull(p.remoteAddress),
    token: hexOrNull(p.token),
    remoteToken: hexOrNull(p.remoteToken)
  }),
  pluginRequest: (p) => ({ plugin: p.plugin, version: p.version, command: p.command, value: hexOrNull(p.value) }),
  hyperdhtAddress: (a) => ({ key: hex(a.key), nodes: a.nodes ? a.nodes.map(addr) : null })
}

// Encoders and decoders per kind, all from the JS packages.
const CODEC = {
  peer: m.peer,
  announce: m.announce,
  lookupRawReply: m.lookupRawReply,
  mutableSignable: m.mutableSignable,
  mutablePutRequest: m.mutablePutRequest,
  mutableGetResponse: m.mutableGetResponse,
  handshake: m.handshake,
  holepunch: m.holepunch,
  noisePayload: m.noisePayload,
  holepunchPayload: m.holepunchPayload,
  pluginRequest: m.pluginRequest
}

function encodeKind (kind, value) {
  if (kind === 'hyperdhtAddress') return HyperDHTAddress.encode(value.key, value.nodes)
  if (kind === 'lookupRawReply') {
    // As a storage node does: stored record encodings written back to back (array(raw)).
    return c.encode(m.lookupRawReply, { peers: value.peers.map((p) => c.encode(m.peer, p)), bump: value.bump })
  }
  return c.encode(CODEC[kind], value)
}

function decodeKind (kind, buf) {
  try {
    const d = kind === 'hyperdhtAddress' ? HyperDHTAddress.decode(buf) : c.decode(CODEC[kind], buf)
    return NORM[kind](d)
  } catch {
    return null
  }
}

// ---------------------------------------------------------------------------------------------
// Random instances. `mask` selects the optional fields; gen returns { input, value } where
// `input` goes to the JS encoder and `value` is its meaning in decoder shape.

function genPeer (rng, maxRelays = 5) {
  return { publicKey: rng.bytes(32), relayAddresses: rng.list(maxRelays, () => rng.addr4()) }
}

const GEN = {
  peer: {
    bits: 0,
    gen (rng) {
      const p = genPeer(rng, 6)
      return { input: p, value: NORM.peer(p) }
    }
  },
  announce: {
    bits: 4,
    gen (rng, mask) {
      const input = {
        peer: mask & 1 ? genPeer(rng) : null,
        refresh: mask & 2 ? rng.bytes(32) : null,
        signature: mask & 4 ? rng.bytes(64) : null
      }
      if (mask & 8) input.bump = Math.max(1, rng.uint())
      else if (rng.bool()) input.bump = 0 // else: absent
      return { input, value: NORM.announce(input) }
    }
  },
  lookupRawReply: {
    bits: 2,
    gen (rng, mask) {
      const peers = mask & 1 ? rng.list(4, () => genPeer(rng)) : []
      if (mask & 1 && peers.length === 0) peers.push(genPeer(rng))
      const input = { peers, bump: mask & 2 ? Math.max(1, rng.uint()) : 0 }
      return { input, value: NORM.lookupRawReply(input) }
    }
  },
  mutableSignable: {
    bits: 0,
    gen (rng) {
      const input = { seq: rng.uint(), value: rng.buf(rng.pick([4, 300])) }
      return { input, value: NORM.mutableSignable(input) }
    }
  },
  mutablePutRequest: {
    bits: 0,
    gen (rng) {
      const input = { publicKey: rng.bytes(32), seq: rng.uint(), value: rng.buf(rng.pick([4, 300])), signature: rng.bytes(64) }
      return { input, value: NORM.mutablePutRequest(input) }
    }
  },
  mutableGetResponse: {
    bits: 0,
    gen (rng) {
      const input = { seq: rng.uint(), value: rng.buf(rng.pick([4, 300])), signature: rng.bytes(64) }
      return { input, value: NORM.mutableGetResponse(input) }
    }
  },
  handshake: {
    bits: 2,
    gen (rng, mask) {
      const input = {
        mode: rng.small(4),
        noise: rng.buf(rng.pick([0, 100, 300])),
        peerAddress: mask & 1 ? rng.addr4() : null,
        relayAddress: mask & 2 ? rng.addr4() : null
      }
      return { input, value: NORM.handshake(input) }
    }
  },
  holepunch: {
    bits: 1,
    gen (rng, mask) {
      const input = {
        mode: rng.small(4),
        id: rng.uint(),
        payload: rng.buf(rng.pick([0, 100, 300])),
        peerAddress: mask & 1 ? rng.addr4() : null
      }
      return { input, value: NORM.holepunch(input) }
    }
  },
  noisePayload: {
    bits: 7,
    gen (rng, mask) {
      const input = {
        version: 1,
        error: rng.small(3),
        firewall: rng.small(3),
        holepunch: mask & 1
          ? { id: rng.uint(), relays: rng.list(3, () => ({ relayAddress: rng.addr4(), peerAddress: rng.addr4() })) }
          : null,
        // An empty list is not put on the wire: "off" is null or [].
        addresses4: mask & 2 ? [rng.addr4(), ...rng.list(3, () => rng.addr4())] : rng.pick([null, []]),
        addresses6: mask & 4 ? [rng.addr6(), ...rng.list(2, () => rng.addr6())] : rng.pick([null, []]),
        udx: mask & 8 ? { reusableSocket: rng.bool(), id: rng.uint(), seq: rng.pick([0, rng.uint()]) } : null,
        secretStream: mask & 16 ? {} : null,
        relayThrough: mask & 32 ? { publicKey: rng.bytes(32), token: rng.bytes(32) } : null,
        // An empty list is put on the wire.
        relayAddresses: mask & 64 ? rng.list(3, () => rng.addr4()) : null
      }
      // The encoder writes version 1 for the payload, udx and secretStream, and relayThrough
      // version 1 / flags 0, whatever the input says.
      const value = NORM.noisePayload({
        ...input,
        udx: input.udx && { ...input.udx, version: 1 },
        secretStream: input.secretStream && { version: 1 },
        relayThrough: input.relayThrough && { ...input.relayThrough, version: 1 }
      })
      return { input, value }
    }
  },
  holepunchPayload: {
    bits: 6,
    gen (rng, mask) {
      const input = {
        connected: (mask & 1) !== 0,
        punching: (mask & 2) !== 0,
        error: rng.small(3),
        firewall: rng.small(3),
        round: rng.small(3),
        // Any array, even an empty one, is put on the wire.
        addresses: mask & 4 ? rng.list(3, () => rng.addr4()) : null,
        remoteAddress: mask & 8 ? rng.addr4() : null,
        token: mask & 16 ? rng.bytes(32) : null,
        remoteToken: mask & 32 ? rng.bytes(32) : null
      }
      return { input, value: NORM.holepunchPayload(input) }
    }
  },
  pluginRequest: {
    bits: 1,
    gen (rng, mask) {
      const input = {
        plugin: rng.string(),
        version: rng.uint(),
        command: rng.uint(),
        // Any buffer, even an empty one, is put on the wire.
        value: mask & 1 ? rng.buf(rng.pick([0, 40])) : null
      }
      return { input, value: NORM.pluginRequest(input) }
    }
  },
  hyperdhtAddress: {
    bits: 1,
    gen (rng, mask) {
      const input = { key: rng.bytes(32), nodes: mask & 1 ? rng.list(4, () => rng.addr4()) : null }
      return { input, value: NORM.hyperdhtAddress(input) }
    }
  }
}

function vectors (rng, count) {
  const out = {}
  for (const [kind, g] of Object.entries(GEN)) {
    const list = []
    const combos = 1 << g.bits
    for (let i = 0; i < combos + count; i++) {
      const mask = i < combos ? i : rng.int(0, combos - 1)
      const { input, value } = g.gen(rng, mask)
      const buf = encodeKind(kind, input)
      list.push({ value, hex: hex(buf), decoded: decodeKind(kind, buf) })
    }
    out[kind] = list
  }
  return out
}

// ---------------------------------------------------------------------------------------------
// Decoding arbitrary bytes

const HANDMADE = [
  // kind, case, hex
  ['announce', 'flags as a non-minimal varint', 'fd0000'],
  ['announce', 'unknown flag bits', 'f0'],
  ['announce', 'bump bit with bump 0', '0800'],
  ['announce', 'bump bit without a bump', '08'],
  ['announce', 'empty', ''],
  ['lookupRawReply', 'no bump', '00'],
  ['lookupRawReply', 'empty', ''],
  ['lookupRawReply', 'array too big', 'fe01001000'],
  ['lookupRawReply', 'bump above 2^53 - 1', '00ffffffffffffffffff'],
  ['lookupRawReply', 'bump 2^53 - 1', '00ffffffffffffff1f00'],
  ['noisePayload', 'version 2 with trailing bytes', '02ffffffff'],
  ['noisePayload', 'version 0', '00'],
  ['noisePayload', 'version 256 (non-minimal varint)', 'fd0001'],
  ['noisePayload', 'version 1 as a non-minimal varint', 'fd010000000000'],
  ['noisePayload', 'version only', '01'],
  ['noisePayload', 'unknown flag bits', '01800000'],
  ['noisePayload', 'udx feature bits beyond reusableSocket', '010800000103fd393000'],
  ['noisePayload', 'udx version 7', '0108000007000500'],
  ['noisePayload', 'secretStream version 9', '0110000009'],
  ['noisePayload', 'relayAddresses flag with empty list', '014000000000'],
  ['noisePayload', 'addresses4 flag with empty list', '0102000000'],
  ['handshake', 'unknown flag bits and mode 200', 'fc' + 'c8' + '00'],
  ['handshake', 'empty noise', '000000'],
  ['holepunch', 'mode 99', '006300' + '00'],
  ['holepunchPayload', 'unknown flag bits', 'c000000000'],
  ['pluginRequest', 'invalid UTF-8 in the name', '04' + 'ff61c328' + '010200'],
  ['pluginRequest', 'truncated UTF-8 in the name', '03' + '61e282' + '000000'],
  ['pluginRequest', 'flags with bit0 and others', '00000007' + '0178'],
  ['hyperdhtAddress', 'bare key', '11'.repeat(32)],
  ['hyperdhtAddress', 'flags 0', '11'.repeat(32) + '00'],
  ['hyperdhtAddress', 'flags 2', '11'.repeat(32) + '02'],
  ['hyperdhtAddress', 'flags 1 without nodes', '11'.repeat(32) + '01'],
  ['hyperdhtAddress', 'short key', '11'.repeat(31)],
  ['mutablePutRequest', 'missing signature', '22'.repeat(32) + '0000']
]

function decodeCases (rng, vecs, count) {
  const out = []
  for (const [kind, name, h] of HANDMADE) out.push({ kind, case: name, hex: h, decoded: decodeKind(kind, unhex(h)) })
  for (const [kind, list] of Object.entries(vecs)) {
    for (let i = 0; i < count; i++) {
      const base = unhex(rng.pick(list).hex)
      let buf
      let name
      switch (rng.int(0, 3)) {
        case 0:
          name = 'cut'
          buf = base.subarray(0, rng.int(0, base.length))
          break
        case 1:
          name = 'trailing bytes'
          buf = b4a.concat([base, rng.bytes(rng.int(1, 8))])
          break
        default: {
          name = 'mutated'
          buf = b4a.from(base)
          const n = rng.int(1, 3)
          for (let j = 0; j < n && buf.length; j++) {
            const at = rng.int(0, Math.min(buf.length - 1, rng.pick([3, 8, buf.length - 1])))
            buf[at] = rng.pick([rng.int(0, 255), rng.int(0, 7), 0xfd, 0xfe, 0xff])
          }
        }
      }
      out.push({ kind, case: name, hex: hex(buf), decoded: decodeKind(kind, buf) })
    }
  }
  return out
}

// ---------------------------------------------------------------------------------------------
// Key strings and z32

function keyStrings (rng, count) {
  const inputs = []
  const z32Alphabet = z32.ALPHABET
  for (let i = 0; i < count; i++) {
    const key = rng.bytes(32)
    const h = hex(key)
    const z = z32.encode(key)
    switch (i % 12) {
      case 0: inputs.push(h); break
      case 1: inputs.push(h.toUpperCase()); break
      case 2: inputs.push(z); break
      case 3: inputs.push('pear://' + z); break
      case 4: inputs.push('pear://' + h + '/app/path'); break
      case 5: {
        // The 4 bits past the key in the last character are ignored.
        const last = z32Alphabet.indexOf(z[51])
        inputs.push(z.slice(0, 51) + z32Alphabet[(last & 0x10) | rng.int(0, 15)])
        break
      }
      case 6: {
        const at = rng.int(0, 63)
        inputs.push(h.slice(0, at) + rng.pick(['g', 'x', ' ', 'G', '-']) + h.slice(at + 1))
        break
      }
      case 7: {
        const at = rng.int(0, 51)
        inputs.push(z.slice(0, at) + rng.pick(['l', 'v', '0', '2', 'Y', '!']) + z.slice(at + 1))
        break
      }
      case 8: inputs.push(rng.pick([h.slice(0, 62), h + 'ab', z.slice(0, 51), z + 'y', '', 'pear://', 'PEAR://' + z])); break
      case 9: inputs.push(z.toUpperCase()); break
      case 10: inputs.push(h.slice(0, 63) + 'é'); break
      default: inputs.push('pear://' + z + '/')
    }
  }
  return inputs.map((input) => {
    let key = null
    try {
      key = hex(HyperDHTAddress.decode(idEncoding.decode(input)).key)
    } catch {}
    return { input, key }
  })
}

function z32Cases (rng, count) {
  const enc = []
  const dec = []
  for (let i = 0; i < count; i++) {
    const bytes = rng.buf(40)
    enc.push({ bytes: hex(bytes), text: z32.encode(bytes) })
    let text = ''
    const n = rng.int(0, 60)
    for (let j = 0; j < n; j++) text += z32.ALPHABET[rng.int(0, 31)]
    if (rng.int(0, 4) === 0 && n) text = text.slice(0, n - 1) + rng.pick(['l', 'v', '0', 'A'])
    let out = null
    try {
      out = hex(z32.decode(text))
    } catch {}
    dec.push({ text, bytes: out })
  }
  return { enc, dec }
}

// ---------------------------------------------------------------------------------------------
// Signatures

function makePersistent (id) {
  const cache = { maxSize: 1000, maxAge: 0 }
  const dht = { id, _router: new Map(), plugins: new Map() }
  return new Persistent(dht, { records: cache, bumps: cache, refreshes: cache, mutables: cache, immutables: cache })
}

// Sends an (un)announce to a fresh Persistent with dht.id = nodeId; accepted = it replied.
function storageAccepts (unannounce, target, nodeId, token, value) {
  const p = makePersistent(nodeId)
  let accepted = false
  const req = {
    target,
    token,
    value,
    from: { host: '10.0.0.1', port: 4000 },
    reply () { accepted = true },
    error () {}
  }
  if (unannounce) p.onunannounce(req)
  else p.onannounce(req)
  p.destroy()
  return accepted
}

function flipBit (rng, buf) {
  const out = b4a.from(buf)
  const bit = rng.int(0, out.length * 8 - 1)
  out[bit >> 3] ^= 1 << (bit & 7)
  return out
}

// Ed25519 group order; S + L is a non-canonical encoding of the same scalar (libsodium refuses).
const L = (1n << 252n) + 27742317777372353535851937790883648493n

function nonCanonicalS (sig) {
  const s = sig.subarray(32).readBigUInt64LE(0) +
    (sig.subarray(40).readBigUInt64LE(0) << 64n) +
    (sig.subarray(48).readBigUInt64LE(0) << 128n) +
    (sig.subarray(56).readBigUInt64LE(0) << 192n)
  const t = s + L
  if (t >= 1n << 256n) return null
  const out = b4a.from(sig)
  for (let i = 0; i < 4; i++) out.writeBigUInt64LE((t >> BigInt(64 * i)) & ((1n << 64n) - 1n), 32 + 8 * i)
  return out
}

function announceCases (rng, count, unannounce) {
  const out = []
  const sign = unannounce ? Persistent.signUnannounce : Persistent.signAnnounce
  for (let i = 0; i < count; i++) {
    const seed = rng.bytes(32)
    const keyPair = createKeyPair(seed)
    const other = createKeyPair(rng.bytes(32))
    // Announcing self (target = H256(pk)) sometimes; unannounce records usually have no relays.
    const target = rng.int(0, 2) === 0 ? hash(keyPair.publicKey) : rng.bytes(32)
    const nodeId = rng.bytes(32)
    const token = rng.bytes(32)
    const peer = { publicKey: keyPair.publicKey, relayAddresses: unannounce && rng.bool() ? [] : rng.list(5, () => rng.addr4()) }
    const refresh = rng.int(0, 3) === 0 ? rng.bytes(32) : null
    const bump = rng.bool() ? rng.uint() : 0
    const ann = { peer, refresh, signature: null, bump }
    const signature = sign(target, token, nodeId, ann, keyPair)
    const enc = (a) => c.encode(m.announce, { ...ann, ...a })

    const variants = [
      ['genuine', target, nodeId, token, enc({ signature })],
      ['flipped signature bit', target, nodeId, token, enc({ signature: flipBit(rng, signature) })],
      ['other node id', target, flipBit(rng, nodeId), token, enc({ signature })],
      ['other token', target, nodeId, flipBit(rng, token), enc({ signature })],
      ['other target', flipBit(rng, target), nodeId, token, enc({ signature })],
      ['wrong key', target, nodeId, token, enc({ signature, peer: { ...peer, publicKey: other.publicKey } })],
      ['other relays', target, nodeId, token, enc({ signature, peer: { ...peer, relayAddresses: [...peer.relayAddresses, rng.addr4()] } })],
      ['refresh toggled', target, nodeId, token, enc({ signature, refresh: refresh ? null : rng.bytes(32) })],
      ['no signature', target, nodeId, token, enc({ signature: null })],
      ['other bump (unsigned)', target, nodeId, token, enc({ signature, bump: bump === MAX_SAFE ? 1 : bump + 1 })],
      ['other namespace', target, nodeId, token,
        enc({ signature: (unannounce ? Persistent.signAnnounce : Persistent.signUnannounce)(target, token, nodeId, ann, keyPair) })]
    ]
    const nc = nonCanonicalS(signature)
    if (nc) variants.push(['non-canonical S', target, nodeId, token, enc({ signature: nc })])

    out.push({
      seed: hex(seed),
      publicKey: hex(keyPair.publicKey),
      target: hex(target),
      nodeId: hex(nodeId),
      token: hex(token),
      peer: NORM.peer(peer),
      refresh: hexOrNull(refresh),
      bump,
      signature: hex(signature),
      checks: variants.map(([name, t, id, tok, value]) => ({
        case: name,
        target: hex(t),
        nodeId: hex(id),
        token: hex(tok),
        value: hex(value),
        accepted: storageAccepts(unannounce, t, id, tok, value)
      }))
    })
  }
  return out
}

function mutableCases (rng, count) {
  const out = []
  for (let i = 0; i < count; i++) {
    const seed = rng.bytes(32)
    const keyPair = createKeyPair(seed)
    const seq = rng.uint()
    const value = rng.buf(rng.pick([0, 10, 1000]))
    const signature = Persistent.signMutable(seq, value, keyPair)
    const putHex = hex(c.encode(m.mutablePutRequest, { publicKey: keyPair.publicKey, seq, value, signature }))
    const variants = [
      ['genuine', keyPair.publicKey, seq, value, signature],
      ['flipped signature bit', keyPair.publicKey, seq, value, flipBit(rng, signature)],
      ['wrong key', createKeyPair(rng.bytes(32)).publicKey, seq, value, signature],
      ['other seq', keyPair.publicKey, seq === MAX_SAFE ? 0 : seq + 1, value, signature],
      ['other value', keyPair.publicKey, seq, value.length ? flipBit(rng, value) : b4a.from([0]), signature]
    ]
    const nc = nonCanonicalS(signature)
    if (nc) variants.push(['non-canonical S', keyPair.publicKey, seq, value, nc])
    out.push({
      seed: hex(seed),
      publicKey: hex(keyPair.publicKey),
      seq,
      value: hex(value),
      signature: hex(signature),
      putHex,
      checks: variants.map(([name, pk, s, v, sig]) => ({
        case: name,
        publicKey: hex(pk),
        seq: s,
        value: hex(v),
        signature: hex(sig),
        accepted: Persistent.verifyMutable(sig, s, v, pk)
      }))
    })
  }
  return out
}

// ---------------------------------------------------------------------------------------------

function generate (canonicalSeed, count) {
  const rng = new Prng(canonicalSeed)
  const vecs = vectors(rng, count)
  const z = z32Cases(rng, count)
  return {
    seed: canonicalSeed,
    vectors: vecs,
    decodes: decodeCases(rng, vecs, 2 * count),
    keyStrings: keyStrings(rng, 2 * count),
    z32: z.enc,
    z32Decodes: z.dec,
    announces: announceCases(rng, count, false),
    unannounces: announceCases(rng, count, true),
    mutables: mutableCases(rng, count)
  }
}

// ---------------------------------------------------------------------------------------------
// selftest: the fixed vectors of hyperdht.md §1.2, §2, §3, §5, §11 through the JS code.

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
  const kp1 = createKeyPair(b4a.alloc(32, 1))
  const PK1 = '8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c'
  const SIG = 'dbdb3bb3d950551512019ff98589284cd3e5559a865a10c31847ea8b0f8f6531b78624c5c89062e52fa3b731b7483919c0df42663840037d3d8bfde13fe80803'

  // §1
  check('§1.1 pk(seed 01)', hex(kp1.publicKey), PK1)
  check('§1.1 pk(seed 02)', hex(createKeyPair(b4a.alloc(32, 2)).publicKey), '8139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394')
  check('§1.2 H256(pk)', hex(hash(kp1.publicKey)), 'c5e21ab1c9f6022d81c3b25e3436cb7f1df77f9652ae3e1310c28e621dd87b4c')
  check('§1.2 H256(hello)', hex(hash(b4a.from('hello'))), '324dcf027dd4a30a932c441f365a25e86b173defa4b8e58948253471b81b72cf')
  check('§1.2 NS', [NS.PEER_HANDSHAKE, NS.PEER_HOLEPUNCH, NS.ANNOUNCE, NS.UNANNOUNCE, NS.MUTABLE_PUT, NS.PLUGIN].map(hex), [
    '14d6d4b49214ab1033ed204976caa258bae9e1e8543b9ad1fd996a910b0c4e3a',
    'f1191cd5e67b10b54a507033280ed1ff0e12278268d5679c8f93d417210d168b',
    '36386adddf9f6fd60db83a6f42fc159d1146aa8644037664230aaa1f0179d497',
    'ded293cd93fb395e756ecf5fff426529e72c36eacc22e5ed944d9099a2561e32',
    '668e823edd5ce7f5338d68bf1161f4a3c28ce437ee2ab49efd30d99366039b1e',
    '6b8a2a8623f28c6c02a1e22abe515ce31cafd9af61d4b69970639aa7eb96a8d5'
  ])
  // §2, §11
  check('§2 commands', COMMANDS, { PEER_HANDSHAKE: 0, PEER_HOLEPUNCH: 1, FIND_PEER: 2, LOOKUP: 3, ANNOUNCE: 4, UNANNOUNCE: 5, MUTABLE_PUT: 6, MUTABLE_GET: 7, IMMUTABLE_PUT: 8, IMMUTABLE_GET: 9, PLUGIN: 10 })
  check('§11 errors', ERROR, { NONE: 0, ABORTED: 1, VERSION_MISMATCH: 2, TRY_LATER: 3, SEQ_REUSED: 16, SEQ_TOO_LOW: 17 })
  check('§3.8 firewall', FIREWALL, { UNKNOWN: 0, OPEN: 1, CONSISTENT: 2, RANDOM: 3 })

  // §3
  const peer = { publicKey: kp1.publicKey, relayAddresses: [{ host: '1.2.3.4', port: 5 }] }
  check('§3.2 announce', hex(c.encode(m.announce, { peer, refresh: null, signature: unhex(SIG) })), `05 ${PK1} 01 010203040500 ${SIG}`)
  check('§3.3 lookupRawReply', hex(c.encode(m.lookupRawReply, { peers: [c.encode(m.peer, peer)], bump: 0 })), `01 ${PK1} 01 010203040500 00`)
  check('§3.3 lookupRawReply without bump decodes', NORM.lookupRawReply(c.decode(m.lookupRawReply, unhex(`01 ${PK1} 01 010203040500`))).bump, 0)
  const A = { host: '9.8.7.6', port: 1000 }
  check('§3.6 handshake', hex(c.encode(m.handshake, { mode: 2, noise: b4a.from('abcd'), peerAddress: A, relayAddress: null })), '01 02 04 61626364 09080706e803')
  check('§3.7 holepunch', hex(c.encode(m.holepunch, { mode: 0, id: 3, payload: b4a.from('abcd'), peerAddress: A })), '01 00 03 04 61626364 09080706e803')
  check('§3.8 noisePayload client', hex(c.encode(m.noisePayload, {
    version: 1, error: 0, firewall: 0, holepunch: null, addresses4: [{ host: '192.168.1.10', port: 49737 }], addresses6: [],
    udx: { reusableSocket: false, id: 1234, seq: 0 }, secretStream: {}, relayThrough: null, relayAddresses: null
  })), '01 1a 00 00 01 c0a8010a49c2 01 00 fdd204 00 01')
  const R1 = { host: '1.1.1.1', port: 49737 }
  check('§3.8 noisePayload server', hex(c.encode(m.noisePayload, {
    version: 1, error: 0, firewall: 2, holepunch: { id: 0, relays: [{ relayAddress: R1, peerAddress: { host: '2.2.2.2', port: 40000 } }] },
    addresses4: [], addresses6: [], udx: { reusableSocket: false, id: 5678, seq: 0 }, secretStream: {}, relayThrough: null, relayAddresses: [R1]
  })), '01 59 00 02 00 01 0101010149c2 02020202409c 01 00 fd2e16 00 01 01 0101010149c2')
  check('§3.8 noisePayload version 2', NORM.noisePayload(c.decode(m.noisePayload, unhex('02 ff ff'))).version, 2)
  check('§3.9 holepunchPayload', hex(c.encode(m.holepunchPayload, {
    connected: false, punching: false, error: 0, firewall: 2, round: 0, addresses: [{ host: '2.2.2.2', port: 40000 }], remoteAddress: null, token: null, remoteToken: null
  })), '04 00 02 00 01 02020202409c')
  check('§3.10 pluginRequest', hex(c.encode(m.pluginRequest, { plugin: 'ab', version: 1, command: 2, value: b4a.from('x') })), '02 6162 01 02 01 01 78')
  check('§3.11 hyperdht-address', hex(HyperDHTAddress.encode(b4a.alloc(32, 1), [{ host: '1.2.3.4', port: 5 }])), '01'.repeat(32) + '01 01 010203040500')

  // §5
  const target = hash(b4a.from('topic'))
  check('§5 H256(topic)', hex(target), '8197ab16630da3b3298f75d68a4230d39e4fb4d2ef46ec65aa3eadbb6cdb3048')
  const id = b4a.alloc(32, 0xaa)
  const token = b4a.alloc(32, 0xbb)
  check('§5 announce', hex(Persistent.signAnnounce(target, token, id, { peer, refresh: null }, kp1)), SIG)
  check('§5 unannounce', hex(Persistent.signUnannounce(target, token, id, { peer: { publicKey: kp1.publicKey, relayAddresses: [] }, refresh: null }, kp1)),
    'd05baf6a51f035bcc1da9b882905c7aafbc5ee2ccb0a0298719ac268dc5bf7b207ab68be009334052adf9e52077cd23cfc88a6760278ee9f67498302f5b67608')
  check('§5 mutable', hex(Persistent.signMutable(5, b4a.from('hello'), kp1)),
    '563f636d6d357642b088e989ccaf880f196dc28dca9e6bc00ff9612ce20eeef535aed98997424eb6caabd42545691df10e1ab9132748c1012c963869db33e406')
  check('§5 announce accepted by a storage node', storageAccepts(false, target, id, token, c.encode(m.announce, { peer, signature: unhex(SIG) })), true)
  check('§5 announce for another node refused', storageAccepts(false, target, b4a.alloc(32, 0xab), token, c.encode(m.announce, { peer, signature: unhex(SIG) })), false)

  // determinism
  check('generator deterministic', JSON.stringify(generate('0x1234', 3)) === JSON.stringify(generate('0x1234', 3)) ? 'same' : 'different', 'same')

  console.log(`selftest: ${passes} passed, ${failures} failed`)
  return failures === 0
}

// ---------------------------------------------------------------------------------------------

function usage (msg) {
  if (msg) process.stderr.write(msg + '\n')
  process.stderr.write('usage: node gen-hyperdht-vectors.js [--count N] [--seed S] | --selftest\n')
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
