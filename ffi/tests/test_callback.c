/* Events through the callback (on the runtime thread) and the firewall callback: a server swarm
 * A whose firewall rejects C's key by returning an error (-7, reported as
 * P2PSWARM_ERR_CALLBACK) and accepts B; A echoes B's data from the callback with a
 * non-blocking write; blocking calls inside the callback fail with WOULD_DEADLOCK; a callback
 * that returns an error declines the event, which then reaches p2pswarm_next_event. */
#include <pthread.h>
#include <unistd.h>

#include "common.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static net_state st;
static p2pswarm_swarm *swarm_a;
static p2pswarm_context *ctx;
static uint64_t id_a;
static uint8_t pk_c[32];
static int firewall_calls, firewall_rejects;
static int deadlock_checked, decline_next_data, callback_thread_ok;
static pthread_t main_thread;

static int firewall(void *userdata, const uint8_t *public_key) {
  ASSERT(userdata == (void *)&firewall_calls);
  pthread_mutex_lock(&mu);
  firewall_calls++;
  int reject = memcmp(public_key, pk_c, 32) == 0;
  if (reject) firewall_rejects++;
  pthread_mutex_unlock(&mu);
  return reject ? -7 : 0;
}

static int on_event(void *userdata, p2pswarm_event *ev) {
  ASSERT(userdata == (void *)&st);
  pthread_mutex_lock(&mu);
  if (!pthread_equal(pthread_self(), main_thread)) callback_thread_ok = 1;
  if (!deadlock_checked) {
    bool f;
    p2pswarm_event *other = NULL;
    EXPECT(p2pswarm_swarm_flush(swarm_a, &f), P2PSWARM_ERR_WOULD_DEADLOCK);
    EXPECT(p2pswarm_next_event(ctx, 100, &other), P2PSWARM_ERR_WOULD_DEADLOCK);
    size_t n;
    CHECK(p2pswarm_swarm_connections(swarm_a, &n)); /* non-blocking calls are fine */
    deadlock_checked = 1;
  }
  p2pswarm_event_kind kind = p2pswarm_event_get_kind(ev);
  if (kind == P2PSWARM_EVENT_DATA && decline_next_data) {
    decline_next_data = 0;
    pthread_mutex_unlock(&mu);
    return -3; /* declined: goes to the queue, the callback is removed */
  }
  apply_event(&st, ev);
  if (kind == P2PSWARM_EVENT_DATA) {
    conn_rec *c = find_conn(&st, p2pswarm_event_connection_id(ev));
    if (c && c->source == id_a) { /* echo, from the callback */
      const uint8_t *d;
      size_t n;
      CHECK(p2pswarm_event_data(ev, &d, &n));
      CHECK(p2pswarm_connection_write(c->conn, d, n));
    }
  }
  pthread_mutex_unlock(&mu);
  return 0;
}

/* Shuts its context down from the runtime thread (allowed: it only signals the thread). */
static p2pswarm_context *ctx2;
static int shutdown_calls;
static int shutdown_cb(void *userdata, p2pswarm_event *ev) {
  (void)userdata;
  (void)ev;
  pthread_mutex_lock(&mu);
  shutdown_calls++;
  pthread_mutex_unlock(&mu);
  CHECK(p2pswarm_context_shutdown(ctx2));
  return 0;
}

static int wait_for(int (*pred)(void), int timeout_ms) {
  long long end = now_ms() + timeout_ms;
  for (;;) {
    pthread_mutex_lock(&mu);
    int ok = pred();
    pthread_mutex_unlock(&mu);
    if (ok) return 1;
    if (now_ms() > end) return 0;
    usleep(10000);
  }
}

static uint64_t id_b;
static int b_connected(void) { return conns_of(&st, id_b) >= 1 && conns_of(&st, id_a) >= 1; }
static int echo_back(void) {
  conn_rec *c = first_conn_of(&st, id_b);
  return c && strstr(c->data, "echo me") != NULL;
}
static int c_rejected(void) { return firewall_rejects >= 1 && st.bans >= 1; }

int main(void) {
  main_thread = pthread_self();
  CHECK(p2pswarm_context_new(&ctx));
  CHECK(p2pswarm_set_event_callback(ctx, on_event, &st));
  p2pswarm_testnet *tn = NULL;
  CHECK(p2pswarm_testnet_new(ctx, 5, &tn));
  char boot[32];
  CHECK(p2pswarm_testnet_bootstrap(tn, boot, sizeof boot));
  uint8_t seed[32];
  memset(seed, 0x0c, 32);
  CHECK(p2pswarm_public_key_from_seed(seed, 32, pk_c));

  p2pswarm_options *oa = local_options(boot, 0x1a);
  CHECK(p2pswarm_options_set_firewall(oa, firewall, &firewall_calls));
  p2pswarm_options *ob = local_options(boot, 0x1b), *oc = local_options(boot, 0x0c);
  p2pswarm_swarm *b = NULL, *c = NULL;
  CHECK(p2pswarm_swarm_new(ctx, oa, &swarm_a));
  CHECK(p2pswarm_swarm_new(ctx, ob, &b));
  CHECK(p2pswarm_swarm_new(ctx, oc, &c));
  p2pswarm_options_free(oa);
  p2pswarm_options_free(ob);
  p2pswarm_options_free(oc);
  pthread_mutex_lock(&mu);
  id_a = p2pswarm_swarm_id(swarm_a);
  id_b = p2pswarm_swarm_id(b);
  pthread_mutex_unlock(&mu);

  uint8_t topic[32];
  memset(topic, 'f', 32);
  CHECK(p2pswarm_swarm_join(swarm_a, topic, 32, P2PSWARM_JOIN_SERVER, NULL));
  CHECK(p2pswarm_swarm_flush(swarm_a, NULL));
  CHECK(p2pswarm_swarm_join(b, topic, 32, P2PSWARM_JOIN_CLIENT, NULL));
  CHECK(p2pswarm_swarm_join(c, topic, 32, P2PSWARM_JOIN_CLIENT, NULL));
  CHECK(p2pswarm_swarm_flush(b, NULL));
  CHECK(p2pswarm_swarm_flush(c, NULL));
  ASSERT(wait_for(b_connected, 30000));
  ASSERT(wait_for(c_rejected, 30000));
  pthread_mutex_lock(&mu);
  ASSERT(callback_thread_ok && deadlock_checked);
  printf("firewall: %d calls, %d rejects, %d BAN events\n", firewall_calls, firewall_rejects, st.bans);
  ASSERT(memcmp(st.banned, pk_c, 32) == 0);
  pthread_mutex_unlock(&mu);
  size_t n = 9;
  CHECK(p2pswarm_swarm_connections(c, &n));
  ASSERT(n == 0);
  p2pswarm_peer_info *info = NULL;
  CHECK(p2pswarm_swarm_peer(swarm_a, pk_c, 32, &info));
  ASSERT(p2pswarm_peer_info_banned(info)); /* the firewall bans */
  p2pswarm_peer_info_free(info);
  int value = 0;
  EXPECT(p2pswarm_context_callback_error(ctx, &value), P2PSWARM_ERR_CALLBACK);
  ASSERT(value == -7);
  CHECK(p2pswarm_context_callback_error(ctx, &value)); /* cleared */
  ASSERT(value == 0);

  /* echo through the callback */
  pthread_mutex_lock(&mu);
  conn_rec *cb = first_conn_of(&st, id_b);
  p2pswarm_connection *conn_b = cb->conn;
  pthread_mutex_unlock(&mu);
  CHECK(p2pswarm_connection_write(conn_b, (const uint8_t *)"echo me", 7));
  ASSERT(wait_for(echo_back, 15000));
  printf("echo through the callback ok\n");

  /* a declining callback: the event goes to the queue, the callback is removed */
  pthread_mutex_lock(&mu);
  decline_next_data = 1;
  pthread_mutex_unlock(&mu);
  CHECK(p2pswarm_connection_write(conn_b, (const uint8_t *)"declined", 8));
  p2pswarm_event *ev = NULL;
  CHECK(p2pswarm_next_event(ctx, 15000, &ev));
  while (p2pswarm_event_get_kind(ev) != P2PSWARM_EVENT_DATA) {
    p2pswarm_event_free(ev);
    CHECK(p2pswarm_next_event(ctx, 15000, &ev));
  }
  const uint8_t *d;
  size_t len;
  CHECK(p2pswarm_event_data(ev, &d, &len));
  ASSERT(len == 8 && memcmp(d, "declined", 8) == 0);
  p2pswarm_event_free(ev);
  EXPECT(p2pswarm_context_callback_error(ctx, &value), P2PSWARM_ERR_CALLBACK);
  ASSERT(value == -3);
  printf("declined event reached the queue\n");

  /* remove the callback (no-op now) and set it again, then remove it */
  CHECK(p2pswarm_set_event_callback(ctx, NULL, NULL));
  CHECK(p2pswarm_set_event_callback(ctx, on_event, &st));
  CHECK(p2pswarm_set_event_callback(ctx, NULL, NULL));

  CHECK(p2pswarm_swarm_destroy(swarm_a));
  CHECK(p2pswarm_swarm_destroy(b));
  CHECK(p2pswarm_swarm_destroy(c));
  p2pswarm_swarm_free(swarm_a);
  p2pswarm_swarm_free(b);
  p2pswarm_swarm_free(c);
  p2pswarm_testnet_free(tn);
  p2pswarm_context_shutdown(ctx);
  pthread_mutex_lock(&mu);
  free_state(&st);
  pthread_mutex_unlock(&mu);
  p2pswarm_context_free(ctx);

  /* a callback may shut its own context down */
  CHECK(p2pswarm_context_new(&ctx2));
  CHECK(p2pswarm_testnet_new(ctx2, 3, &tn));
  CHECK(p2pswarm_testnet_bootstrap(tn, boot, sizeof boot));
  p2pswarm_options *ox = local_options(boot, 0x2a), *oy = local_options(boot, 0x2b);
  p2pswarm_dht *x = NULL, *y = NULL;
  CHECK(p2pswarm_dht_new(ctx2, ox, &x));
  CHECK(p2pswarm_dht_new(ctx2, oy, &y));
  p2pswarm_options_free(ox);
  p2pswarm_options_free(oy);
  p2pswarm_server *srv = NULL;
  CHECK(p2pswarm_dht_listen(x, NULL, 0, &srv));
  CHECK(p2pswarm_set_event_callback(ctx2, shutdown_cb, NULL));
  uint8_t pkx[32];
  CHECK(p2pswarm_dht_public_key(x, pkx));
  p2pswarm_connection *cy = NULL;
  p2pswarm_result r = p2pswarm_dht_connect(y, pkx, 32, &cy); /* races with the shutdown */
  ASSERT(r == P2PSWARM_OK || r == P2PSWARM_ERR_CLOSED);
  p2pswarm_event *e2 = NULL;
  long long end = now_ms() + 20000;
  while ((r = p2pswarm_next_event(ctx2, 100, &e2)) != P2PSWARM_ERR_CLOSED && now_ms() < end)
    if (r == P2PSWARM_OK) p2pswarm_event_free(e2);
  ASSERT(r == P2PSWARM_ERR_CLOSED);
  pthread_mutex_lock(&mu);
  ASSERT(shutdown_calls == 1);
  pthread_mutex_unlock(&mu);
  EXPECT(p2pswarm_dht_lookup(y, pkx, 32, &(p2pswarm_buffer *){NULL}), P2PSWARM_ERR_CLOSED);
  printf("a callback shut its context down\n");
  p2pswarm_connection_free(cy);
  p2pswarm_server_free(srv);
  p2pswarm_dht_free(x);
  p2pswarm_dht_free(y);
  p2pswarm_testnet_free(tn);
  p2pswarm_context_free(ctx2); /* joins the (finished) runtime thread */
  printf("test_callback: ok\n");
  return 0;
}
