// The usage example of hyperswarm 4.17's README, run against p2pswarm.
//
// Changes, all outside the README's own lines except the two marked:
//   * require('p2pswarm') instead of require('hyperswarm')                         [marked]
//   * a local testnet bootstrap instead of the public network (P2PSWARM_BOOTSTRAP,
//     e.g. '[{"host":"127.0.0.1","port":49737}]', from `node testnet.js`)          [marked]
//   * the README uses swarm1 and swarm2 but declares only `swarm`: both are declared below it
//   * a check at the end: swarm1 joins the topic as a server (the README never joins it),
//     swarm2 refreshes its lookup once swarm1 is announced (bounded retries), swarm2 prints what the server wrote, then everything is destroyed.
const bootstrap = JSON.parse(process.env.P2PSWARM_BOOTSTRAP || '[]')
if (!bootstrap.length) throw new Error('set P2PSWARM_BOOTSTRAP to a local testnet (see testnet.js)')

// ---- hyperswarm README, "Usage" ------------------------------------------------------------
const Hyperswarm = require('p2pswarm') // [marked] was require('hyperswarm')

const swarm = new Hyperswarm({ bootstrap }) // [marked] was new Hyperswarm()
const swarm1 = new Hyperswarm({ bootstrap })
const swarm2 = new Hyperswarm({ bootstrap })

swarm1.on('connection', (conn) => {
  // swarm1 will receive server connections
  conn.write('this is a server connection')
  conn.end()
})

const discoveryKey = Buffer.alloc(32).fill('hello world') // must be 32 bytes

// join the swarm, others will find you
swarm2.join(discoveryKey, { server: true, client: true })
// ---- end of the README's example -----------------------------------------------------------

// swarm1 announces; once that is done swarm2 looks the topic up again (its first lookup may
// have run before swarm1's announce)
swarm1.join(discoveryKey, { server: true, client: false }).flushed().then(async () => {
  for (let i = 0; i < 20 && swarm2.connections.size === 0 && !swarm2.destroyed; i++) {
    await swarm2.status(discoveryKey).flushed()
    await swarm2.status(discoveryKey).refresh()
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
}).catch(() => {}) // the swarms may be destroyed meanwhile
swarm2.on('connection', (conn, info) => {
  conn.on('data', (d) => console.log('swarm2 got: ' + d.toString() + ' (from ' + info.publicKey.toString('hex').slice(0, 8) + ')'))
  conn.on('end', async () => {
    await Promise.all([swarm.destroy(), swarm1.destroy(), swarm2.destroy()])
    console.log('done')
  })
})
