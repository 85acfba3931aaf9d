// A tiny chat over a topic: every line typed is sent to every connected peer.
//   P2PSWARM_BOOTSTRAP='[{"host":"127.0.0.1","port":PORT}]' node chat.js my-room
const crypto = require('crypto')
const readline = require('readline')
const P2Pswarm = require('p2pswarm')

const bootstrap = JSON.parse(process.env.P2PSWARM_BOOTSTRAP || '[]')
const room = process.argv[2] || 'p2pswarm-chat'
const swarm = new P2Pswarm({ bootstrap })
const topic = crypto.createHash('sha256').update(room).digest()

swarm.on('connection', (conn, info) => {
  const who = info.publicKey.toString('hex').slice(0, 8)
  console.log('* ' + who + ' joined')
  conn.on('data', (d) => console.log(who + ': ' + d.toString().trimEnd()))
  conn.on('error', () => {})
  conn.on('close', () => console.log('* ' + who + ' left'))
})
swarm.join(topic)
swarm.flush().then(() => console.log('* joined ' + room + ' as ' + swarm.keyPair.publicKey.toString('hex').slice(0, 8)))

const rl = readline.createInterface({ input: process.stdin })
rl.on('line', (line) => { for (const c of swarm.connections) c.write(line + '\n') })
rl.on('close', () => swarm.destroy())
process.on('SIGINT', () => swarm.destroy().then(() => process.exit(0)))
