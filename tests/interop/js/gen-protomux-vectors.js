// Byte vectors from the pinned JS protomux + blind-relay, for core/src/protomux/tests.rs.
// Usage: node gen-protomux-vectors.js  (prints one `name hex` line per frame)
const EventEmitter = require('events')
const Protomux = require('protomux')
const c = require('compact-encoding')
const relay = require('blind-relay')

function fakeStream (name, out) {
  const s = new EventEmitter()
  s.userData = null
  s.destroyed = false
  s.write = (buf) => { out.push([name, Buffer.from(buf).toString('hex')]); return true }
  s.pause = s.resume = s.end = () => {}
  s.destroy = (err) => { out.push([name + '-destroyed', String(err && err.message)]) }
  return s
}

const out = []
const a = new Protomux(fakeStream('a', out))
const id = Buffer.alloc(32, 0xaa)
const ch = a.createChannel({ protocol: 'blind-relay', id })
const pair = ch.addMessage({ encoding: relay.messages.pair })
const unpair = ch.addMessage({ encoding: relay.messages.unpair })
const raw = ch.addMessage({ encoding: c.raw })
ch.open()
const nameOf = (n) => { const f = out[out.length - 1]; f[0] = n }
nameOf('open_blind_relay_id_aa')
// the remote opens with its local id 1 too; then messages flow
a.stream.emit('data', Buffer.from('0001010b626c696e642d72656c617920' + 'aa'.repeat(32), 'hex'))
pair.send({ isInitiator: true, token: Buffer.alloc(32, 0x11), id: 1234567, seq: 0 })
nameOf('pair_initiator_token11_id1234567')
pair.send({ isInitiator: false, token: Buffer.alloc(32, 0x22), id: 5, seq: 0 })
nameOf('pair_responder_token22_id5')
unpair.send({ token: Buffer.alloc(32, 0x33) })
nameOf('unpair_token33')
a.cork()
raw.send(Buffer.from('hello'))
raw.send(Buffer.from('world'))
const ch2 = a.createChannel({ protocol: 'other' })
ch2.open(null)
a.uncork()
nameOf('batch_two_raw_then_open_other')
ch.close()
nameOf('close_1')
for (const [n, h] of out) console.log(n, h)
