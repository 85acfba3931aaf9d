'use strict'
// Argument checks shared by the swarm and the DHT module: wrong types and lengths throw
// TypeErrors that say what was expected.

function isBytes (b) {
  return b instanceof Uint8Array
}

function toBuffer (b) {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength)
}

function describe (v) {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'an array'
  if (isBytes(v)) return 'a ' + v.byteLength + '-byte buffer'
  return typeof v === 'object' ? 'an object' : typeof v + ' ' + JSON.stringify(v)
}

function bytes (v, len, name) {
  if (!isBytes(v) || v.byteLength !== len) {
    throw new TypeError(name + ' must be a ' + len + '-byte Buffer (got ' + describe(v) + ')')
  }
  return toBuffer(v)
}

function topicArg (topic) {
  if (!isBytes(topic) || topic.byteLength !== 32) {
    throw new TypeError('Topic is required and must be a 32-byte buffer (got ' + describe(topic) + ')')
  }
  return toBuffer(topic)
}

function keyPairArg (kp, name = 'keyPair') {
  if (kp === null || typeof kp !== 'object') throw new TypeError(name + ' must be an object { publicKey, secretKey } (got ' + describe(kp) + ')')
  return {
    publicKey: bytes(kp.publicKey, 32, name + '.publicKey'),
    secretKey: bytes(kp.secretKey, 64, name + '.secretKey')
  }
}

function optObject (opts, name) {
  if (opts === undefined || opts === null) return {}
  if (typeof opts !== 'object') throw new TypeError(name + ' must be an object (got ' + describe(opts) + ')')
  return opts
}

function optCount (v, name, { allowInfinity = false } = {}) {
  if (v === undefined || v === null) return undefined
  if (allowInfinity && v === Infinity) return undefined
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffffffff) {
    throw new TypeError(name + ' must be a non-negative integer (got ' + describe(v) + ')')
  }
  return v
}

function optBool (v, dflt, name) {
  if (v === undefined) return dflt
  if (typeof v !== 'boolean') throw new TypeError(name + ' must be a boolean (got ' + describe(v) + ')')
  return v
}

// hyperdht accepts [{ host, port }] or ['host:port']; the Rust node takes IPv4 literals.
function bootstrapArg (list) {
  if (list === undefined || list === null) return undefined
  if (!Array.isArray(list)) throw new TypeError('bootstrap must be an array of { host, port } or "host:port" (got ' + describe(list) + ')')
  return list.map((b) => {
    let host, port
    if (typeof b === 'string') {
      const i = b.lastIndexOf(':')
      if (i < 0) throw new TypeError('bootstrap entry "' + b + '" must be "host:port"')
      host = b.slice(0, i)
      port = Number(b.slice(i + 1))
    } else if (b && typeof b === 'object') {
      host = b.host
      port = b.port
    } else {
      throw new TypeError('bootstrap entry must be { host, port } or "host:port" (got ' + describe(b) + ')')
    }
    if (host === 'localhost') host = '127.0.0.1'
    if (typeof host !== 'string' || !/^\d{1,3}(\.\d{1,3}){3}$/.test(host)) {
      throw new TypeError('bootstrap host must be an IPv4 address (got ' + describe(host) + ')')
    }
    if (!Number.isInteger(port) || port <= 0 || port > 65535) {
      throw new TypeError('bootstrap port must be an integer 1..65535 (got ' + describe(port) + ')')
    }
    return host + ':' + port
  })
}

// A listener that throws must not kill the swarm: report it like an uncaught exception when
// the application listens for those, else print it, and keep going.
function reportListenerError (err) {
  if (process.listenerCount('uncaughtException') > 0) {
    process.emit('uncaughtException', err, 'uncaughtException')
  } else {
    console.error('p2pswarm: a listener threw (the swarm keeps running):', err)
  }
}

function noop () {}

module.exports = { bytes, topicArg, keyPairArg, optObject, optCount, optBool, bootstrapArg, reportListenerError, noop, toBuffer, isBytes }
