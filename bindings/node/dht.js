'use strict'
// p2pswarm/dht: hyperdht's main API (createServer, connect, lookup, announce, unannounce,
// keyPair, immutable and mutable put/get) over the Rust DHT node.
const { EventEmitter } = require('events')
const { Readable } = require('stream')
const native = require('./lib/native')
const Pump = require('./lib/pump')
const NoiseSocket = require('./lib/socket')
const u = require('./lib/util')

// A finished query as hyperdht's query stream: object-mode Readable of replies, `finished()`,
// `toArray()`.
class Query extends Readable {
  constructor (promise, map) {
    super({ objectMode: true })
    this._promise = promise.then((v) => {
      const items = map(v)
      for (const it of items) this.push(it)
      this.push(null)
      return items
    }, (err) => {
      this.destroy(err)
      throw err
    })
    this._promise.catch(u.noop)
  }

  _read () {}

  async finished () {
    await this._promise
  }

  async toArray () {
    return this._promise
  }
}

class Server extends EventEmitter {
  constructor (dht, opts, onconnection) {
    super()
    if (typeof opts === 'function') {
      onconnection = opts
      opts = {}
    }
    opts = u.optObject(opts, 'server options')
    if (onconnection) this.on('connection', onconnection)
    this.dht = dht
    this.firewall = opts.firewall || null
    this.publicKey = null
    this.closed = false
    this.listening = false
    this._native = null
    this._listening = null
  }

  address () {
    return this.publicKey ? { publicKey: this.publicKey, host: null, port: 0 } : null
  }

  listen (keyPair = this.dht.defaultKeyPair) {
    if (this._listening) return this._listening
    keyPair = u.keyPairArg(keyPair)
    this._listening = (async () => {
      const d = await this.dht._ready
      const s = await d.listen(keyPair.secretKey)
      this._native = s
      this.publicKey = s.publicKey
      this.dht._pump.sources.set(s.id, this)
      this.dht._servers.add(this)
      this.listening = true
      this.emit('listening')
      if (this.closed) await s.close()
    })()
    return this._listening
  }

  _onevent (ev) {
    if (ev.kind !== 'connection') return
    if (this.closed) return ev.connection.destroy()
    if (this.firewall) {
      let reject = true
      try { reject = !!this.firewall(ev.connection.remotePublicKey, null) } catch (err) { u.reportListenerError(err) }
      if (reject) return ev.connection.destroy()
    }
    const socket = new NoiseSocket(this.dht._pump, { publicKey: this.publicKey })
    socket._attach(ev.connection)
    this.emit('connection', socket)
  }

  async close () {
    if (this.closed) return
    this.closed = true
    this.dht._servers.delete(this)
    if (this._native) {
      this.dht._pump.sources.delete(this._native.id)
      await this._native.close()
    }
    this.emit('close')
  }
}

class HyperDHT extends EventEmitter {
  constructor (opts = {}) {
    super()
    if (opts === HyperDHT._internal) return
    opts = u.optObject(opts, 'DHT options')
    let keyPair
    if (opts.keyPair) keyPair = u.keyPairArg(opts.keyPair)
    else if (opts.seed) keyPair = native.keyPair(u.bytes(opts.seed, 32, 'seed'))
    else keyPair = native.keyPair()
    this._bootstrap = u.bootstrapArg(opts.bootstrap)
    this.defaultKeyPair = keyPair
    this.destroyed = false
    this._standalone = true
    this._servers = new Set()
    this._pump = new Pump()
    this._ready = native.createDht({
      secretKey: keyPair.secretKey,
      bootstrap: this._bootstrap,
      host: opts.host,
      port: u.optCount(opts.port, 'port'),
      bootstrapTimeoutMs: opts.bootstrapTimeout
    }, this._pump.queue).then((d) => { this._native = d; return d }, (err) => { this._pump.close(); throw err })
    this._ready.catch(u.noop)
    this._pump.start()
  }

  static _fromSwarm (swarm) {
    const dht = new HyperDHT(HyperDHT._internal)
    dht.defaultKeyPair = swarm.keyPair
    dht.destroyed = false
    dht._standalone = false
    dht._servers = new Set()
    dht._pump = swarm._pump
    dht._bootstrap = undefined
    dht._ready = swarm._ready.then((s) => { dht._native = s.dht(swarm._pump.queue); return dht._native })
    dht._ready.catch(u.noop)
    return dht
  }

  static keyPair (seed) {
    if (seed === undefined || seed === null) return native.keyPair()
    return native.keyPair(u.bytes(seed, 32, 'seed'))
  }

  get publicKey () { return this.defaultKeyPair.publicKey }

  async ready () {
    await this._ready
  }

  createServer (opts, onconnection) {
    if (this.destroyed) throw new Error('DHT destroyed')
    return new Server(this, opts, onconnection)
  }

  connect (remotePublicKey, opts = {}) {
    remotePublicKey = u.bytes(remotePublicKey, 32, 'remotePublicKey')
    opts = u.optObject(opts, 'connect options')
    const keyPair = opts.keyPair ? u.keyPairArg(opts.keyPair) : this.defaultKeyPair
    const socket = new NoiseSocket(this._pump, { publicKey: keyPair.publicKey, isInitiator: true, remotePublicKey })
    this._ready
      .then((d) => d.connect(remotePublicKey, keyPair.secretKey))
      .then((conn) => socket._attach(conn), (err) => socket._failOpen(err))
    return socket
  }

  lookup (topic) {
    topic = u.topicArg(topic)
    return new Query(this._ready.then((d) => d.lookup(topic)), (replies) => replies.map((r) => ({ from: r.from, to: null, peers: r.peers })))
  }

  announce (topic, keyPair = this.defaultKeyPair) {
    topic = u.topicArg(topic)
    keyPair = u.keyPairArg(keyPair)
    return new Query(this._ready.then((d) => d.announce(topic, keyPair.secretKey)), () => [])
  }

  async unannounce (topic, keyPair = this.defaultKeyPair) {
    topic = u.topicArg(topic)
    keyPair = u.keyPairArg(keyPair)
    await (await this._ready).unannounce(topic, keyPair.secretKey)
  }

  async immutablePut (value) {
    if (!u.isBytes(value)) throw new TypeError('value must be a Buffer')
    const hash = await (await this._ready).immutablePut(u.toBuffer(value))
    return { hash, closestNodes: [] }
  }

  async immutableGet (hash) {
    hash = u.bytes(hash, 32, 'hash')
    const value = await (await this._ready).immutableGet(hash)
    return value === null ? null : { id: null, value, from: null }
  }

  async mutablePut (keyPair, value, opts = {}) {
    keyPair = u.keyPairArg(keyPair)
    if (!u.isBytes(value)) throw new TypeError('value must be a Buffer')
    opts = u.optObject(opts, 'mutablePut options')
    const seq = opts.seq ?? 0
    if (!Number.isSafeInteger(seq) || seq < 0) throw new TypeError('seq must be a non-negative integer')
    await (await this._ready).mutablePut(keyPair.secretKey, u.toBuffer(value), seq)
    return { publicKey: keyPair.publicKey, closestNodes: [], seq }
  }

  async mutableGet (publicKey, opts = {}) {
    publicKey = u.bytes(publicKey, 32, 'publicKey')
    opts = u.optObject(opts, 'mutableGet options')
    const seq = opts.seq ?? 0
    if (!Number.isSafeInteger(seq) || seq < 0) throw new TypeError('seq must be a non-negative integer')
    const v = await (await this._ready).mutableGet(publicKey, seq)
    return v === null ? null : { id: null, seq: v.seq, value: v.value, signature: v.signature, from: v.from }
  }

  _closeServers () {
    for (const s of this._servers) s.close().catch(u.noop)
  }

  async destroy () {
    if (this.destroyed) return
    this.destroyed = true
    this._closeServers()
    let d = null
    try { d = await this._ready } catch {}
    if (d) d.destroy()
    if (this._standalone) {
      for (const socket of this._pump.conns.values()) socket.destroy()
      await new Promise((resolve) => setImmediate(resolve))
      this._pump.close()
    }
  }
}

HyperDHT._internal = Symbol('internal')
HyperDHT.Server = Server
HyperDHT.Query = Query
HyperDHT.HyperDHT = HyperDHT

module.exports = HyperDHT
