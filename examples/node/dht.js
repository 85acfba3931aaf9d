// p2pswarm/dht (hyperdht's API): an echo server and a client on a local testnet, plus a
// mutable record. Self-contained: `node dht.js`.
const DHT = require('p2pswarm/dht')
const createTestnet = require('p2pswarm/testnet')

async function main () {
  const tn = await createTestnet(3)
  const a = new DHT({ bootstrap: tn.bootstrap })
  const b = new DHT({ bootstrap: tn.bootstrap })
  const server = a.createServer((sock) => sock.pipe(sock))
  await server.listen(DHT.keyPair())
  const sock = b.connect(server.publicKey)
  sock.once('data', (d) => { console.log('echo: ' + d); sock.end() })
  sock.write('hello dht')
  await new Promise((resolve) => sock.on('close', resolve))

  const kp = DHT.keyPair()
  await a.mutablePut(kp, Buffer.from('my record'), { seq: 1 })
  const got = await b.mutableGet(kp.publicKey)
  console.log('mutable: ' + got.value + ' seq ' + got.seq)

  await server.close()
  await Promise.all([a.destroy(), b.destroy()])
  await tn.destroy()
}
main()
