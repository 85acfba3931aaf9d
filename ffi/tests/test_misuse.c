/* Misuse: NULL handles and out-parameters, wrong lengths, bad strings and flags, small
 * buffers, unknown items, calls after shutdown, idempotent shutdown; every one returns its
 * result code and nothing crashes. Also the error messages and the readiness fd. */
#include "common.h"

static const int codes[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 20, 21, 22, 30, 31, 32, 33, 34, 40, 41, 42, 43, 99};

int main(void) {
  /* messages */
  for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
    const char *m = p2pswarm_error_message(codes[i]);
    ASSERT(m && *m && strcmp(m, "unknown error") != 0);
  }
  ASSERT(strcmp(p2pswarm_error_message(12345), "unknown error") == 0);
  ASSERT(strcmp(p2pswarm_error_message(-1), "unknown error") == 0);
  ASSERT(strncmp(p2pswarm_version(), "p2pswarm ", 9) == 0);

  /* NULL everywhere */
  uint8_t b32[32] = {0}, b64[64] = {0};
  size_t n = 0;
  bool f = false;
  int fd = -1, value = 0;
  uint64_t seq = 0;
  EXPECT(p2pswarm_context_new(NULL), P2PSWARM_ERR_NULL_ARGUMENT);
  EXPECT(p2pswarm_context_shutdown(NULL), P2PSWARM_ERR_NULL_ARGUMENT);
  EXPECT(p2pswarm_context_callback_error(NULL, &value), P2PSWARM_ERR_NULL_ARGUMENT);
  EXPECT(p2pswarm_next_event(NULL, 0, NULL), P2PSWARM_ERR_NULL_ARGUMENT);
  EXPECT(p2pswarm_event_fd(NULL, &fd), P2PSWARM_ERR_NULL_ARGUMENT);
  EXPECT(p2pswarm_set_event_callback(NULL, NULL, NULL), P2PSWARM_ERR_NULL_ARGUMENT);
  EXPECT(p2pswarm_options_new(NULL), P2PSWARM_ERR_NULL_ARGUMENT);
  EXPECT(p2pswarm_options_set_seed(NULL, b32, 32), P2PSWARM_ERR_NULL_ARGUMENT);
  EXPECT(p2pswarm_options_add_bootstrap(NULL, "127.0.0.1:1"), P2PSWARM_ERR_NULL_ARGUMENT);
  EXPECT(p2pswarm_swarm_new(NULL, NULL, NULL), P2PSWARM_ERR_NULL_ARGUMENT);
  EXPECT(p2pswarm_swarm_join(NULL, b32, 32, 3, NULL), P2PSWARM_ERR_NULL_ARGUMENT);
  EXPECT(p2pswarm_swarm_leave(NULL, b32, 32), P2PSWARM_ERR_NULL_ARGUMENT);
  EXPECT(p2pswarm_swarm_join_peer(NULL, b32, 32), P2PSWARM_ERR_NULL_ARGUMENT);
  EXPECT(p2pswarm_swarm_leave_peer(NULL, b32, 32), P2PSWARM_ERR_NULL_ARGUMENT);
  EXPECT(p2pswarm_swarm_flush(NULL, &f), P2PSWARM_ERR_NULL_ARGUMENT);
  EXPECT(p2pswarm_swarm_listen(NULL), P2PSWARM_ERR_NULL_ARGUMENT);
  EXPECT(p2pswarm_swarm_suspend(NULL), P2PSWARM_ERR_NULL_ARGUMENT);
  EXPECT(p2pswarm_swarm_resume(NULL), P2PSWARM_ERR_NULL_ARGUMENT);
  EXPECT(p2pswarm_swarm_destroy(NULL), P2PSWARM_ERR_NULL_ARGUMENT);
  EXPECT(p2pswarm_swarm_connecting(NULL, &n), P2PSWARM_ERR_NULL_ARGUMENT);
  EXPECT(p2pswarm_swarm_connections(NULL, &n), P2PSWARM_ERR_NULL_ARGUMENT);
  EXPECT(p2pswarm_swarm_peers_len(NULL, &n), P2PSWARM_ERR_NULL_ARGUMENT);
  EXPECT(p2pswarm_swarm_peers(NULL, NULL, 0, &n), P2PSWARM_ERR_NULL_ARGUMENT);
  EXPECT(p2pswarm_swarm_peer(NULL, b32, 32, NULL), P2PSWARM_ERR_NULL_ARGUMENT);
  EXPECT(p2pswarm_swarm_ban(NULL, b32, 32, true), P2PSWARM_ERR_NULL_ARGUMENT);
  EXPECT(p2pswarm_swarm_public_key(NULL, b32), P2PSWARM_ERR_NULL_ARGUMENT);
  EXPECT(p2pswarm_swarm_dht(NULL, NULL), P2PSWARM_ERR_NULL_ARGUMENT);
  ASSERT(p2pswarm_swarm_id(NULL) == 0);
  EXPECT(p2pswarm_discovery_flushed(NULL, &f), P2PSWARM_ERR_NULL_ARGUMENT);
  EXPECT(p2pswarm_discovery_refresh(NULL, 3, NULL), P2PSWARM_ERR_NULL_ARGUMENT);
  EXPECT(p2pswarm_discovery_destroy(NULL), P2PSWARM_ERR_NULL_ARGUMENT);
  EXPECT(p2pswarm_discovery_topic(NULL, b32), P2PSWARM_ERR_NULL_ARGUMENT);
  EXPECT(p2pswarm_connection_write(NULL, b32, 1), P2PSWARM_ERR_NULL_ARGUMENT);
  EXPECT(p2pswarm_connection_end(NULL), P2PSWARM_ERR_NULL_ARGUMENT);
  EXPECT(p2pswarm_connection_queued_bytes(NULL, &n), P2PSWARM_ERR_NULL_ARGUMENT);
  EXPECT(p2pswarm_connection_destroy(NULL), P2PSWARM_ERR_NULL_ARGUMENT);
  EXPECT(p2pswarm_connection_remote_public_key(NULL, b32), P2PSWARM_ERR_NULL_ARGUMENT);
  EXPECT(p2pswarm_connection_handshake_hash(NULL, b64), P2PSWARM_ERR_NULL_ARGUMENT);
  EXPECT(p2pswarm_connection_is_initiator(NULL, &f), P2PSWARM_ERR_NULL_ARGUMENT);
  ASSERT(p2pswarm_connection_id(NULL) == 0);
  EXPECT(p2pswarm_dht_new(NULL, NULL, NULL), P2PSWARM_ERR_NULL_ARGUMENT);
  EXPECT(p2pswarm_dht_connect(NULL, b32, 32, NULL), P2PSWARM_ERR_NULL_ARGUMENT);
  EXPECT(p2pswarm_dht_listen(NULL, NULL, 0, NULL), P2PSWARM_ERR_NULL_ARGUMENT);
  EXPECT(p2pswarm_dht_lookup(NULL, b32, 32, NULL), P2PSWARM_ERR_NULL_ARGUMENT);
  EXPECT(p2pswarm_dht_announce(NULL, b32, 32, b32, 32, NULL), P2PSWARM_ERR_NULL_ARGUMENT);
  EXPECT(p2pswarm_dht_unannounce(NULL, b32, 32, b32, 32, NULL), P2PSWARM_ERR_NULL_ARGUMENT);
  EXPECT(p2pswarm_dht_immutable_put(NULL, b32, 1, b32), P2PSWARM_ERR_NULL_ARGUMENT);
  EXPECT(p2pswarm_dht_immutable_get(NULL, b32, 32, NULL), P2PSWARM_ERR_NULL_ARGUMENT);
  EXPECT(p2pswarm_dht_mutable_put(NULL, b32, 32, b32, 1, 1, NULL), P2PSWARM_ERR_NULL_ARGUMENT);
  EXPECT(p2pswarm_dht_mutable_get(NULL, b32, 32, 0, NULL, &seq), P2PSWARM_ERR_NULL_ARGUMENT);
  EXPECT(p2pswarm_dht_destroy(NULL), P2PSWARM_ERR_NULL_ARGUMENT);
  EXPECT(p2pswarm_dht_public_key(NULL, b32), P2PSWARM_ERR_NULL_ARGUMENT);
  EXPECT(p2pswarm_server_close(NULL), P2PSWARM_ERR_NULL_ARGUMENT);
  EXPECT(p2pswarm_server_public_key(NULL, b32), P2PSWARM_ERR_NULL_ARGUMENT);
  ASSERT(p2pswarm_server_id(NULL) == 0);
  EXPECT(p2pswarm_testnet_new(NULL, 3, NULL), P2PSWARM_ERR_NULL_ARGUMENT);
  EXPECT(p2pswarm_testnet_bootstrap(NULL, (char *)b32, 32), P2PSWARM_ERR_NULL_ARGUMENT);
  EXPECT(p2pswarm_public_key_from_seed(NULL, 32, b32), P2PSWARM_ERR_NULL_ARGUMENT);
  EXPECT(p2pswarm_peer_info_public_key(NULL, b32), P2PSWARM_ERR_NULL_ARGUMENT);
  EXPECT(p2pswarm_peer_info_topic(NULL, 0, b32), P2PSWARM_ERR_NULL_ARGUMENT);
  ASSERT(p2pswarm_peer_info_topics_len(NULL) == 0);
  ASSERT(!p2pswarm_peer_info_prioritized(NULL) && !p2pswarm_peer_info_banned(NULL) &&
         !p2pswarm_peer_info_explicit(NULL));
  ASSERT(p2pswarm_event_get_kind(NULL) == P2PSWARM_EVENT_NONE);
  ASSERT(p2pswarm_event_source(NULL) == 0 && p2pswarm_event_connection_id(NULL) == 0);
  ASSERT(p2pswarm_event_error(NULL) == NULL);
  EXPECT(p2pswarm_event_data(NULL, NULL, NULL), P2PSWARM_ERR_NULL_ARGUMENT);
  EXPECT(p2pswarm_event_public_key(NULL, b32), P2PSWARM_ERR_NULL_ARGUMENT);
  EXPECT(p2pswarm_event_take_connection(NULL, NULL), P2PSWARM_ERR_NULL_ARGUMENT);
  EXPECT(p2pswarm_event_peer_info(NULL, NULL), P2PSWARM_ERR_NULL_ARGUMENT);
  ASSERT(p2pswarm_buffer_data(NULL) == NULL && p2pswarm_buffer_len(NULL) == 0);
  /* free(NULL) is a no-op */
  p2pswarm_context_free(NULL);
  p2pswarm_options_free(NULL);
  p2pswarm_swarm_free(NULL);
  p2pswarm_discovery_free(NULL);
  p2pswarm_connection_free(NULL);
  p2pswarm_event_free(NULL);
  p2pswarm_peer_info_free(NULL);
  p2pswarm_dht_free(NULL);
  p2pswarm_server_free(NULL);
  p2pswarm_testnet_free(NULL);
  p2pswarm_buffer_free(NULL);
  /* last error detail */
  EXPECT(p2pswarm_public_key_from_seed(b32, 31, b32), P2PSWARM_ERR_INVALID_ARGUMENT);
  char detail[128];
  size_t dl = p2pswarm_last_error_detail(detail, sizeof detail);
  ASSERT(dl > 0 && strstr(detail, "expected 32 bytes") != NULL);
  ASSERT(p2pswarm_last_error_detail(NULL, 0) == dl);
  char tiny[4];
  ASSERT(p2pswarm_last_error_detail(tiny, sizeof tiny) == dl && strlen(tiny) == 3);

  /* options validation */
  p2pswarm_options *o = NULL;
  CHECK(p2pswarm_options_new(&o));
  EXPECT(p2pswarm_options_set_seed(o, b32, 31), P2PSWARM_ERR_INVALID_ARGUMENT);
  EXPECT(p2pswarm_options_set_seed(o, NULL, 32), P2PSWARM_ERR_NULL_ARGUMENT);
  EXPECT(p2pswarm_options_set_secret_key(o, b64, 32), P2PSWARM_ERR_INVALID_ARGUMENT);
  memset(b64, 1, 64); /* the public half does not match the seed half */
  EXPECT(p2pswarm_options_set_secret_key(o, b64, 64), P2PSWARM_ERR_INVALID_ARGUMENT);
  memset(b64, 5, 32);
  CHECK(p2pswarm_public_key_from_seed(b64, 32, b64 + 32));
  CHECK(p2pswarm_options_set_secret_key(o, b64, 64));
  EXPECT(p2pswarm_options_add_bootstrap(o, "not an address"), P2PSWARM_ERR_INVALID_ARGUMENT);
  EXPECT(p2pswarm_options_add_bootstrap(o, "example.org:49737"), P2PSWARM_ERR_INVALID_ARGUMENT);
  EXPECT(p2pswarm_options_add_bootstrap(o, "\xff\xfe:1"), P2PSWARM_ERR_INVALID_ARGUMENT);
  EXPECT(p2pswarm_options_add_bootstrap(o, NULL), P2PSWARM_ERR_NULL_ARGUMENT);
  EXPECT(p2pswarm_options_set_host(o, "localhost"), P2PSWARM_ERR_INVALID_ARGUMENT);
  EXPECT(p2pswarm_options_set_max_peers(o, 0), P2PSWARM_ERR_INVALID_ARGUMENT);
  EXPECT(p2pswarm_options_set_max_parallel(o, 0), P2PSWARM_ERR_INVALID_ARGUMENT);
  EXPECT(p2pswarm_options_set_max_client_connections(o, 0), P2PSWARM_ERR_INVALID_ARGUMENT);
  EXPECT(p2pswarm_options_set_bootstrap_timeout_ms(o, 0), P2PSWARM_ERR_INVALID_ARGUMENT);
  CHECK(p2pswarm_options_set_firewall(o, NULL, NULL));
  CHECK(p2pswarm_options_set_port(o, 0));
  EXPECT(p2pswarm_options_set_port(NULL, 1), P2PSWARM_ERR_NULL_ARGUMENT);
  p2pswarm_options_free(o);

  /* a context with nothing in it */
  p2pswarm_context *ctx = NULL;
  CHECK(p2pswarm_context_new(&ctx));
  p2pswarm_event *ev = NULL;
  EXPECT(p2pswarm_next_event(ctx, 0, &ev), P2PSWARM_ERR_TIMEOUT);
  long long t0 = now_ms();
  EXPECT(p2pswarm_next_event(ctx, 50, &ev), P2PSWARM_ERR_TIMEOUT);
  ASSERT(now_ms() - t0 >= 45);
  ASSERT(ev == NULL);
  EXPECT(p2pswarm_next_event(ctx, 0, NULL), P2PSWARM_ERR_NULL_ARGUMENT);
  CHECK(p2pswarm_event_fd(ctx, &fd));
  ASSERT(fd >= 0);
  struct pollfd p = {.fd = fd, .events = POLLIN};
  ASSERT(poll(&p, 1, 0) == 0); /* nothing queued: not readable */
  EXPECT(p2pswarm_testnet_new(ctx, 0, NULL), P2PSWARM_ERR_NULL_ARGUMENT);
  p2pswarm_testnet *tn = NULL;
  EXPECT(p2pswarm_testnet_new(ctx, 0, &tn), P2PSWARM_ERR_INVALID_ARGUMENT);
  EXPECT(p2pswarm_testnet_new(ctx, 65, &tn), P2PSWARM_ERR_INVALID_ARGUMENT);
  CHECK(p2pswarm_testnet_new(ctx, 3, &tn));
  char boot[32], small[8];
  EXPECT(p2pswarm_testnet_bootstrap(tn, small, sizeof small), P2PSWARM_ERR_BUFFER_TOO_SMALL);
  CHECK(p2pswarm_testnet_bootstrap(tn, boot, sizeof boot));

  p2pswarm_options *oa = local_options(boot, 0x21);
  p2pswarm_swarm *s = NULL;
  CHECK(p2pswarm_swarm_new(ctx, oa, &s));
  p2pswarm_options_free(oa);
  uint8_t topic[33];
  memset(topic, 'x', sizeof topic);
  p2pswarm_discovery *d = NULL;
  EXPECT(p2pswarm_swarm_join(s, topic, 31, P2PSWARM_JOIN_SERVER, &d), P2PSWARM_ERR_INVALID_ARGUMENT);
  EXPECT(p2pswarm_swarm_join(s, topic, 33, P2PSWARM_JOIN_SERVER, &d), P2PSWARM_ERR_INVALID_ARGUMENT);
  EXPECT(p2pswarm_swarm_join(s, topic, 0, P2PSWARM_JOIN_SERVER, &d), P2PSWARM_ERR_INVALID_ARGUMENT);
  EXPECT(p2pswarm_swarm_join(s, NULL, 32, P2PSWARM_JOIN_SERVER, &d), P2PSWARM_ERR_NULL_ARGUMENT);
  EXPECT(p2pswarm_swarm_join(s, topic, 32, 4, &d), P2PSWARM_ERR_INVALID_ARGUMENT);
  ASSERT(d == NULL);
  EXPECT(p2pswarm_swarm_leave(s, topic, 16), P2PSWARM_ERR_INVALID_ARGUMENT);
  EXPECT(p2pswarm_swarm_join_peer(s, topic, 31), P2PSWARM_ERR_INVALID_ARGUMENT);
  EXPECT(p2pswarm_swarm_leave_peer(s, topic, 64), P2PSWARM_ERR_INVALID_ARGUMENT);
  EXPECT(p2pswarm_swarm_ban(s, topic, 1, true), P2PSWARM_ERR_INVALID_ARGUMENT);
  EXPECT(p2pswarm_swarm_connections(s, NULL), P2PSWARM_ERR_NULL_ARGUMENT);
  EXPECT(p2pswarm_swarm_public_key(s, NULL), P2PSWARM_ERR_NULL_ARGUMENT);
  p2pswarm_peer_info *info = NULL;
  EXPECT(p2pswarm_swarm_peer(s, topic, 32, &info), P2PSWARM_ERR_NOT_FOUND);
  uint32_t sflags = 0;
  EXPECT(p2pswarm_swarm_status(s, topic, 32, &sflags, NULL), P2PSWARM_ERR_NOT_FOUND);
  EXPECT(p2pswarm_swarm_status(s, topic, 32, NULL, NULL), P2PSWARM_ERR_NULL_ARGUMENT);
  EXPECT(p2pswarm_swarm_status(NULL, topic, 32, &sflags, NULL), P2PSWARM_ERR_NULL_ARGUMENT);
  ASSERT(info == NULL);
  /* a peer known by join_peer (nobody listens on it: attempts fail in the background) */
  uint8_t pk[32], seed[32];
  memset(seed, 0x99, 32);
  CHECK(p2pswarm_public_key_from_seed(seed, 32, pk));
  CHECK(p2pswarm_swarm_join_peer(s, pk, 32));
  CHECK(p2pswarm_swarm_peers_len(s, &n));
  ASSERT(n == 1);
  EXPECT(p2pswarm_swarm_peers(s, NULL, 0, &n), P2PSWARM_ERR_BUFFER_TOO_SMALL);
  uint8_t keys[64];
  EXPECT(p2pswarm_swarm_peers(s, keys, 1, NULL), P2PSWARM_ERR_NULL_ARGUMENT);
  CHECK(p2pswarm_swarm_peers(s, keys, 2, &n));
  ASSERT(n == 1 && memcmp(keys, pk, 32) == 0);
  CHECK(p2pswarm_swarm_leave_peer(s, pk, 32));
  CHECK(p2pswarm_swarm_join(s, topic, 32, 0, &d)); /* neither role is allowed, as in JS */
  p2pswarm_discovery_free(d);

  p2pswarm_dht *dht = NULL;
  CHECK(p2pswarm_swarm_dht(s, &dht));
  p2pswarm_buffer *buf = NULL;
  EXPECT(p2pswarm_dht_lookup(dht, topic, 5, &buf), P2PSWARM_ERR_INVALID_ARGUMENT);
  EXPECT(p2pswarm_dht_lookup(dht, topic, 32, NULL), P2PSWARM_ERR_NULL_ARGUMENT);
  EXPECT(p2pswarm_dht_immutable_get(dht, topic, 31, &buf), P2PSWARM_ERR_INVALID_ARGUMENT);
  EXPECT(p2pswarm_dht_immutable_put(dht, NULL, 3, b32), P2PSWARM_ERR_NULL_ARGUMENT);
  EXPECT(p2pswarm_dht_mutable_get(dht, pk, 32, 0, &buf, NULL), P2PSWARM_ERR_NULL_ARGUMENT);
  EXPECT(p2pswarm_dht_mutable_put(dht, seed, 16, b32, 1, 1, NULL), P2PSWARM_ERR_INVALID_ARGUMENT);
  EXPECT(p2pswarm_dht_announce(dht, topic, 32, NULL, 0, NULL), P2PSWARM_ERR_NULL_ARGUMENT);
  EXPECT(p2pswarm_dht_connect(dht, pk, 31, NULL), P2PSWARM_ERR_INVALID_ARGUMENT);
  p2pswarm_server *srv = NULL;
  EXPECT(p2pswarm_dht_listen(dht, seed, 8, &srv), P2PSWARM_ERR_INVALID_ARGUMENT);
  ASSERT(buf == NULL && srv == NULL);

  /* shutdown: idempotent, then everything reports CLOSED */
  CHECK(p2pswarm_context_shutdown(ctx));
  CHECK(p2pswarm_context_shutdown(ctx));
  ASSERT(poll(&p, 1, 1000) == 1); /* the fd reports the close */
  for (;;) {
    p2pswarm_result r = p2pswarm_next_event(ctx, 100, &ev);
    if (r == P2PSWARM_ERR_CLOSED) break;
    CHECK(r);
    p2pswarm_event_free(ev);
  }
  EXPECT(p2pswarm_swarm_flush(s, &f), P2PSWARM_ERR_CLOSED);
  EXPECT(p2pswarm_swarm_join(s, topic, 32, 3, &d), P2PSWARM_ERR_CLOSED);
  EXPECT(p2pswarm_swarm_destroy(s), P2PSWARM_ERR_CLOSED);
  EXPECT(p2pswarm_dht_lookup(dht, topic, 32, &buf), P2PSWARM_ERR_CLOSED);
  EXPECT(p2pswarm_testnet_new(ctx, 2, &tn), P2PSWARM_ERR_CLOSED);
  p2pswarm_swarm *s2 = NULL;
  EXPECT(p2pswarm_swarm_new(ctx, NULL, &s2), P2PSWARM_ERR_CLOSED);
  CHECK(p2pswarm_swarm_connections(s, &n)); /* plain reads still work */
  p2pswarm_dht_free(dht);
  p2pswarm_swarm_free(s);
  p2pswarm_testnet_free(tn);
  p2pswarm_context_free(ctx);
  printf("test_misuse: ok\n");
  return 0;
}
