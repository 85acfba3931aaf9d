// Compiled (not run) by types.test.js: exercises index.d.ts, dht.d.ts and testnet.d.ts under strict mode.
import P2Pswarm = require('p2pswarm')
import DHT = require('p2pswarm/dht')
import createTestnet = require('p2pswarm/testnet')

async function main (): Promise<void> {
  const tn = await createTestnet(3)
  const swarm = new P2Pswarm({ bootstrap: tn.bootstrap, seed: Buffer.alloc(32), maxPeers: 8, firewall: (k: Buffer) => k.length !== 32 })
  swarm.on('connection', (socket: P2Pswarm.NoiseSocket, info: P2Pswarm.PeerInfo) => {
    const pk: Buffer | null = socket.remotePublicKey
    socket.write('hi')
    info.ban(false)
    const topics: Buffer[] = info.topics
    void pk; void topics
  })
  swarm.on('update', () => {})
  const d: P2Pswarm.PeerDiscovery = swarm.join(Buffer.alloc(32), { server: true, client: false })
  const ok: boolean = await d.flushed()
  await d.refresh({ client: true })
  const st = swarm.status(Buffer.alloc(32))
  if (st) await st.flushed()
  const peers: Map<string, P2Pswarm.PeerInfo> = swarm.peers
  const n: number = swarm.connecting + swarm.connections.size
  swarm.joinPeer(Buffer.alloc(32)); swarm.leavePeer(Buffer.alloc(32))
  await swarm.listen(); await swarm.flush(); await swarm.suspend(); await swarm.resume()
  const dht: DHT = swarm.dht
  const node = new DHT({ bootstrap: tn.bootstrap })
  const server = node.createServer((s) => s.end())
  await server.listen(DHT.keyPair())
  const sock = node.connect(server.publicKey!)
  sock.on('open', () => {})
  for await (const r of node.lookup(Buffer.alloc(32))) r.peers.forEach((p) => p.publicKey)
  await node.announce(Buffer.alloc(32)).finished()
  const { hash } = await node.immutablePut(Buffer.from('x'))
  const v = await node.immutableGet(hash)
  await node.mutablePut(DHT.keyPair(), Buffer.from('y'), { seq: 1 })
  const m = await node.mutableGet(DHT.keyPair().publicKey, { seq: 0 })
  void ok; void peers; void n; void dht; void v; void m
  await swarm.destroy(); await node.destroy(); await tn.destroy()
}
void main()
