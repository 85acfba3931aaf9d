'use strict'
// Loads the napi-rs addon built by `npm install` (`napi build --release`).
const path = require('path')

let native
try {
  native = require(path.join(__dirname, '..', 'p2pswarm.node'))
} catch (err) {
  err.message = 'p2pswarm: the native addon is not built (run `npm install` or `npm run build` in bindings/node): ' + err.message
  throw err
}
module.exports = native
