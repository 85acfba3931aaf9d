// Type declarations of p2pswarm/testnet: a local DHT testnet on 127.0.0.1 (like hyperdht/testnet).
import HyperDHT = require('./dht')
import type { BootstrapNode } from './index'

declare namespace createTestnet {
  class Testnet {
    /** Pass as `bootstrap` to swarms and DHT nodes. */
    readonly bootstrap: BootstrapNode[]
    readonly nodes: HyperDHT[]
    readonly size: number
    createNode(opts?: HyperDHT.DHTOptions): HyperDHT
    destroy(): Promise<void>
  }
  function createTestnet(size?: number): Promise<Testnet>
}

declare function createTestnet(size?: number): Promise<createTestnet.Testnet>

export = createTestnet
