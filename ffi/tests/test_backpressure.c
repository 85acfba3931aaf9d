/* Flow control end to end, with two contexts (two runtime threads): B writes 1 MiB chunks to A
 * while A pulls no events. A's queue stops reading at 4 MiB, the transport's receive window
 * then holds B back, B's write queue fills and writes fail with P2PSWARM_ERR_WOULD_BLOCK, and
 * no DRAIN comes while A is stalled. Then A pulls: B gets DRAIN, and A receives every accepted
 * byte, in order. */
#include "common.h"

#define CHUNK (1 << 20)

static uint8_t chunk[CHUNK];

static void fill(uint64_t offset) {
  for (size_t i = 0; i < CHUNK; i++) chunk[i] = (uint8_t)((offset + i) % 251);
}

/* Waits for a DRAIN event of `id` on ctx (other events are freed). */
static int wait_drain(p2pswarm_context *ctx, uint64_t id, int timeout_ms) {
  long long end = now_ms() + timeout_ms;
  while (now_ms() < end) {
    p2pswarm_event *ev = NULL;
    p2pswarm_result r = p2pswarm_next_event(ctx, 100, &ev);
    if (r == P2PSWARM_ERR_TIMEOUT) continue;
    CHECK(r);
    int drain = p2pswarm_event_get_kind(ev) == P2PSWARM_EVENT_DRAIN &&
                p2pswarm_event_connection_id(ev) == id;
    p2pswarm_event_free(ev);
    if (drain) return 1;
  }
  return 0;
}

int main(void) {
  p2pswarm_context *ca = NULL, *cb = NULL;
  CHECK(p2pswarm_context_new(&ca));
  CHECK(p2pswarm_context_new(&cb));
  p2pswarm_testnet *tn = NULL;
  CHECK(p2pswarm_testnet_new(ca, 4, &tn));
  char boot[32];
  CHECK(p2pswarm_testnet_bootstrap(tn, boot, sizeof boot));
  p2pswarm_options *oa = local_options(boot, 0x41), *ob = local_options(boot, 0x42);
  p2pswarm_dht *a = NULL, *b = NULL;
  CHECK(p2pswarm_dht_new(ca, oa, &a));
  CHECK(p2pswarm_dht_new(cb, ob, &b));
  p2pswarm_options_free(oa);
  p2pswarm_options_free(ob);
  p2pswarm_server *srv = NULL;
  CHECK(p2pswarm_dht_listen(a, NULL, 0, &srv));
  uint8_t pka[32];
  CHECK(p2pswarm_dht_public_key(a, pka));
  p2pswarm_connection *w = NULL;
  CHECK(p2pswarm_dht_connect(b, pka, 32, &w));
  uint64_t wid = p2pswarm_connection_id(w);

  /* A takes its connection, then pulls nothing while B writes */
  p2pswarm_connection *r = NULL;
  while (!r) {
    p2pswarm_event *ev = NULL;
    CHECK(p2pswarm_next_event(ca, 10000, &ev));
    if (p2pswarm_event_get_kind(ev) == P2PSWARM_EVENT_CONNECTION)
      CHECK(p2pswarm_event_take_connection(ev, &r));
    p2pswarm_event_free(ev);
  }
  uint64_t rid = p2pswarm_connection_id(r);

  uint64_t sent = 0;
  int blocked = 0, stalled = 0;
  while (sent < 256ull * CHUNK) {
    fill(sent);
    p2pswarm_result res = p2pswarm_connection_write(w, chunk, CHUNK);
    if (res == P2PSWARM_OK) {
      sent += CHUNK;
      continue;
    }
    EXPECT(res, P2PSWARM_ERR_WOULD_BLOCK);
    size_t queued = 0;
    CHECK(p2pswarm_connection_queued_bytes(w, &queued));
    ASSERT(queued > 0 && queued + CHUNK > 8u * CHUNK);
    blocked++;
    if (!wait_drain(cb, wid, 2000)) { /* no drain: the receiver holds us back */
      stalled = 1;
      break;
    }
  }
  printf("B: %llu MiB accepted, %d refusals, stalled: %d\n", (unsigned long long)(sent >> 20),
         blocked, stalled);
  ASSERT(blocked > 0 && stalled);
  ASSERT(sent < 128ull * CHUNK);

  /* A pulls everything; B's queue drains */
  uint64_t got = 0;
  int drained = 0;
  long long end = now_ms() + 120000;
  while ((got < sent || !drained) && now_ms() < end) {
    p2pswarm_event *ev = NULL;
    p2pswarm_result res = p2pswarm_next_event(ca, 50, &ev);
    if (res == P2PSWARM_OK) {
      if (p2pswarm_event_get_kind(ev) == P2PSWARM_EVENT_DATA &&
          p2pswarm_event_connection_id(ev) == rid) {
        const uint8_t *d;
        size_t n;
        CHECK(p2pswarm_event_data(ev, &d, &n));
        for (size_t i = 0; i < n; i++) ASSERT(d[i] == (uint8_t)((got + i) % 251));
        got += n;
      }
      p2pswarm_event_free(ev);
    } else {
      EXPECT(res, P2PSWARM_ERR_TIMEOUT);
    }
    if (!drained && p2pswarm_next_event(cb, 0, &ev) == P2PSWARM_OK) {
      drained = p2pswarm_event_get_kind(ev) == P2PSWARM_EVENT_DRAIN;
      p2pswarm_event_free(ev);
    }
  }
  printf("A: %llu MiB received in order; B drained: %d\n", (unsigned long long)(got >> 20),
         drained);
  ASSERT(got == sent && drained);
  size_t queued = 1;
  CHECK(p2pswarm_connection_queued_bytes(w, &queued));
  ASSERT(queued == 0);
  fill(sent);
  CHECK(p2pswarm_connection_write(w, chunk, 16)); /* accepted again */

  p2pswarm_connection_free(w);
  p2pswarm_connection_free(r);
  p2pswarm_server_free(srv);
  p2pswarm_dht_free(a);
  p2pswarm_dht_free(b);
  p2pswarm_testnet_free(tn);
  p2pswarm_context_free(cb);
  p2pswarm_context_free(ca);
  printf("test_backpressure: ok\n");
  return 0;
}
