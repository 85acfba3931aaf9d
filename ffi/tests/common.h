/* Helpers shared by the C tests of libp2pswarm. */
#ifndef P2PSWARM_TEST_COMMON_H
#define P2PSWARM_TEST_COMMON_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "p2pswarm.h"

static inline void fail_at(const char *file, int line, const char *what, int code) {
  char detail[256];
  p2pswarm_last_error_detail(detail, sizeof detail);
  fprintf(stderr, "FAIL %s:%d: %s -> %d (%s; detail: %s)\n", file, line, what, code,
          p2pswarm_error_message(code), detail);
  exit(1);
}

/* The call must succeed. */
#define CHECK(expr)                                                            \
  do {                                                                         \
    p2pswarm_result r_ = (expr);                                               \
    if (r_ != P2PSWARM_OK) fail_at(__FILE__, __LINE__, #expr, (int)r_);        \
  } while (0)

/* The call must return `code`. */
#define EXPECT(expr, code)                                                     \
  do {                                                                         \
    p2pswarm_result r_ = (expr);                                               \
    if (r_ != (code)) {                                                        \
      fprintf(stderr, "expected %s (%d)\n", #code, (int)(code));               \
      fail_at(__FILE__, __LINE__, #expr, (int)r_);                             \
    }                                                                          \
  } while (0)

#define ASSERT(cond)                                                           \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "FAIL %s:%d: assertion %s\n", __FILE__, __LINE__, #cond);\
      exit(1);                                                                 \
    }                                                                          \
  } while (0)

static inline long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One connection seen through events. */
typedef struct {
  uint64_t source; /* swarm or server id */
  uint64_t id;
  p2pswarm_connection *conn;
  uint8_t remote[32];
  char data[8192];
  size_t len;
  size_t total; /* all bytes received */
  uint8_t last; /* the last byte received */
  int ended, closed;
  int has_info;
  size_t topics;
  uint8_t topic0[32];
} conn_rec;

typedef struct {
  conn_rec c[32];
  int n;
  int updates;
  int bans;
  uint8_t banned[32]; /* key of the last BAN event */
  int others;
} net_state;

static inline conn_rec *find_conn(net_state *s, uint64_t id) {
  for (int i = 0; i < s->n; i++)
    if (s->c[i].id == id) return &s->c[i];
  return NULL;
}

/* Counts the open connections of `source` in the state. */
static inline int conns_of(net_state *s, uint64_t source) {
  int k = 0;
  for (int i = 0; i < s->n; i++)
    if (s->c[i].source == source && !s->c[i].closed) k++;
  return k;
}

static inline conn_rec *first_conn_of(net_state *s, uint64_t source) {
  for (int i = 0; i < s->n; i++)
    if (s->c[i].source == source && !s->c[i].closed) return &s->c[i];
  return NULL;
}

/* Applies one event to the state (takes connections). Does not free the event. */
static inline void apply_event(net_state *s, p2pswarm_event *ev) {
  switch (p2pswarm_event_get_kind(ev)) {
  case P2PSWARM_EVENT_CONNECTION: {
    ASSERT(s->n < 32);
    conn_rec *c = &s->c[s->n++];
    memset(c, 0, sizeof *c);
    c->source = p2pswarm_event_source(ev);
    c->id = p2pswarm_event_connection_id(ev);
    CHECK(p2pswarm_event_take_connection(ev, &c->conn));
    ASSERT(p2pswarm_connection_id(c->conn) == c->id);
    CHECK(p2pswarm_event_public_key(ev, c->remote));
    p2pswarm_peer_info *info = NULL;
    if (p2pswarm_event_peer_info(ev, &info) == P2PSWARM_OK) {
      c->has_info = 1;
      c->topics = p2pswarm_peer_info_topics_len(info);
      if (c->topics > 0) CHECK(p2pswarm_peer_info_topic(info, 0, c->topic0));
      p2pswarm_peer_info_free(info);
    }
    break;
  }
  case P2PSWARM_EVENT_DATA: {
    conn_rec *c = find_conn(s, p2pswarm_event_connection_id(ev));
    const uint8_t *d;
    size_t n;
    CHECK(p2pswarm_event_data(ev, &d, &n));
    if (c && n > 0) {
      c->total += n;
      c->last = d[n - 1];
    }
    if (c && c->len + n < sizeof c->data) {
      memcpy(c->data + c->len, d, n);
      c->len += n;
      c->data[c->len] = 0;
    }
    break;
  }
  case P2PSWARM_EVENT_END: {
    conn_rec *c = find_conn(s, p2pswarm_event_connection_id(ev));
    if (c) c->ended = 1;
    break;
  }
  case P2PSWARM_EVENT_CLOSE: {
    conn_rec *c = find_conn(s, p2pswarm_event_connection_id(ev));
    if (c) c->closed = 1;
    break;
  }
  case P2PSWARM_EVENT_UPDATE:
    s->updates++;
    break;
  case P2PSWARM_EVENT_BAN: {
    s->bans++;
    CHECK(p2pswarm_event_public_key(ev, s->banned));
    p2pswarm_peer_info *info = NULL;
    CHECK(p2pswarm_event_peer_info(ev, &info));
    ASSERT(p2pswarm_peer_info_banned(info));
    p2pswarm_peer_info_free(info);
    break;
  }
  default:
    s->others++;
    break;
  }
}

typedef int (*state_pred)(net_state *s, void *arg);

/* Pulls events (blocking pull with timeout) until `pred` holds; 0 on timeout. */
static inline int pump_until(p2pswarm_context *ctx, net_state *s, state_pred pred, void *arg,
                      int timeout_ms) {
  long long end = now_ms() + timeout_ms;
  while (!pred(s, arg)) {
    long long left = end - now_ms();
    if (left <= 0) return 0;
    p2pswarm_event *ev = NULL;
    p2pswarm_result r = p2pswarm_next_event(ctx, (int32_t)(left > 200 ? 200 : left), &ev);
    if (r == P2PSWARM_ERR_TIMEOUT) continue;
    if (r != P2PSWARM_OK) fail_at(__FILE__, __LINE__, "p2pswarm_next_event", (int)r);
    apply_event(s, ev);
    p2pswarm_event_free(ev);
  }
  return 1;
}

/* The same, but waits on the readiness fd with poll() and drains with timeout 0. */
static inline int pump_fd_until(p2pswarm_context *ctx, net_state *s, state_pred pred, void *arg,
                         int timeout_ms) {
  int fd = -1;
  CHECK(p2pswarm_event_fd(ctx, &fd));
  long long end = now_ms() + timeout_ms;
  while (!pred(s, arg)) {
    long long left = end - now_ms();
    if (left <= 0) return 0;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int pr = poll(&p, 1, (int)(left > 200 ? 200 : left));
    ASSERT(pr >= 0);
    if (pr == 0) continue;
    for (;;) {
      p2pswarm_event *ev = NULL;
      p2pswarm_result r = p2pswarm_next_event(ctx, 0, &ev);
      if (r == P2PSWARM_ERR_TIMEOUT) break;
      if (r != P2PSWARM_OK) fail_at(__FILE__, __LINE__, "p2pswarm_next_event", (int)r);
      apply_event(s, ev);
      p2pswarm_event_free(ev);
    }
  }
  return 1;
}

static inline void free_state(net_state *s) {
  for (int i = 0; i < s->n; i++) p2pswarm_connection_free(s->c[i].conn);
  s->n = 0;
}

/* Options for a node on a local testnet. */
static inline p2pswarm_options *local_options(const char *bootstrap, uint8_t seed_byte) {
  p2pswarm_options *o = NULL;
  CHECK(p2pswarm_options_new(&o));
  CHECK(p2pswarm_options_add_bootstrap(o, bootstrap));
  CHECK(p2pswarm_options_set_host(o, "127.0.0.1"));
  CHECK(p2pswarm_options_set_bootstrap_timeout_ms(o, 20000));
  uint8_t seed[32];
  memset(seed, seed_byte, sizeof seed);
  CHECK(p2pswarm_options_set_seed(o, seed, sizeof seed));
  return o;
}

#endif
