/* Two C DHT nodes on a local testnet: listen / connect with data both ways, received through
 * the readiness fd (poll), server close, announce / lookup / unannounce, immutable and mutable
 * put / get, and the error codes of failing DHT calls. */
#include "common.h"

typedef struct {
  uint64_t server;
  uint64_t client_conn;
} ids_t;

static int server_has_conn(net_state *s, void *arg) {
  return conns_of(s, ((ids_t *)arg)->server) >= 1;
}

typedef struct {
  conn_rec *c;
  const char *text;
} want_text;

static int has_text(net_state *s, void *arg) {
  (void)s;
  want_text *w = arg;
  return strstr(w->c->data, w->text) != NULL;
}

static int has_key(const p2pswarm_buffer *b, const uint8_t *pk) {
  for (size_t i = 0; i + 32 <= p2pswarm_buffer_len(b); i += 32)
    if (memcmp(p2pswarm_buffer_data(b) + i, pk, 32) == 0) return 1;
  return 0;
}

int main(void) {
  p2pswarm_context *ctx = NULL;
  CHECK(p2pswarm_context_new(&ctx));
  p2pswarm_testnet *tn = NULL;
  CHECK(p2pswarm_testnet_new(ctx, 5, &tn));
  char boot[32];
  CHECK(p2pswarm_testnet_bootstrap(tn, boot, sizeof boot));

  p2pswarm_options *ox = local_options(boot, 0x11), *oy = local_options(boot, 0x12);
  p2pswarm_dht *x = NULL, *y = NULL;
  CHECK(p2pswarm_dht_new(ctx, ox, &x));
  CHECK(p2pswarm_dht_new(ctx, oy, &y));
  p2pswarm_options_free(ox);
  p2pswarm_options_free(oy);
  uint8_t pkx[32], want[32], seed[32];
  CHECK(p2pswarm_dht_public_key(x, pkx));
  memset(seed, 0x11, 32);
  CHECK(p2pswarm_public_key_from_seed(seed, 32, want));
  ASSERT(memcmp(pkx, want, 32) == 0);

  /* listen on the node's key pair; a second listen on it is refused */
  p2pswarm_server *srv = NULL, *srv2 = NULL;
  CHECK(p2pswarm_dht_listen(x, NULL, 0, &srv));
  EXPECT(p2pswarm_dht_listen(x, NULL, 0, &srv2), P2PSWARM_ERR_KEY_PAIR_IN_USE);
  uint8_t k[32];
  CHECK(p2pswarm_server_public_key(srv, k));
  ASSERT(memcmp(k, pkx, 32) == 0);
  ids_t ids = {p2pswarm_server_id(srv), 0};
  ASSERT(ids.server != 0);

  /* connect, then exchange data, events through the fd */
  p2pswarm_connection *cy = NULL;
  CHECK(p2pswarm_dht_connect(y, pkx, 32, &cy));
  net_state st;
  memset(&st, 0, sizeof st);
  ASSERT(pump_fd_until(ctx, &st, server_has_conn, &ids, 20000));
  conn_rec *cx = first_conn_of(&st, ids.server);
  ASSERT(!cx->has_info); /* DHT server connections carry no swarm peer info */
  uint8_t pky[32];
  CHECK(p2pswarm_dht_public_key(y, pky));
  ASSERT(memcmp(cx->remote, pky, 32) == 0);
  /* the client side's connection handle is not in the state: register it by hand */
  conn_rec *cyr = &st.c[st.n++];
  memset(cyr, 0, sizeof *cyr);
  cyr->id = p2pswarm_connection_id(cy);
  cyr->conn = cy;
  CHECK(p2pswarm_connection_write(cy, (const uint8_t *)"ping", 4));
  CHECK(p2pswarm_connection_write(cx->conn, (const uint8_t *)"pong", 4));
  want_text w1 = {cx, "ping"}, w2 = {cyr, "pong"};
  ASSERT(pump_fd_until(ctx, &st, has_text, &w1, 15000));
  ASSERT(pump_fd_until(ctx, &st, has_text, &w2, 15000));
  printf("dht connection: data both ways through the fd\n");
  CHECK(p2pswarm_server_close(srv));
  CHECK(p2pswarm_server_close(srv)); /* idempotent */
  p2pswarm_server_free(srv);

  /* connecting to a key nobody serves fails with a reason */
  uint8_t nobody[32], nseed[32];
  memset(nseed, 0x77, 32);
  CHECK(p2pswarm_public_key_from_seed(nseed, 32, nobody));
  p2pswarm_connection *cn = NULL;
  p2pswarm_result r = p2pswarm_dht_connect(y, nobody, 32, &cn);
  printf("connect to nobody: %s\n", p2pswarm_error_message(r));
  ASSERT(r == P2PSWARM_ERR_PEER_NOT_FOUND || r == P2PSWARM_ERR_CONNECTION_FAILED);
  ASSERT(cn == NULL); /* out-parameters are written only on success */

  /* announce / lookup / unannounce */
  uint8_t topic[32], aseed[32], apk[32];
  memset(topic, 't', 32);
  memset(aseed, 0x33, 32);
  CHECK(p2pswarm_public_key_from_seed(aseed, 32, apk));
  size_t nodes = 0;
  CHECK(p2pswarm_dht_announce(x, topic, 32, aseed, 32, &nodes));
  ASSERT(nodes > 0);
  p2pswarm_buffer *keys = NULL;
  CHECK(p2pswarm_dht_lookup(y, topic, 32, &keys));
  ASSERT(has_key(keys, apk));
  p2pswarm_buffer_free(keys);
  CHECK(p2pswarm_dht_unannounce(x, topic, 32, aseed, 32, &nodes));
  CHECK(p2pswarm_dht_lookup(y, topic, 32, &keys));
  ASSERT(!has_key(keys, apk));
  p2pswarm_buffer_free(keys);
  printf("announce / lookup / unannounce ok (%zu nodes)\n", nodes);

  /* immutable */
  uint8_t hash[32];
  const char *value = "an immutable value";
  CHECK(p2pswarm_dht_immutable_put(x, (const uint8_t *)value, strlen(value), hash));
  p2pswarm_buffer *got = NULL;
  CHECK(p2pswarm_dht_immutable_get(y, hash, 32, &got));
  ASSERT(p2pswarm_buffer_len(got) == strlen(value));
  ASSERT(memcmp(p2pswarm_buffer_data(got), value, strlen(value)) == 0);
  p2pswarm_buffer_free(got);
  hash[0] ^= 1;
  got = NULL;
  EXPECT(p2pswarm_dht_immutable_get(y, hash, 32, &got), P2PSWARM_ERR_NOT_FOUND);
  ASSERT(got == NULL);

  /* mutable */
  uint8_t mseed[32], mpk[32];
  memset(mseed, 0x44, 32);
  CHECK(p2pswarm_public_key_from_seed(mseed, 32, mpk));
  CHECK(p2pswarm_dht_mutable_put(x, mseed, 32, (const uint8_t *)"v1", 2, 1, &nodes));
  uint64_t seq = 0;
  CHECK(p2pswarm_dht_mutable_get(y, mpk, 32, 0, &got, &seq));
  ASSERT(seq == 1 && p2pswarm_buffer_len(got) == 2 && memcmp(p2pswarm_buffer_data(got), "v1", 2) == 0);
  p2pswarm_buffer_free(got);
  CHECK(p2pswarm_dht_mutable_put(x, mseed, 32, (const uint8_t *)"v2", 2, 2, NULL));
  CHECK(p2pswarm_dht_mutable_get(y, mpk, 32, 2, &got, &seq));
  ASSERT(seq == 2 && memcmp(p2pswarm_buffer_data(got), "v2", 2) == 0);
  p2pswarm_buffer_free(got);
  EXPECT(p2pswarm_dht_mutable_put(x, mseed, 32, (const uint8_t *)"old", 3, 1, NULL),
         P2PSWARM_ERR_MUTABLE_REFUSED);
  EXPECT(p2pswarm_dht_mutable_get(y, mpk, 32, 3, &got, &seq), P2PSWARM_ERR_NOT_FOUND);
  printf("immutable / mutable put/get ok\n");

  /* destroy: calls on a closed node fail */
  CHECK(p2pswarm_dht_destroy(x));
  CHECK(p2pswarm_dht_destroy(x));
  r = p2pswarm_dht_immutable_put(x, (const uint8_t *)"z", 1, hash);
  printf("put on a destroyed node: %s\n", p2pswarm_error_message(r));
  ASSERT(r != P2PSWARM_OK);

  free_state(&st); /* frees cy too */
  p2pswarm_dht_free(x);
  p2pswarm_dht_free(y);
  p2pswarm_testnet_free(tn);
  p2pswarm_context_free(ctx);
  printf("test_dht: ok\n");
  return 0;
}
