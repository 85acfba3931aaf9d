#!/usr/bin/env node
'use strict'

// Live @hyperswarm/secret-stream peer over TCP (default XX handshake), for interop tests.
//
//   node ss-peer.js --role initiator|responder (--listen PORT | --connect HOST:PORT)
//                   --bytes N [--timeout-ms T]
//
// stdout protocol (one line each):
//   listening PORT                       (--listen only, first line, once bound on 127.0.0.1)
//   open <remotePublicKey> <handshakeHash>  (hex, after the secret stream opened)
//   done sent=N received=N               -> exit 0
//   mismatch at OFFSET                   -> exit 1
//   error <message>                      -> exit 1
//   timeout                              -> exit 2
//
// Both sides send N bytes and receive N bytes concurrently. Data is a xorshift32 stream
// (see README.md); writes cycle through WRITE_SIZES and honour back-pressure.

const net = require('net')
const b4a = require('b4a')
const SecretStream = require('@hyperswarm/secret-stream')

const WRITE_SIZES = [1, 1000, 65536, 7, 300000, 16384]
const SEED_INITIATOR = 0x9e3779b9
const SEED_RESPONDER = 0x7f4a7c15

// xorshift32: s ^= s << 13; s ^= s >>> 17; s ^= s << 5; output byte = s & 0xff (one step per byte)
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

  // returns the index of the first byte of buf that differs from the stream, or -1
  check (buf) {
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

function parseArgs (argv) {
  const opts = { role: null, listen: null, connect: null, bytes: null, timeoutMs: 120000 }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const next = () => {
      if (i + 1 >= argv.length) throw new Error('missing value for ' + a)
      return argv[++i]
    }
    if (a === '--role') opts.role = next()
    else if (a === '--listen') opts.listen = next()
    else if (a === '--connect') opts.connect = next()
    else if (a === '--bytes') opts.bytes = next()
    else if (a === '--timeout-ms') opts.timeoutMs = next()
    else throw new Error('unknown argument ' + a)
  }
  if (opts.role !== 'initiator' && opts.role !== 'responder') throw new Error('--role must be initiator or responder')
  if ((opts.listen === null) === (opts.connect === null)) throw new Error('exactly one of --listen PORT or --connect HOST:PORT is required')
  if (opts.bytes === null || !/^[0-9]+$/.test(opts.bytes)) throw new Error('--bytes N is required (non-negative integer)')
  opts.bytes = Number(opts.bytes)
  if (!Number.isSafeInteger(opts.bytes)) throw new Error('--bytes too large')
  if (!/^[0-9]+$/.test(String(opts.timeoutMs))) throw new Error('--timeout-ms must be a non-negative integer')
  opts.timeoutMs = Number(opts.timeoutMs)
  if (opts.listen !== null) {
    if (!/^[0-9]+$/.test(opts.listen) || Number(opts.listen) > 65535) throw new Error('--listen PORT must be 0..65535')
    opts.listen = Number(opts.listen)
  } else {
    const m = /^(?:\[([^\]]+)\]|([^:]+)):([0-9]+)$/.exec(opts.connect)
    if (!m || Number(m[3]) > 65535) throw new Error('--connect must be HOST:PORT')
    opts.connect = { host: m[1] || m[2], port: Number(m[3]) }
  }
  return opts
}

let finished = false
let timer = null

function finish (line, code) {
  if (finished) return
  finished = true
  if (timer) clearTimeout(timer)
  process.stdout.write(line + '\n', () => process.exit(code))
  // in case the write callback never fires (stdout closed), make sure we still exit
  setTimeout(() => process.exit(code), 1000).unref()
}

function say (line) {
  if (!finished) process.stdout.write(line + '\n')
}

function run (opts) {
  const isInitiator = opts.role === 'initiator'
  const N = opts.bytes

  if (opts.timeoutMs > 0) timer = setTimeout(() => finish('timeout', 2), opts.timeoutMs)

  const onSocket = (socket) => {
    socket.setNoDelay(true)
    socket.on('error', (err) => finish('error ' + err.message, 1))

    const stream = new SecretStream(isInitiator, socket)
    const tx = new Xorshift32(isInitiator ? SEED_INITIATOR : SEED_RESPONDER)
    const rx = new Xorshift32(isInitiator ? SEED_RESPONDER : SEED_INITIATOR)

    let sent = 0
    let received = 0
    let remoteEnded = false
    let localFinished = false
    let rawClosed = false
    let streamClosed = false

    const maybeDone = () => {
      if (!(remoteEnded && localFinished && rawClosed && streamClosed)) return
      if (received !== N) return finish('error remote ended after ' + received + ' of ' + N + ' bytes', 1)
      if (sent !== N) return finish('error sent only ' + sent + ' of ' + N + ' bytes', 1)
      finish('done sent=' + sent + ' received=' + received, 0)
    }

    stream.on('error', (err) => finish('error ' + (err && err.message ? err.message : String(err)), 1))

    stream.on('open', () => {
      say('open ' + b4a.toString(stream.remotePublicKey, 'hex') + ' ' + b4a.toString(stream.handshakeHash, 'hex'))
      sendAll().catch((err) => finish('error ' + err.message, 1))
    })

    stream.on('data', (data) => {
      if (received + data.length > N) {
        // bytes beyond N: report the first extra byte's offset as a mismatch
        const ok = N - received
        const bad = rx.check(data.subarray(0, ok))
        return finish('mismatch at ' + (received + (bad === -1 ? ok : bad)), 1)
      }
      const bad = rx.check(data)
      if (bad !== -1) return finish('mismatch at ' + (received + bad), 1)
      received += data.length
    })

    stream.on('end', () => {
      remoteEnded = true
      if (received !== N) return finish('error remote ended after ' + received + ' of ' + N + ' bytes', 1)
      maybeDone()
    })

    stream.on('finish', () => {
      localFinished = true
      maybeDone()
    })

    // Judge the outcome only once both the TCP socket (everything flushed to the kernel, both
    // directions done) and the secret stream have closed: their events are not ordered.
    const onClosed = () => {
      if (!rawClosed || !streamClosed || finished) return
      if (!remoteEnded || !localFinished) {
        return finish('error connection closed early (sent=' + sent + ' received=' + received + ')', 1)
      }
      maybeDone()
    }
    socket.on('close', () => { rawClosed = true; onClosed() })
    stream.on('close', () => { streamClosed = true; onClosed() })

    async function sendAll () {
      let i = 0
      while (sent < N && !finished) {
        const size = Math.min(WRITE_SIZES[i++ % WRITE_SIZES.length], N - sent)
        const buf = tx.fill(b4a.allocUnsafe(size))
        sent += size
        if (stream.write(buf) === false) {
          await new Promise((resolve, reject) => {
            const ondrain = () => { cleanup(); resolve() }
            const onclose = () => { cleanup(); reject(new Error('stream closed while waiting for drain')) }
            const cleanup = () => { stream.off('drain', ondrain); stream.off('close', onclose) }
            stream.on('drain', ondrain)
            stream.on('close', onclose)
          })
        }
      }
      if (!finished) stream.end()
    }
  }

  if (opts.listen !== null) {
    const server = net.createServer({ allowHalfOpen: true })
    let accepted = false
    server.on('connection', (socket) => {
      if (accepted) return socket.destroy() // exactly one connection
      accepted = true
      server.close()
      onSocket(socket)
    })
    server.on('error', (err) => finish('error ' + err.message, 1))
    server.listen(opts.listen, '127.0.0.1', () => say('listening ' + server.address().port))
  } else {
    // allowHalfOpen: the peer may finish sending (TCP FIN) while we still write
    const socket = net.connect({ host: opts.connect.host, port: opts.connect.port, allowHalfOpen: true })
    onSocket(socket)
  }
}

function main () {
  let opts
  try {
    opts = parseArgs(process.argv.slice(2))
  } catch (err) {
    process.stderr.write('usage: node ss-peer.js --role initiator|responder (--listen PORT | --connect HOST:PORT) --bytes N [--timeout-ms T]\n')
    finish('error ' + err.message, 1)
    return
  }
  run(opts)
}

main()
