'use strict'
// Moves events from a native queue to JS on the main thread: `queue.next()` resolves with a
// batch, each event is dispatched to its connection (by id) or source (swarm or DHT server).
// Data leaves the native queue only as fast as this loop asks, and the loop pauses while a
// socket's readable buffer is full: the runtime then stops reading (its 4 MiB queue limit) and
// the transport's receive window holds the sender back.
const native = require('./native')
const { reportListenerError } = require('./util')

const BATCH = 256

class Pump {
  constructor () {
    this.queue = new native.Queue()
    this.conns = new Map() // conn id -> NoiseSocket
    this.sources = new Map() // swarm / server id -> object with _onevent(ev)
    this.early = new Map() // conn id -> events that arrived before its socket was attached
    this.blocked = new Set()
    this.closed = false
    this._wake = null
    this._running = false
  }

  start () {
    if (this._running || this.closed) return
    this._running = true
    this._loop().catch(reportListenerError)
  }

  block (socket) {
    this.blocked.add(socket)
  }

  unblock (socket) {
    if (this.blocked.delete(socket) && this.blocked.size === 0 && this._wake) {
      const w = this._wake
      this._wake = null
      w()
    }
  }

  attach (socket, id) {
    this.conns.set(id, socket)
    const early = this.early.get(id)
    if (early) {
      this.early.delete(id)
      for (const ev of early) this._dispatch(ev)
    }
  }

  async _loop () {
    while (true) {
      if (this.blocked.size > 0) await new Promise((resolve) => { this._wake = resolve })
      let evs
      try {
        evs = await this.queue.next(BATCH)
      } catch {
        evs = null
      }
      if (evs === null) break
      for (const ev of evs) {
        try {
          this._dispatch(ev)
        } catch (err) {
          reportListenerError(err)
        }
      }
    }
    this._running = false
    this.closed = true
    for (const socket of this.conns.values()) socket._onnativeclose(null)
    this.conns.clear()
    this.early.clear()
  }

  _dispatch (ev) {
    if (ev.kind === 'connection' || ev.kind === 'update' || ev.kind === 'ban') {
      const src = this.sources.get(ev.source)
      if (src) src._onevent(ev)
      else if (ev.connection) ev.connection.destroy()
      return
    }
    const socket = this.conns.get(ev.connId)
    if (!socket) {
      let list = this.early.get(ev.connId)
      if (!list) this.early.set(ev.connId, (list = []))
      list.push(ev)
      return
    }
    switch (ev.kind) {
      case 'data': socket._ondata(ev.data); break
      case 'end': socket._onend(); break
      case 'drain': socket._ondrain(); break
      case 'close':
        this.conns.delete(ev.connId)
        this.unblock(socket)
        socket._onnativeclose(ev.error || null)
        break
    }
  }

  close () {
    this.queue.close()
  }
}

module.exports = Pump
