#!/usr/bin/env node
'use strict'

// One udx-native 1.21.3 stream endpoint driven by a tiny line protocol, for Rust <-> JS UDX
// interop tests (see README.md, section "udx-peer.js").
//
//   node udx-peer.js --local-id ID --remote-id RID [--host 127.0.0.1] [--bytes N] [--recv-bytes R]
//                    [--role a|b] [--end-mode immediate|after-eof] [--destroy-after-recv K] [--expect-reset]
//                    [--messages K] [--echo-messages] [--wait-messages M] [--wait-messages-ms W]
//                    [--firewall accept|connect|drop] [--keepalive MS] [--linger-ms MS]
//                    [--timeout-ms T]
//
// stdin:  exactly one line, `connect HOST:PORT` (IPv6 as `[::1]:PORT`)
// stdout: `bound PORT` (first line), then any of
//   message-received I LEN                       (each well-formed stream message received)
//   done sent=N received=N messages=K            -> exit 0
//   destroyed                                    -> exit 0 (--destroy-after-recv)
//   reset received=M                             -> exit 0 (--expect-reset)
//   mismatch at OFFSET                           -> exit 1
//   error CODE MESSAGE                           -> exit 1
//   timeout                                      -> exit 2
// stderr: free-form diagnostics (`note ...`, `stats ...`); never needed to judge a run.

const UDX = require('udx-native')

const WRITE_SIZES = [1, 1000, 65536, 7, 300000, 16384]
const SEEDS = { a: 0x9e3779b9, b: 0x7f4a7c15 }

// ---------------------------------------------------------------------------------------------
// data generator: xorshift32, one step per byte, byte = s & 0xff

class Xorshift32 {
  constructor (seed) {
    this.s = seed >>> 0
  }

  fill (buf) {
    let s = this.s
    for (let i = 0; i < buf.length; i++) {
      s ^= s << 13
      s ^= s >>> 17
      s ^= s << 5
      s >>>= 0
      buf[i] = s & 0xff
    }
    this.s = s
    return buf
  }

  // index of the first byte of buf that does not match the stream, or -1 (state advanced)
  verify (buf) {
    let s = this.s
    for (let i = 0; i < buf.length; i++) {
      s ^= s << 13
      s ^= s >>> 17
      s ^= s << 5
      s >>>= 0
      if (buf[i] !== (s & 0xff)) return i
    }
    this.s = s
    return -1
  }
}

// ---------------------------------------------------------------------------------------------
// output helpers

let finished = false

function out (line) {
  // stdout to a pipe or file is synchronous on Linux, so exiting right after is safe
  process.stdout.write(line + '\n')
}

function note (line) {
  process.stderr.write('note ' + line + '\n')
}

function finish (line, code) {
  if (finished) return
  finished = true
  if (line !== null) out(line)
  try {
    if (typeof printStats === 'function') printStats()
  } catch {}
  // CPU time of this process, for benchmarks (bench/udx-bench.js)
  const cpu = process.cpuUsage()
  process.stderr.write('cpu user_us=' + cpu.user + ' sys_us=' + cpu.system + '\n')
  process.exit(code)
}

function fail (code, message) {
  finish('error ' + code + ' ' + String(message).replace(/\s+/g, ' '), 1)
}

// ---------------------------------------------------------------------------------------------
// arguments

function usage (msg) {
  process.stderr.write(
    (msg ? msg + '\n' : '') +
      'usage: node udx-peer.js --local-id ID --remote-id RID [--host 127.0.0.1] [--bytes N]\n' +
      '         [--recv-bytes R] [--role a|b] [--end-mode immediate|after-eof] [--destroy-after-recv K]\n' +
      '         [--expect-reset] [--messages K] [--echo-messages] [--wait-messages M]\n' +
      '         [--wait-messages-ms W]\n' +
      '         [--firewall accept|connect|drop] [--keepalive MS] [--linger-ms MS]\n' +
      '         [--timeout-ms T]\n'
  )
  process.exit(1)
}

function parseUint (name, v, max) {
  if (!/^(0x[0-9a-fA-F]+|[0-9]+)$/.test(v)) usage(name + ': not a non-negative integer: ' + v)
  const n = Number(v)
  if (!Number.isSafeInteger(n) || n > max) usage(name + ': out of range: ' + v)
  return n
}

function parseArgs (argv) {
  const o = {
    localId: null,
    remoteId: null,
    host: '127.0.0.1',
    bytes: 0,
    recvBytes: null,
    role: 'a',
    endMode: 'immediate',
    destroyAfterRecv: -1,
    data: 'xorshift',
    expectReset: false,
    messages: 0,
    echoMessages: false,
    waitMessages: 0,
    waitMessagesMs: 0,
    firewall: 'accept',
    keepalive: 0,
    lingerMs: 0,
    timeoutMs: 120000
  }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const next = () => {
      if (i + 1 >= argv.length) usage('missing value for ' + a)
      return argv[++i]
    }
    switch (a) {
      case '--local-id': o.localId = parseUint(a, next(), 0xffffffff); break
      case '--remote-id': o.remoteId = parseUint(a, next(), 0xffffffff); break
      case '--host': o.host = next(); break
      case '--bytes': o.bytes = parseUint(a, next(), Number.MAX_SAFE_INTEGER); break
      case '--recv-bytes': o.recvBytes = parseUint(a, next(), Number.MAX_SAFE_INTEGER); break
      case '--role': o.role = next(); break
      case '--data': o.data = next(); break
      case '--end-mode': o.endMode = next(); break
      case '--destroy-after-recv': o.destroyAfterRecv = parseUint(a, next(), Number.MAX_SAFE_INTEGER); break
      case '--expect-reset': o.expectReset = true; break
      case '--messages': o.messages = parseUint(a, next(), 0xffffffff); break
      case '--echo-messages': o.echoMessages = true; break
      case '--wait-messages': o.waitMessages = parseUint(a, next(), 0xffffffff); break
      case '--wait-messages-ms': o.waitMessagesMs = parseUint(a, next(), 0x7fffffff); break
      case '--firewall': o.firewall = next(); break
      case '--keepalive': o.keepalive = parseUint(a, next(), 0x7fffffff); break
      case '--linger-ms': o.lingerMs = parseUint(a, next(), 0x7fffffff); break
      case '--timeout-ms': o.timeoutMs = parseUint(a, next(), 0x7fffffff); break
      case '-h': case '--help': usage(null); break
      default: usage('unknown argument ' + a)
    }
  }
  if (o.recvBytes === null) o.recvBytes = o.bytes
  if (o.localId === null || o.remoteId === null) usage('--local-id and --remote-id are required')
  if (o.role !== 'a' && o.role !== 'b') usage('--role must be a or b')
  if (o.endMode !== 'immediate' && o.endMode !== 'after-eof') usage('--end-mode must be immediate or after-eof')
  if (!['accept', 'connect', 'drop'].includes(o.firewall)) usage('--firewall must be accept, connect or drop')
  if (!UDX.isIP(o.host)) usage('--host must be an IP address: ' + o.host)
  if (o.destroyAfterRecv >= 0 && o.expectReset) usage('--destroy-after-recv and --expect-reset exclude each other')
  return o
}

const opts = parseArgs(process.argv.slice(2))

// ---------------------------------------------------------------------------------------------
// stream messages: 4-byte LE index i, then (i*37 % 2000) bytes of value (i & 0xff)

function messageLength (i) {
  return 4 + ((i * 37) % 2000)
}

function makeMessage (i) {
  const buf = Buffer.alloc(messageLength(i), i & 0xff)
  buf.writeUInt32LE(i >>> 0, 0)
  return buf
}

// returns the index if buf is a well-formed message, else -1
function parseMessage (buf) {
  if (buf.length < 4) return -1
  const i = buf.readUInt32LE(0)
  if (buf.length !== messageLength(i)) return -1
  const v = i & 0xff
  for (let k = 4; k < buf.length; k++) if (buf[k] !== v) return -1
  return i
}

// ---------------------------------------------------------------------------------------------
// state

const udx = new UDX()
const socket = udx.createSocket()
let stream = null

// --data block (benchmarks): a 1 MiB xorshift block repeated, so generating and checking the
// bytes costs a memcpy/memcmp rather than per-byte work in JavaScript.
class BlockGen {
  constructor (seed) {
    this.block = new Xorshift32(seed).fill(Buffer.allocUnsafe(1 << 20))
    this.pos = 0
  }

  fill (buf) {
    for (let i = 0; i < buf.length;) {
      const n = Math.min(buf.length - i, this.block.length - this.pos)
      this.block.copy(buf, i, this.pos, this.pos + n)
      i += n
      this.pos = (this.pos + n) % this.block.length
    }
    return buf
  }

  verify (buf) {
    for (let i = 0; i < buf.length;) {
      const n = Math.min(buf.length - i, this.block.length - this.pos)
      if (buf.compare(this.block, this.pos, this.pos + n, i, i + n) !== 0) {
        for (let k = 0; k < n; k++) if (buf[i + k] !== this.block[this.pos + k]) return i + k
      }
      i += n
      this.pos = (this.pos + n) % this.block.length
    }
    return -1
  }
}
const Gen = opts.data === 'block' ? BlockGen : Xorshift32
const sendGen = new Gen(SEEDS[opts.role])
const recvGen = new Gen(SEEDS[opts.role === 'a' ? 'b' : 'a'])

let sent = 0 // bytes handed to stream.write
let received = 0 // verified bytes received
let messagesReceived = 0
let rawDatagrams = 0
let preConnectPackets = 0
let writesDone = false // all N bytes written (end() may still be pending)
let endCalled = false
let peerEnded = false
let finishedWriting = false // 'finish': END queued in libudx
let destroyCalled = false
let errorSeen = null
let remote = null // { host, port } once connected
const pendingEchoes = []
let messageWaiters = []

const timer = opts.timeoutMs > 0
  ? setTimeout(() => finish('timeout', 2), opts.timeoutMs)
  : null

function printStats () {
  if (stream === null) return
  let s = 'stats'
  for (const k of ['mtu', 'rtt', 'cwnd', 'retransmits', 'fastRecoveries', 'rtoCount',
    'packetsTransmitted', 'packetsReceived', 'bytesTransmitted', 'bytesReceived']) {
    try {
      s += ' ' + k + '=' + stream[k]
    } catch {}
  }
  s += ' rawDatagrams=' + rawDatagrams + ' preConnectPackets=' + preConnectPackets
  try {
    const d = socket.packetsDroppedByKernel // UINT64_MAX when the platform cannot tell
    s += ' kernelDrops=' + (d >= 2 ** 63 ? 'n/a' : d)
  } catch {}
  process.stderr.write(s + '\n')
}

// ---------------------------------------------------------------------------------------------
// firewall: consulted by libudx for every packet for our id that arrives on a socket other than
// the stream's current one -- i.e. for *every* packet before connect() (the stream has no socket
// yet). udx-native's default firewall rejects everything, so without our own callback anything
// the peer sends before we connect (data, END, MESSAGE, DESTROY) is silently discarded and the
// peer has to retransmit after its RTO.

function firewall (sock, port, host, family) {
  preConnectPackets++
  if (opts.firewall === 'drop') {
    if (preConnectPackets === 1) note('firewall dropped pre-connect packet from ' + host + ':' + port)
    return true
  }
  if (preConnectPackets === 1) {
    note('firewall accepted pre-connect packet from ' + host + ':' + port + ' (mode ' + opts.firewall + ')')
  }
  if (opts.firewall === 'connect' && !stream.connected && !stream.destroying) {
    // like hyperdht's server side: adopt the source address of the first packet
    doConnect(host, port, 'firewall')
  }
  return false
}

// ---------------------------------------------------------------------------------------------
// setup: stream before bind, so it exists before anyone knows our port

stream = udx.createStream(opts.localId, { firewall })

socket.on('message', (buf, from) => {
  rawDatagrams++
  if (rawDatagrams === 1) note('raw (non-stream) datagram of ' + buf.length + ' bytes from ' + from.host + ':' + from.port)
})

stream.on('data', ondata)
stream.on('end', onend)
stream.on('finish', () => {
  finishedWriting = true
})
stream.on('message', onmessage)
stream.on('error', onerror)
stream.on('close', onclose)

try {
  socket.bind(0, opts.host)
} catch (err) {
  fail(err.code || 'EBIND', err.message)
}
out('bound ' + socket.address().port)

readConnectLine()

// ---------------------------------------------------------------------------------------------

function readConnectLine () {
  let buf = ''
  const ondata = (chunk) => {
    buf += chunk
    const nl = buf.indexOf('\n')
    if (nl === -1) {
      if (buf.length > 1024) fail('EPROTO', 'stdin line too long')
      return
    }
    process.stdin.off('data', ondata)
    process.stdin.off('end', onstdinend)
    process.stdin.pause()
    process.stdin.destroy()
    online(buf.slice(0, nl).trim())
  }
  const onstdinend = () => fail('EPROTO', 'stdin closed before a connect line')
  process.stdin.setEncoding('utf8')
  process.stdin.on('data', ondata)
  process.stdin.on('end', onstdinend)
  process.stdin.on('error', () => {})
}

function online (line) {
  const m = /^connect\s+(?:\[([0-9a-fA-F:.]+)\]|([0-9.]+)):([0-9]+)$/.exec(line)
  if (!m) return fail('EPROTO', 'expected "connect HOST:PORT", got: ' + JSON.stringify(line))
  const host = m[1] || m[2]
  const port = Number(m[3])
  if (!UDX.isIP(host) || !(port > 0 && port < 65536)) return fail('EPROTO', 'bad address in: ' + line)
  if (stream.connected) {
    // --firewall connect already adopted the first packet's source
    if (remote.host !== host || remote.port !== port) {
      note('already connected by firewall to ' + remote.host + ':' + remote.port + ', ignoring ' + host + ':' + port)
    }
    return
  }
  if (stream.destroying) return
  doConnect(host, port, 'stdin')
}

function doConnect (host, port, why) {
  try {
    stream.connect(socket, opts.remoteId, port, host)
  } catch (err) {
    return fail(err.code || 'ECONNECT', err.message)
  }
  remote = { host, port }
  if (why !== 'stdin') note('connected to ' + host + ':' + port + ' from ' + why)
  if (opts.keepalive > 0) stream.setKeepalive(opts.keepalive)
  // start asynchronously: connect may run inside the firewall callback (native code on the stack)
  setImmediate(() => {
    if (opts.destroyAfterRecv === 0 && !destroyCalled) {
      // --destroy-after-recv 0: destroy the idle stream right after connecting
      destroyCalled = true
      note('destroying right after connect')
      stream.destroy()
      return
    }
    flushEchoes()
    writer().catch((err) => fail(err.code || 'EWRITE', err.message))
    if (opts.messages > 0) sendMessages().catch((err) => fail(err.code || 'ESEND', err.message))
  })
}

// ---------------------------------------------------------------------------------------------
// writing

function waitDrainOrClose () {
  return new Promise((resolve) => {
    const done = () => {
      stream.off('drain', done)
      stream.off('close', done)
      resolve()
    }
    stream.on('drain', done)
    stream.on('close', done)
  })
}

async function writer () {
  let k = 0
  while (sent < opts.bytes) {
    if (stream.destroying || destroyCalled) return
    const size = Math.min(WRITE_SIZES[k++ % WRITE_SIZES.length], opts.bytes - sent)
    const buf = sendGen.fill(Buffer.allocUnsafe(size))
    sent += size
    if (!stream.write(buf)) await waitDrainOrClose()
  }
  await waitMessagesIfNeeded()
  if (opts.lingerMs > 0) await new Promise((resolve) => setTimeout(resolve, opts.lingerMs))
  writesDone = true
  maybeEnd()
}

// hold our end() until M messages arrived; with --wait-messages-ms W give up waiting after W ms
// (messages are unreliable: use W when there is packet loss)
let messageWaitOver = false

function waitMessagesIfNeeded () {
  if (messagesReceived >= opts.waitMessages) return Promise.resolve()
  return new Promise((resolve) => {
    messageWaiters.push(resolve)
    if (opts.waitMessagesMs > 0) {
      setTimeout(() => {
        messageWaitOver = true
        note('gave up waiting for messages: ' + messagesReceived + ' of ' + opts.waitMessages)
        resolve()
      }, opts.waitMessagesMs)
    }
  })
}

function maybeEnd () {
  if (endCalled || !writesDone || stream.destroying || destroyCalled) return
  if (messagesReceived < opts.waitMessages && !messageWaitOver) return
  if (opts.endMode === 'after-eof' && !peerEnded) return
  endCalled = true
  stream.end()
}

// ---------------------------------------------------------------------------------------------
// messages

async function sendMessages () {
  for (let i = 0; i < opts.messages; i++) {
    if (stream.destroying || !stream.connected) return
    await stream.send(makeMessage(i))
    // spread bursts a little so the peer's 1 MiB receive buffer is not the limit
    if (i % 16 === 15) await new Promise((resolve) => setTimeout(resolve, 1))
  }
}

function onmessage (buf) {
  const i = parseMessage(buf)
  if (i >= 0) {
    messagesReceived++
    out('message-received ' + i + ' ' + buf.length)
  } else {
    note('malformed message of ' + buf.length + ' bytes')
  }
  if (opts.echoMessages) {
    const copy = Buffer.from(buf) // the receive buffer is reused by udx-native
    if (stream.connected) stream.trySend(copy)
    else pendingEchoes.push(copy)
  }
  if (messagesReceived >= opts.waitMessages && messageWaiters.length > 0) {
    const w = messageWaiters
    messageWaiters = []
    for (const resolve of w) resolve()
  }
}

function flushEchoes () {
  while (pendingEchoes.length > 0 && stream.connected) stream.trySend(pendingEchoes.shift())
}

// ---------------------------------------------------------------------------------------------
// reading

function ondata (chunk) {
  if (finished) return
  if (received + chunk.length > opts.recvBytes) {
    // anything beyond the expected length is a mismatch there (after checking the part before)
    const head = chunk.subarray(0, opts.recvBytes - received)
    const bad = recvGen.verify(head)
    finish('mismatch at ' + (bad >= 0 ? received + bad : opts.recvBytes), 1)
    return
  }
  const bad = recvGen.verify(chunk)
  if (bad >= 0) {
    finish('mismatch at ' + (received + bad), 1)
    return
  }
  received += chunk.length
  if (opts.destroyAfterRecv >= 0 && !destroyCalled && received >= opts.destroyAfterRecv) {
    destroyCalled = true
    note('destroying after receiving ' + received + ' bytes')
    stream.destroy()
  }
}

function onend () {
  peerEnded = true
  if (received !== opts.recvBytes && opts.destroyAfterRecv < 0) {
    fail('ESHORT', 'peer ended after ' + received + ' of ' + opts.recvBytes + ' bytes')
    return
  }
  maybeEnd()
}

function onerror (err) {
  errorSeen = err
  note('stream error event: code=' + err.code + ' message=' + JSON.stringify(err.message))
}

// appended to `error` lines from the stream so a harness can tell *when* it failed; e.g. an
// ETIMEDOUT with peer-eof=1 end=1 finish=1 and full counts means only the ACK of our END was
// missing (udx-native has no TIME_WAIT: if the peer's last ACK is lost, the peer has already
// closed and never answers our END retransmissions; we give up after ~13 s)
function state () {
  return '[sent=' + sent + ' received=' + received + ' peer-eof=' + (peerEnded ? 1 : 0) +
    ' end=' + (endCalled ? 1 : 0) + ' finish=' + (finishedWriting ? 1 : 0) + ']'
}

function onclose () {
  if (finished) return
  if (timer) clearTimeout(timer)
  const err = errorSeen
  if (opts.destroyAfterRecv >= 0) {
    if (destroyCalled && !err) return closeSocketAnd('destroyed', 0)
    if (err) return fail(err.code || 'ECLOSE', err.message + ' ' + state())
    return fail('ENOTDESTROYED', 'stream closed before we destroyed it ' + state())
  }
  if (opts.expectReset) {
    if (err && err.code === 'ECONNRESET') return closeSocketAnd('reset received=' + received, 0)
    if (err) return fail(err.code || 'ECLOSE', err.message + ' ' + state())
    return fail('ENORESET', 'stream closed without a reset ' + state())
  }
  if (err) return fail(err.code || 'ECLOSE', err.message + ' ' + state())
  if (!peerEnded) return fail('ECLOSE', 'stream closed before the peer ended ' + state())
  if (received !== opts.recvBytes) return fail('ESHORT', 'received ' + received + ' of ' + opts.recvBytes + ' bytes')
  if (!endCalled || !finishedWriting || sent !== opts.bytes) return fail('ECLOSE', 'stream closed before our end was written ' + state())
  closeSocketAnd('done sent=' + sent + ' received=' + received + ' messages=' + messagesReceived, 0)
}

function closeSocketAnd (line, code) {
  // report first (the verdict does not depend on the socket), then let the socket close
  out(line)
  const force = setTimeout(() => finish(null, code), 2000)
  socket.close().then(() => {
    clearTimeout(force)
    finish(null, code)
  }, () => finish(null, code))
}
