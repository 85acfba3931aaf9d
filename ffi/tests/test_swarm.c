/* Two C swarms on a local testnet: join as server and client, connection events with peer
 * info, data both ways (blocking pull), counts, peers, ban, join_peer, discovery
 * flushed/refresh/destroy, the swarm's DHT, end and destroy of connections, shutdown. */
#include "common.h"

typedef struct {
  uint64_t a, b;
} pair_ids;

static int both_connected(net_state *s, void *arg) {
  pair_ids *p = arg;
  return conns_of(s, p->a) >= 1 && conns_of(s, p->b) >= 1;
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

typedef struct {
  conn_rec *c;
  size_t total;
} total_arg;

static int total_is(net_state *s, void *arg) {
  (void)s;
  total_arg *t = arg;
  return t->c->total >= t->total;
}

static int is_ended(net_state *s, void *arg) {
  (void)s;
  return ((conn_rec *)arg)->ended;
}

static int both_closed(net_state *s, void *arg) {
  (void)s;
  conn_rec **c = arg;
  return c[0]->closed && c[1]->closed;
}

int main(void) {
  p2pswarm_context *ctx = NULL;
  CHECK(p2pswarm_context_new(&ctx));
  p2pswarm_testnet *tn = NULL;
  CHECK(p2pswarm_testnet_new(ctx, 5, &tn));
  char boot[32];
  CHECK(p2pswarm_testnet_bootstrap(tn, boot, sizeof boot));
  ASSERT(strncmp(boot, "127.0.0.1:", 10) == 0);
  printf("testnet at %s\n", boot);

  p2pswarm_options *oa = local_options(boot, 0x0a);
  CHECK(p2pswarm_options_set_max_peers(oa, 8));
  CHECK(p2pswarm_options_set_max_parallel(oa, 2));
  CHECK(p2pswarm_options_set_max_client_connections(oa, 4));
  p2pswarm_options *ob = local_options(boot, 0x0b);
  p2pswarm_swarm *a = NULL, *b = NULL;
  CHECK(p2pswarm_swarm_new(ctx, oa, &a));
  CHECK(p2pswarm_swarm_new(ctx, ob, &b));
  p2pswarm_options_free(oa);
  p2pswarm_options_free(ob);

  pair_ids ids = {p2pswarm_swarm_id(a), p2pswarm_swarm_id(b)};
  ASSERT(ids.a != 0 && ids.b != 0 && ids.a != ids.b);
  uint8_t pka[32], pkb[32], want[32], seed[32];
  CHECK(p2pswarm_swarm_public_key(a, pka));
  CHECK(p2pswarm_swarm_public_key(b, pkb));
  memset(seed, 0x0a, 32);
  CHECK(p2pswarm_public_key_from_seed(seed, 32, want));
  ASSERT(memcmp(pka, want, 32) == 0);

  uint8_t topic[32];
  memset(topic, 'h', sizeof topic);
  p2pswarm_discovery *da = NULL, *db = NULL;
  CHECK(p2pswarm_swarm_join(a, topic, 32, P2PSWARM_JOIN_SERVER, &da));
  uint8_t t2[32];
  CHECK(p2pswarm_discovery_topic(da, t2));
  ASSERT(memcmp(t2, topic, 32) == 0);
  bool flushed = false;
  CHECK(p2pswarm_discovery_flushed(da, &flushed));
  ASSERT(flushed);
  uint32_t sflags = 0;
  size_t sessions = 0;
  CHECK(p2pswarm_swarm_status(a, topic, 32, &sflags, &sessions));
  ASSERT((sflags & (P2PSWARM_JOIN_SERVER | P2PSWARM_JOIN_CLIENT)) == P2PSWARM_JOIN_SERVER);
  ASSERT(sessions == 1);
  CHECK(p2pswarm_swarm_join(b, topic, 32, P2PSWARM_JOIN_CLIENT, &db));
  CHECK(p2pswarm_swarm_flush(b, &flushed));
  ASSERT(flushed);

  net_state st;
  memset(&st, 0, sizeof st);
  ASSERT(pump_until(ctx, &st, both_connected, &ids, 30000));
  conn_rec *ca = first_conn_of(&st, ids.a), *cb = first_conn_of(&st, ids.b);
  printf("connected: a conn %llu, b conn %llu, %d updates\n", (unsigned long long)ca->id,
         (unsigned long long)cb->id, st.updates);
  ASSERT(memcmp(ca->remote, pkb, 32) == 0);
  ASSERT(memcmp(cb->remote, pka, 32) == 0);
  /* the client found the server on the topic */
  ASSERT(cb->has_info && cb->topics == 1 && memcmp(cb->topic0, topic, 32) == 0);
  ASSERT(ca->has_info);

  /* connection accessors */
  uint8_t k[32], ha[64], hb[64];
  CHECK(p2pswarm_connection_remote_public_key(ca->conn, k));
  ASSERT(memcmp(k, pkb, 32) == 0);
  CHECK(p2pswarm_connection_handshake_hash(ca->conn, ha));
  CHECK(p2pswarm_connection_handshake_hash(cb->conn, hb));
  ASSERT(memcmp(ha, hb, 64) == 0);
  bool init = true;
  CHECK(p2pswarm_connection_is_initiator(ca->conn, &init));
  ASSERT(!init);
  CHECK(p2pswarm_connection_is_initiator(cb->conn, &init));
  ASSERT(init);

  /* counts and peers */
  size_t n = 0;
  CHECK(p2pswarm_swarm_connections(a, &n));
  ASSERT(n == 1);
  CHECK(p2pswarm_swarm_connections(b, &n));
  ASSERT(n == 1);
  CHECK(p2pswarm_swarm_connecting(b, &n));
  printf("b connecting: %zu\n", n);
  CHECK(p2pswarm_swarm_peers_len(b, &n));
  ASSERT(n >= 1);
  uint8_t keys[32 * 8];
  size_t count = 0;
  CHECK(p2pswarm_swarm_peers(b, keys, 8, &count));
  ASSERT(count == n);
  int found = 0;
  for (size_t i = 0; i < count; i++) found |= memcmp(keys + 32 * i, pka, 32) == 0;
  ASSERT(found);
  p2pswarm_peer_info *info = NULL;
  CHECK(p2pswarm_swarm_peer(b, pka, 32, &info));
  CHECK(p2pswarm_peer_info_public_key(info, k));
  ASSERT(memcmp(k, pka, 32) == 0);
  ASSERT(p2pswarm_peer_info_topics_len(info) == 1);
  CHECK(p2pswarm_peer_info_topic(info, 0, k));
  ASSERT(memcmp(k, topic, 32) == 0);
  EXPECT(p2pswarm_peer_info_topic(info, 1, k), P2PSWARM_ERR_NOT_FOUND);
  ASSERT(p2pswarm_peer_info_prioritized(info));
  ASSERT(!p2pswarm_peer_info_banned(info));
  ASSERT(!p2pswarm_peer_info_explicit(info));
  p2pswarm_peer_info_free(info);

  /* data both ways */
  const char *ma = "hello from a", *mb = "hello from b";
  CHECK(p2pswarm_connection_write(ca->conn, (const uint8_t *)ma, strlen(ma)));
  CHECK(p2pswarm_connection_write(cb->conn, (const uint8_t *)mb, strlen(mb)));
  want_text wa = {cb, ma}, wb = {ca, mb};
  ASSERT(pump_until(ctx, &st, has_text, &wa, 15000));
  ASSERT(pump_until(ctx, &st, has_text, &wb, 15000));
  printf("data exchanged both ways\n");

  /* 1 MiB each way at the same time arrives whole (reading never waits for writing) */
  static uint8_t big[1 << 20];
  for (size_t i = 0; i < sizeof big; i++) big[i] = (uint8_t)('a' + i % 26);
  big[sizeof big - 1] = '!';
  CHECK(p2pswarm_connection_write(ca->conn, big, sizeof big));
  CHECK(p2pswarm_connection_write(cb->conn, big, sizeof big));

  /* join_peer / leave_peer / ban */
  CHECK(p2pswarm_swarm_join_peer(a, pkb, 32));
  CHECK(p2pswarm_swarm_peer(a, pkb, 32, &info));
  ASSERT(p2pswarm_peer_info_explicit(info));
  p2pswarm_peer_info_free(info);
  CHECK(p2pswarm_swarm_leave_peer(a, pkb, 32));
  CHECK(p2pswarm_swarm_peer(a, pkb, 32, &info));
  ASSERT(!p2pswarm_peer_info_explicit(info));
  p2pswarm_peer_info_free(info);
  CHECK(p2pswarm_swarm_ban(b, pka, 32, true));
  CHECK(p2pswarm_swarm_peer(b, pka, 32, &info));
  ASSERT(p2pswarm_peer_info_banned(info));
  p2pswarm_peer_info_free(info);
  CHECK(p2pswarm_swarm_ban(b, pka, 32, false));
  CHECK(p2pswarm_swarm_peer(b, pka, 32, &info));
  ASSERT(!p2pswarm_peer_info_banned(info));
  p2pswarm_peer_info_free(info);

  /* the swarm's DHT sees a's announcement */
  p2pswarm_dht *dht = NULL;
  CHECK(p2pswarm_swarm_dht(b, &dht));
  p2pswarm_buffer *found_keys = NULL;
  CHECK(p2pswarm_dht_lookup(dht, topic, 32, &found_keys));
  found = 0;
  for (size_t i = 0; i + 32 <= p2pswarm_buffer_len(found_keys); i += 32)
    found |= memcmp(p2pswarm_buffer_data(found_keys) + i, pka, 32) == 0;
  ASSERT(found);
  p2pswarm_buffer_free(found_keys);
  p2pswarm_dht_free(dht); /* borrowed: does not close b's node */

  /* listen, refresh, leave, discovery destroy */
  CHECK(p2pswarm_swarm_listen(a));
  CHECK(p2pswarm_discovery_refresh(db, P2PSWARM_JOIN_CLIENT, &flushed));
  ASSERT(flushed);
  CHECK(p2pswarm_swarm_leave(b, topic, 32));
  EXPECT(p2pswarm_swarm_status(b, topic, 32, &sflags, NULL), P2PSWARM_ERR_NOT_FOUND);
  CHECK(p2pswarm_discovery_destroy(da));
  p2pswarm_discovery_free(da);
  p2pswarm_discovery_free(db);

  /* the big write arrived whole (after the 12-byte hello) */
  size_t want_total = strlen(ma) + sizeof big;
  ASSERT(pump_until(ctx, &st, total_is, &(total_arg){cb, want_total}, 60000));
  ASSERT(pump_until(ctx, &st, total_is, &(total_arg){ca, strlen(mb) + sizeof big}, 60000));
  ASSERT(cb->last == '!' && ca->last == '!');
  printf("1 MiB each way at once ok\n");

  /* b ends: a sees END; a destroys: both see CLOSE */
  CHECK(p2pswarm_connection_end(cb->conn));
  ASSERT(pump_until(ctx, &st, is_ended, ca, 15000));
  CHECK(p2pswarm_connection_destroy(ca->conn));
  conn_rec *both[2] = {ca, cb};
  ASSERT(pump_until(ctx, &st, both_closed, both, 20000));
  EXPECT(p2pswarm_connection_write(ca->conn, (const uint8_t *)"x", 1), P2PSWARM_ERR_CLOSED);
  printf("end / destroy / close seen\n");

  /* suspend drops connections and discovery; resume brings discovery back */
  CHECK(p2pswarm_swarm_suspend(a));
  CHECK(p2pswarm_swarm_connections(a, &n));
  ASSERT(n == 0);
  uint8_t topic2[32];
  memset(topic2, 's', 32);
  CHECK(p2pswarm_swarm_join(a, topic2, 32, P2PSWARM_JOIN_CLIENT, NULL));
  CHECK(p2pswarm_swarm_status(a, topic2, 32, &sflags, NULL));
  ASSERT(sflags & P2PSWARM_STATUS_SUSPENDED);
  CHECK(p2pswarm_swarm_resume(a));
  p2pswarm_result r;

  CHECK(p2pswarm_swarm_destroy(a));
  CHECK(p2pswarm_swarm_destroy(b));
  CHECK(p2pswarm_swarm_destroy(b)); /* idempotent */
  EXPECT(p2pswarm_swarm_flush(a, &flushed), P2PSWARM_OK);
  ASSERT(!flushed);
  free_state(&st);
  p2pswarm_swarm_free(a);
  p2pswarm_swarm_free(b);
  p2pswarm_testnet_free(tn);
  CHECK(p2pswarm_context_shutdown(ctx));
  p2pswarm_event *ev = NULL;
  for (;;) { /* drain what is left, then CLOSED */
    r = p2pswarm_next_event(ctx, 1000, &ev);
    if (r != P2PSWARM_OK) break;
    p2pswarm_event_free(ev);
  }
  ASSERT(r == P2PSWARM_ERR_CLOSED);
  p2pswarm_context_free(ctx);
  printf("test_swarm: ok\n");
  return 0;
}
