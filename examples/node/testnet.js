// Starts a local DHT testnet and prints its bootstrap as JSON (for the other examples):
//   node testnet.js            -> [{"host":"127.0.0.1","port":PORT}]   (runs until Ctrl-C)
const createTestnet = require('p2pswarm/testnet')

createTestnet(3).then((tn) => {
  console.log(JSON.stringify(tn.bootstrap))
  setInterval(() => {}, 1 << 30)
  process.on('SIGINT', async () => { await tn.destroy(); process.exit(0) })
})
