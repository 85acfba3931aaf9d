// Type declarations of p2pswarm/dht: hyperdht 6's main API over the Rust DHT node.
/// <reference types="node" />
import { EventEmitter } from 'events'
import { Readable } from 'stream'
import type { NoiseSocket, KeyPair, BootstrapNode } from './index'

declare namespace HyperDHT {
  interface DHTOptions {
    keyPair?: KeyPair
    seed?: Buffer
    bootstrap?: Array<BootstrapNode | string>
    host?: string
    port?: number
    bootstrapTimeout?: number
  }

  interface PeerRecord {
    publicKey: Buffer
    relayAddresses: BootstrapNode[]
  }

  interface LookupReply {
    from: BootstrapNode
    to: null
    peers: PeerRecord[]
  }

  /** A finished query as an object-mode stream (hyperdht's query stream). */
  class Query<T = LookupReply> extends Readable {
    finished(): Promise<void>
    toArray(): Promise<T[]>
    [Symbol.asyncIterator](): AsyncIterableIterator<T>
  }

  interface ServerOptions {
    firewall?: (remotePublicKey: Buffer, payload: null) => boolean
  }

  class Server extends EventEmitter {
    readonly dht: HyperDHT
    readonly publicKey: Buffer | null
    readonly listening: boolean
    readonly closed: boolean
    listen(keyPair?: KeyPair): Promise<void>
    address(): { publicKey: Buffer, host: null, port: number } | null
    close(): Promise<void>
    on(event: 'connection', listener: (socket: NoiseSocket) => void): this
    on(event: 'listening' | 'close', listener: () => void): this
    on(event: string | symbol, listener: (...args: any[]) => void): this
  }

  interface MutableGetResult {
    id: null
    seq: number
    value: Buffer
    signature: Buffer
    from: BootstrapNode
  }
}

declare class HyperDHT extends EventEmitter {
  constructor(opts?: HyperDHT.DHTOptions)
  static keyPair(seed?: Buffer): KeyPair
  readonly defaultKeyPair: KeyPair
  readonly publicKey: Buffer
  readonly destroyed: boolean
  ready(): Promise<void>
  createServer(onconnection?: (socket: NoiseSocket) => void): HyperDHT.Server
  createServer(opts: HyperDHT.ServerOptions, onconnection?: (socket: NoiseSocket) => void): HyperDHT.Server
  /** Returns at once; the socket emits 'open' once connected, or 'error'. */
  connect(remotePublicKey: Buffer, opts?: { keyPair?: KeyPair }): NoiseSocket
  lookup(topic: Buffer): HyperDHT.Query<HyperDHT.LookupReply>
  announce(topic: Buffer, keyPair?: KeyPair): HyperDHT.Query<never>
  unannounce(topic: Buffer, keyPair?: KeyPair): Promise<void>
  immutablePut(value: Buffer): Promise<{ hash: Buffer, closestNodes: [] }>
  immutableGet(hash: Buffer): Promise<{ id: null, value: Buffer, from: null } | null>
  mutablePut(keyPair: KeyPair, value: Buffer, opts?: { seq?: number }): Promise<{ publicKey: Buffer, closestNodes: [], seq: number }>
  mutableGet(publicKey: Buffer, opts?: { seq?: number }): Promise<HyperDHT.MutableGetResult | null>
  destroy(): Promise<void>
}

export = HyperDHT
