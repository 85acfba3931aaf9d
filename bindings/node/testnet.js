'use strict'
// p2pswarm/testnet: a local DHT testnet on 127.0.0.1 for tests and examples (like
// hyperdht/testnet): `const tn = await createTestnet(3); new P2Pswarm({ bootstrap: tn.bootstrap })`.
const native = require('./lib/native')
const HyperDHT = require('./dht')

class Testnet {
  constructor (net) {
    this._net = net
    const [host, port] = net.bootstrap.split(':')
    this.bootstrap = [{ host, port: Number(port) }]
    this.nodes = []
    this.size = net.size
  }

  createNode (opts = {}) {
    const node = new HyperDHT({ ...opts, bootstrap: this.bootstrap })
    this.nodes.push(node)
    return node
  }

  async destroy () {
    await Promise.allSettled(this.nodes.map((n) => n.destroy()))
    this.nodes = []
    this._net.destroy()
  }
}

async function createTestnet (size = 3) {
  if (!Number.isInteger(size) || size < 1 || size > 64) throw new TypeError('testnet size must be an integer 1..64')
  return new Testnet(await native.createTestnet(size))
}

module.exports = createTestnet
module.exports.createTestnet = createTestnet
module.exports.Testnet = Testnet
