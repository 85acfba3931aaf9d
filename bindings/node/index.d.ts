// Type declarations of p2pswarm: hyperswarm 4.17's public API over the Rust stack.
/// <reference types="node" />
import { EventEmitter } from 'events'
import { Duplex } from 'stream'
import HyperDHT = require('./dht')

declare namespace P2Pswarm {
  interface KeyPair {
    publicKey: Buffer
    secretKey: Buffer
  }

  interface BootstrapNode {
    host: string
    port: number
  }

  interface SwarmOptions {
    /** Identity (wins over `seed`); default: a new random key pair. */
    keyPair?: KeyPair
    /** 32-byte seed of a deterministic key pair. */
    seed?: Buffer
    /** Soft cap on connections (default 64). */
    maxPeers?: number
    /** Concurrent outgoing attempts (default 3). */
    maxParallel?: number
    /** Cap on outgoing connections (default Infinity). */
    maxClientConnections?: number
    /** Stored, never enforced (as in hyperswarm 4.17). */
    maxServerConnections?: number
    /** `true` rejects the peer. Called synchronously on the JS thread. */
    firewall?: (remotePublicKey: Buffer, payload: null) => boolean
    /** A p2pswarm/dht instance: its bootstrap is used and it is destroyed with the swarm. */
    dht?: HyperDHT
    /** Bootstrap nodes (IPv4 literals or "localhost"); default: the public network. */
    bootstrap?: Array<BootstrapNode | string>
    /** Local IPv4 address to bind. */
    host?: string
    /** Preferred UDP port. */
    port?: number
    /** Milliseconds to wait for the DHT to bootstrap (default 30000). */
    bootstrapTimeout?: number
  }

  interface JoinOptions {
    server?: boolean
    client?: boolean
    limit?: number
  }

  interface RefreshOptions {
    server?: boolean
    client?: boolean
    limit?: number
  }

  /** An end-to-end (Noise) encrypted Duplex stream. */
  class NoiseSocket extends Duplex {
    readonly publicKey: Buffer | null
    readonly remotePublicKey: Buffer | null
    readonly handshakeHash: Buffer | null
    readonly isInitiator: boolean
    readonly rawStream: null
    /** Resolves true once open (false if it failed to open). */
    readonly opened: Promise<boolean>
    userData: unknown
    on(event: 'open', listener: () => void): this
    on(event: 'close', listener: () => void): this
    on(event: 'error', listener: (err: Error) => void): this
    on(event: 'data', listener: (data: Buffer) => void): this
    on(event: string | symbol, listener: (...args: any[]) => void): this
  }

  class PeerInfo extends EventEmitter {
    readonly publicKey: Buffer
    /** Topics the peer was found on (client-side discovery only). */
    readonly topics: Buffer[]
    readonly prioritized: boolean
    readonly banned: boolean
    readonly explicit: boolean
    /** The last connection was outgoing. */
    readonly client: boolean
    readonly server: boolean
    readonly relayAddresses: BootstrapNode[]
    /** Ban or unban (does not close an existing connection). */
    ban(banStatus?: boolean): void
    on(event: 'topic', listener: (topic: Buffer) => void): this
    on(event: string | symbol, listener: (...args: any[]) => void): this
  }

  /** What `join` returns (hyperswarm's PeerDiscoverySession). */
  class PeerDiscovery {
    readonly swarm: P2Pswarm
    readonly topic: Buffer
    isServer: boolean
    isClient: boolean
    destroyed: boolean
    flushed(): Promise<boolean>
    refresh(opts?: RefreshOptions): Promise<boolean>
    destroy(): Promise<void>
  }

  /** What `status(topic)` returns: the shared discovery of a topic. */
  interface TopicDiscovery {
    readonly topic: Buffer
    readonly sessions: PeerDiscovery[]
    readonly isServer: boolean
    readonly isClient: boolean
    readonly suspended: boolean
    readonly refreshing: boolean
    destroyed: boolean
    flushed(): Promise<boolean>
    refresh(): Promise<boolean[]>
    destroy(): Promise<void>
  }

  interface SwarmStats {
    updates: number
    connects: {
      client: { opened: number, closed: number, attempted: number }
      server: { opened: number, closed: number }
    }
    bannedPeers: number
  }
}

declare class P2Pswarm extends EventEmitter {
  constructor(opts?: P2Pswarm.SwarmOptions)
  static P2Pswarm: typeof P2Pswarm
  static Hyperswarm: typeof P2Pswarm
  /** An ed25519 key pair (deterministic with a 32-byte seed). */
  static keyPair(seed?: Buffer): P2Pswarm.KeyPair

  readonly keyPair: P2Pswarm.KeyPair
  readonly dht: HyperDHT
  readonly maxPeers: number
  readonly maxParallel: number
  readonly maxClientConnections: number
  readonly maxServerConnections: number
  readonly firewall: ((remotePublicKey: Buffer, payload: null) => boolean) | null
  readonly destroyed: boolean
  readonly suspended: boolean
  /** Outgoing attempts in progress. */
  readonly connecting: number
  /** Open connections. */
  readonly connections: Set<P2Pswarm.NoiseSocket>
  /** Known peers by hex public key. */
  readonly peers: Map<string, P2Pswarm.PeerInfo>
  readonly explicitPeers: Set<P2Pswarm.PeerInfo>
  readonly listening: Promise<void> | null
  readonly stats: P2Pswarm.SwarmStats

  join(topic: Buffer, opts?: P2Pswarm.JoinOptions): P2Pswarm.PeerDiscovery
  leave(topic: Buffer): Promise<void>
  joinPeer(publicKey: Buffer): void
  leavePeer(publicKey: Buffer): void
  status(topic: Buffer): P2Pswarm.TopicDiscovery | null
  topics(): IterableIterator<P2Pswarm.TopicDiscovery>
  listen(): Promise<void>
  flush(): Promise<boolean>
  clear(): Promise<void>
  suspend(opts?: { log?: (msg: string) => void }): Promise<void>
  resume(opts?: { log?: (msg: string) => void }): Promise<void>
  destroy(opts?: { force?: boolean }): Promise<void>

  on(event: 'connection', listener: (socket: P2Pswarm.NoiseSocket, peerInfo: P2Pswarm.PeerInfo) => void): this
  on(event: 'update', listener: () => void): this
  on(event: 'ban', listener: (peerInfo: P2Pswarm.PeerInfo, err: Error) => void): this
  on(event: string | symbol, listener: (...args: any[]) => void): this
  once(event: 'connection', listener: (socket: P2Pswarm.NoiseSocket, peerInfo: P2Pswarm.PeerInfo) => void): this
  once(event: 'update', listener: () => void): this
  once(event: 'ban', listener: (peerInfo: P2Pswarm.PeerInfo, err: Error) => void): this
  once(event: string | symbol, listener: (...args: any[]) => void): this
}

export = P2Pswarm
