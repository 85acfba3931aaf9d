'use strict'
// A connection as a Node Duplex with hyperswarm's NoiseSecretStream surface: `remotePublicKey`,
// `publicKey`, `handshakeHash`, `isInitiator`, 'open' / 'close' / 'error'. Writes go to the
// runtime's queue without waiting; past its 8 MiB limit the write callback is held until the
// runtime's drain event (so `write()` returns false and 'drain' follows, as usual).
const { Duplex } = require('stream')

const READ_HWM = 1024 * 1024

class NoiseSocket extends Duplex {
  constructor (pump, { publicKey = null, isInitiator = false, remotePublicKey = null } = {}) {
    super({ readableHighWaterMark: READ_HWM, writableHighWaterMark: 64 * 1024, allowHalfOpen: true })
    this._pump = pump
    this._native = null
    this._opening = null
    this._pendingWrite = null
    this._readEnded = false
    this._nativeClosed = false
    this._onclose = null
    this.publicKey = publicKey
    this.remotePublicKey = remotePublicKey
    this.handshakeHash = null
    this.isInitiator = isInitiator
    this.rawStream = null
    this.userData = null
    this.opened = new Promise((resolve) => { this._resolveOpened = resolve })
    this.opened.catch(() => {})
  }

  // Binds the native connection (synchronously for swarm/server connections, after the
  // connect promise for dht.connect); 'open' follows on the next tick.
  _attach (conn) {
    if (this.destroyed) {
      // destroyed while connecting: track it until the runtime's close event (so no event of
      // it lingers in the pump), and close it
      this._native = conn
      this._pump.attach(this, conn.id)
      conn.destroy()
      const cb = this._opening
      this._opening = null
      if (cb) cb()
      return
    }
    this._native = conn
    this.remotePublicKey = conn.remotePublicKey
    this.handshakeHash = conn.handshakeHash
    this.isInitiator = conn.isInitiator
    this._pump.attach(this, conn.id)
    const cb = this._opening
    this._opening = null
    if (cb) cb()
    this._resolveOpened(true)
    process.nextTick(() => { if (!this.destroyed) this.emit('open') })
  }

  _construct (cb) {
    if (this._native) cb()
    else this._opening = cb
  }

  _failOpen (err) {
    this._resolveOpened(false)
    const cb = this._opening
    this._opening = null
    if (cb) cb(err)
    else this.destroy(err)
  }

  _write (chunk, enc, cb) {
    let ok
    try {
      ok = this._native.write(chunk)
    } catch (err) {
      cb(err.message && /closed/.test(err.message) ? new Error('Stream is closed') : err)
      return
    }
    if (ok) cb()
    else this._pendingWrite = { chunk, cb }
  }

  _writev (chunks, cb) {
    if (chunks.length === 1) return this._write(chunks[0].chunk, null, cb)
    this._write(Buffer.concat(chunks.map((c) => c.chunk)), null, cb)
  }

  _ondrain () {
    const p = this._pendingWrite
    if (!p) return
    this._pendingWrite = null
    this._write(p.chunk, null, p.cb)
  }

  _final (cb) {
    if (this._native) this._native.end()
    cb()
  }

  _read () {
    this._pump.unblock(this)
  }

  _ondata (data) {
    if (this.destroyed || this._readEnded) return
    if (!this.push(data)) this._pump.block(this)
  }

  _onend () {
    if (this._readEnded || this.destroyed) return
    this._readEnded = true
    this.push(null)
  }

  _onnativeclose (error) {
    if (this._nativeClosed) return
    this._nativeClosed = true
    this._pump.unblock(this)
    const p = this._pendingWrite
    this._pendingWrite = null
    if (p) p.cb(new Error('Stream is closed'))
    if (this._onclose) this._onclose()
    if (this.destroyed) return
    if (error) {
      // A failed connection reports 'error' to whoever listens for it. Without a listener it
      // just closes: a reset by the remote must not crash the process (the swarm keeps
      // running), and a connection replaced by a duplicate is never an error (as in
      // hyperswarm, which silences that one).
      if (error !== 'Duplicate connection' && this.listenerCount('error') > 0) this.destroy(new Error(error))
      else this.destroy()
      return
    }
    this._onend()
    if (this.readableFlowing !== true || this.readableLength === 0) this.destroy()
    else this.once('end', () => this.destroy())
  }

  _destroy (err, cb) {
    this._pump.unblock(this)
    if (this._opening) {
      const o = this._opening
      this._opening = null
      o(err || new Error('Stream was destroyed'))
    }
    if (this._native && !this._nativeClosed) this._native.destroy()
    cb(err)
  }
}

module.exports = NoiseSocket
