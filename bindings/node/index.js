'use strict'
// p2pswarm: hyperswarm 4.17's public API over the Rust stack (napi-rs addon in src/lib.rs).
// The discovery, connection and retry logic all live in Rust; this file only adapts the API:
// EventEmitter, Duplex sockets, PeerInfo objects, synchronous `join` returning a session.
const { EventEmitter } = require('events')
const native = require('./lib/native')
const Pump = require('./lib/pump')
const NoiseSocket = require('./lib/socket')
const HyperDHT = require('./dht')
const u = require('./lib/util')

class PeerInfo extends EventEmitter {
  constructor (swarm, publicKey) {
    super()
    this._swarm = swarm
    this.publicKey = publicKey
    this.topics = []
    this.prioritized = true
    this.banned = false
    this.explicit = false
    this.client = false
    this.relayAddresses = []
  }

  get server () {
    return !this.client
  }

  _update (p) {
    this.prioritized = p.prioritized
    this.banned = p.banned
    this.explicit = p.explicit
    for (const t of p.topics) {
      if (!this.topics.some((x) => x.equals(t))) {
        this.topics.push(t)
        this.emit('topic', t)
      }
    }
  }

  ban (banned = false) {
    if (typeof banned !== 'boolean') throw new TypeError('ban(banStatus) takes a boolean (got ' + typeof banned + ')')
    this.banned = banned
    this._swarm._whenReady((s) => s.ban(this.publicKey, banned))
  }
}

class PeerDiscovery {
  constructor (swarm, topic, { server, client, limit }) {
    this._swarm = swarm
    this._topic = topic
    this.isServer = server
    this.isClient = client
    this.limit = limit
    this.destroyed = false
    this._destroying = null
    this._native = swarm._ready.then((s) => s.join(topic, server, client))
    this._native.catch(u.noop)
  }

  get swarm () { return this._swarm }
  get topic () { return this._topic }

  async flushed () {
    try {
      const d = await this._native
      if (this.destroyed) return false
      return await d.flushed()
    } catch {
      return false
    }
  }

  async refresh (opts = {}) {
    opts = u.optObject(opts, 'refresh options')
    if (this.destroyed) throw new Error('PeerDiscovery is destroyed')
    const client = u.optBool(opts.client, this.isClient, 'client')
    const server = u.optBool(opts.server, this.isServer, 'server')
    if (!client && !server) throw new Error('Cannot refresh with neither client nor server option')
    this.isClient = client
    this.isServer = server
    const d = await this._native
    try {
      return await d.refresh(server, client)
    } catch (err) {
      if (this.destroyed || this._swarm.destroyed) throw new Error('PeerDiscovery is destroyed')
      throw err
    }
  }

  destroy () {
    if (this._destroying) return this._destroying
    this.destroyed = true
    this._swarm._removeSession(this)
    this._destroying = this._native.then((d) => d.destroy(), u.noop)
    return this._destroying
  }
}

// What `status(topic)` returns: the shared discovery of a topic (all its sessions).
class TopicDiscovery {
  constructor (swarm, topic) {
    this._swarm = swarm
    this.topic = topic
    this.sessions = []
    this.destroyed = false
  }

  get isServer () { return this.sessions.some((s) => s.isServer) }
  get isClient () { return this.sessions.some((s) => s.isClient) }
  get suspended () { return this._swarm.suspended }
  get refreshing () {
    const st = this._swarm._native ? this._swarm._native.status(this.topic) : null
    return st ? st.refreshing : false
  }

  async flushed () {
    const r = await Promise.all(this.sessions.map((s) => s.flushed()))
    return r.every(Boolean)
  }

  async refresh () {
    return Promise.all(this.sessions.map((s) => s.refresh()))
  }

  async destroy () {
    return this._swarm.leave(this.topic)
  }
}

class Hyperswarm extends EventEmitter {
  constructor (opts = {}) {
    super()
    opts = u.optObject(opts, 'Hyperswarm options')
    let keyPair
    if (opts.keyPair !== undefined && opts.keyPair !== null) keyPair = u.keyPairArg(opts.keyPair)
    else if (opts.seed !== undefined && opts.seed !== null) keyPair = native.keyPair(u.bytes(opts.seed, 32, 'seed'))
    else keyPair = native.keyPair()
    if (opts.firewall !== undefined && opts.firewall !== null && typeof opts.firewall !== 'function') {
      throw new TypeError('firewall must be a function (remotePublicKey) => boolean (got ' + typeof opts.firewall + ')')
    }
    if (opts.dht !== undefined && opts.dht !== null && !(opts.dht instanceof HyperDHT)) {
      throw new TypeError('dht must be a p2pswarm/dht instance')
    }
    this.keyPair = keyPair
    this.maxPeers = u.optCount(opts.maxPeers, 'maxPeers', { allowInfinity: true }) ?? 64
    this.maxClientConnections = opts.maxClientConnections ?? Infinity
    this.maxServerConnections = opts.maxServerConnections ?? Infinity
    this.maxParallel = u.optCount(opts.maxParallel, 'maxParallel') ?? 3
    const maxClient = u.optCount(opts.maxClientConnections, 'maxClientConnections', { allowInfinity: true })
    const bootstrap = u.bootstrapArg(opts.bootstrap ?? (opts.dht ? opts.dht._bootstrap : undefined))
    const port = u.optCount(opts.port, 'port')
    this.destroyed = false
    this.suspended = false
    this.connections = new Set()
    this.explicitPeers = new Set()
    this.listening = null
    this.firewall = opts.firewall || null
    this.stats = { updates: 0, connects: { client: { opened: 0, closed: 0, attempted: 0 }, server: { opened: 0, closed: 0 } }, bannedPeers: 0 }
    this._peers = new Map()
    this._topics = new Map()
    this._native = null
    this._dht = opts.dht || null
    this._destroying = null
    this._pump = new Pump()
    const fw = this.firewall
      ? (hex) => {
          try {
            return !!this.firewall(Buffer.from(hex, 'hex'), null)
          } catch (err) {
            u.reportListenerError(err)
            return true
          }
        }
      : undefined
    this._ready = native.createSwarm({
      secretKey: keyPair.secretKey,
      maxPeers: this.maxPeers === Infinity ? undefined : this.maxPeers,
      maxParallel: this.maxParallel,
      maxClientConnections: maxClient,
      bootstrap,
      host: opts.host,
      port,
      bootstrapTimeoutMs: opts.bootstrapTimeout
    }, this._pump.queue, fw).then((s) => {
      this._native = s
      this._pump.sources.set(s.id, this)
      if (this.destroyed) s.destroy().catch(u.noop)
      return s
    }, (err) => {
      this._pump.close()
      throw err
    })
    this._ready.catch(u.noop)
    this._pump.start()
  }

  _whenReady (fn) {
    if (this._native) return fn(this._native)
    this._ready.then(fn, u.noop)
  }

  get connecting () {
    return this._native ? this._native.connecting : 0
  }

  get peers () {
    if (!this._native) return this._peers
    const seen = new Set()
    for (const p of this._native.peers()) {
      const info = this._peerInfo(p)
      seen.add(info.publicKey.toString('hex'))
    }
    for (const k of this._peers.keys()) if (!seen.has(k)) this._peers.delete(k)
    return this._peers
  }

  get dht () {
    if (!this._dht) this._dht = HyperDHT._fromSwarm(this)
    return this._dht
  }

  _peerInfo (p) {
    const hex = p.publicKey.toString('hex')
    let info = this._peers.get(hex)
    if (!info) {
      info = new PeerInfo(this, p.publicKey)
      this._peers.set(hex, info)
    }
    info._update(p)
    if (info.explicit) this.explicitPeers.add(info)
    else this.explicitPeers.delete(info)
    return info
  }

  _onevent (ev) {
    if (ev.kind === 'update') {
      this.stats.updates++
      this.emit('update')
    } else if (ev.kind === 'ban') {
      this.stats.bannedPeers++
      this.emit('ban', this._peerInfo(ev.peer), new Error('Peer is firewalled'))
    } else if (ev.kind === 'connection') {
      const socket = new NoiseSocket(this._pump, { publicKey: this.keyPair.publicKey })
      socket._attach(ev.connection)
      const info = this._peerInfo(ev.peer)
      info.client = socket.isInitiator
      const side = socket.isInitiator ? this.stats.connects.client : this.stats.connects.server
      side.opened++
      this.connections.add(socket)
      socket._onclose = () => {
        side.closed++
        this.connections.delete(socket)
      }
      socket.on('close', () => this.connections.delete(socket))
      this.emit('connection', socket, info)
    }
  }

  join (topic, opts = {}) {
    if (this.destroyed) throw new Error('Swarm destroyed')
    topic = u.topicArg(topic)
    opts = u.optObject(opts, 'join options')
    const server = u.optBool(opts.server, true, 'server')
    const client = u.optBool(opts.client, true, 'client')
    if (!server && !client) throw new Error('Cannot refresh with neither client nor server option')
    const limit = opts.limit ?? Infinity
    const hex = topic.toString('hex')
    let t = this._topics.get(hex)
    if (!t) this._topics.set(hex, (t = new TopicDiscovery(this, topic)))
    const session = new PeerDiscovery(this, topic, { server, client, limit })
    t.sessions.push(session)
    if (server && !this.listening) this.listening = this._ready.then((s) => s.listen())
    if (this.listening) this.listening.catch(u.noop)
    return session
  }

  _removeSession (session) {
    const hex = session.topic.toString('hex')
    const t = this._topics.get(hex)
    if (!t) return
    t.sessions = t.sessions.filter((s) => s !== session)
    if (t.sessions.length === 0) {
      t.destroyed = true
      this._topics.delete(hex)
    }
  }

  async leave (topic) {
    topic = u.topicArg(topic)
    const hex = topic.toString('hex')
    const t = this._topics.get(hex)
    if (!t) return
    this._topics.delete(hex)
    t.destroyed = true
    const sessions = t.sessions
    for (const s of sessions) s.destroyed = true
    await Promise.allSettled(sessions.map((s) => s._native))
    try {
      await (await this._ready).leave(topic)
    } catch {}
  }

  joinPeer (publicKey) {
    publicKey = u.bytes(publicKey, 32, 'publicKey')
    if (this.destroyed) throw new Error('Swarm destroyed')
    this._whenReady((s) => s.joinPeer(publicKey))
  }

  leavePeer (publicKey) {
    publicKey = u.bytes(publicKey, 32, 'publicKey')
    this._whenReady((s) => s.leavePeer(publicKey))
  }

  status (topic) {
    topic = u.topicArg(topic)
    return this._topics.get(topic.toString('hex')) || null
  }

  * topics () {
    yield * this._topics.values()
  }

  listen () {
    if (this.listening) return this.listening
    if (this.destroyed) throw new Error('Swarm destroyed')
    this.listening = this._ready.then((s) => s.listen())
    return this.listening
  }

  async flush () {
    const sessions = []
    for (const t of this._topics.values()) sessions.push(...t.sessions)
    await Promise.allSettled(sessions.map((s) => s._native))
    if (this.destroyed) return false
    try {
      return await (await this._ready).flush()
    } catch {
      return false
    }
  }

  async clear () {
    const topics = [...this._topics.values()]
    await Promise.allSettled(topics.map((t) => this.leave(t.topic)))
  }

  async suspend ({ log = u.noop } = {}) {
    if (this.suspended) return
    this.suspended = true
    log('Suspending swarm')
    await (await this._ready).suspend()
    log('Done, swarm suspended')
  }

  async resume ({ log = u.noop } = {}) {
    if (!this.suspended) return
    log('Resuming swarm')
    await (await this._ready).resume()
    this.suspended = false
    log('Done, swarm resumed')
  }

  destroy ({ force = false } = {}) {
    if (this._destroying && !force) return this._destroying
    this.destroyed = true
    const dht = this._dht
    this._destroying = (async () => {
      let s = null
      try { s = await this._ready } catch {}
      if (s) {
        try { await s.destroy() } catch {}
      }
      if (dht && dht._standalone) {
        try { await dht.destroy() } catch {}
      }
      if (dht) dht._closeServers()
      for (const socket of [...this.connections]) socket.destroy()
      // let the close events of the runtime arrive, then stop pumping
      await new Promise((resolve) => setImmediate(resolve))
      this._pump.close()
    })()
    return this._destroying
  }
}

Hyperswarm.P2Pswarm = Hyperswarm
Hyperswarm.Hyperswarm = Hyperswarm
Hyperswarm.PeerInfo = PeerInfo
Hyperswarm.PeerDiscovery = PeerDiscovery
Hyperswarm.NoiseSocket = NoiseSocket
Hyperswarm.keyPair = (seed) => HyperDHT.keyPair(seed)

module.exports = Hyperswarm
