'use strict'
const createTestnet = require('../testnet')

function timeout (ms, what) {
  let t
  const p = new Promise((resolve, reject) => { t = setTimeout(() => reject(new Error('timed out: ' + what)), ms) })
  p.clear = () => clearTimeout(t)
  return p
}

async function within (ms, what, promise) {
  const t = timeout(ms, what)
  try {
    return await Promise.race([promise, t])
  } finally {
    t.clear()
  }
}

function once (emitter, name, ms = 20000) {
  return within(ms, name, new Promise((resolve) => emitter.once(name, (...args) => resolve(args))))
}

function topic (name) {
  return require('crypto').createHash('sha256').update(name).digest()
}

module.exports = { createTestnet, within, once, topic }
