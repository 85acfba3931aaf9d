/* A C swarm and a JS hyperswarm 4.17 peer (tests/interop/js/hyperswarm-peer.js) on a local
 * testnet started by the C side: C server <-> JS client, then JS server <-> C client; each
 * way, one connection on each side, and messages both ways. Meant to run inside a fresh
 * network namespace (tests/interop/netns.sh), so only loopback exists.
 *
 *   test_interop_js JS_DIR      (JS_DIR holds hyperswarm-peer.js and node_modules)
 */
#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

typedef struct {
  pid_t pid;
  int in, out; /* child's stdin (we write), stdout (we read) */
  char buf[65536];
  size_t len;
} js_peer;

static void hex(const uint8_t *b, size_t n, char *out) {
  for (size_t i = 0; i < n; i++) sprintf(out + 2 * i, "%02x", b[i]);
}

static void js_spawn(js_peer *p, const char *dir, const char *boot, const char *topic_hex,
                     const char *seed_hex, const char *role) {
  int in[2], out[2];
  ASSERT(pipe(in) == 0 && pipe(out) == 0);
  p->pid = fork();
  ASSERT(p->pid >= 0);
  if (p->pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    close(in[0]), close(in[1]), close(out[0]), close(out[1]);
    if (chdir(dir) != 0) _exit(126);
    execlp("node", "node", "hyperswarm-peer.js", "--bootstrap", boot, "--topic", topic_hex,
           "--seed", seed_hex, role, (char *)NULL);
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  p->in = in[1];
  p->out = out[0];
  p->len = 0;
}

/* Reads lines until one starts with `prefix` (copied to `line`); 0 on timeout or EOF.
 * Meanwhile pumps the C side's events. */
static int js_until(js_peer *p, const char *prefix, char *line, size_t cap,
                    p2pswarm_context *ctx, net_state *st, int timeout_ms) {
  long long end = now_ms() + timeout_ms;
  for (;;) {
    char *nl;
    while ((nl = memchr(p->buf, '\n', p->len)) != NULL) {
      size_t l = (size_t)(nl - p->buf);
      *nl = 0;
      int match = strncmp(p->buf, prefix, strlen(prefix)) == 0;
      fprintf(stderr, "js> %s\n", p->buf);
      if (match) snprintf(line, cap, "%s", p->buf);
      memmove(p->buf, nl + 1, p->len - l - 1);
      p->len -= l + 1;
      if (match) return 1;
    }
    if (now_ms() > end) return 0;
    /* pump C events briefly, then wait for JS output */
    p2pswarm_event *ev = NULL;
    while (p2pswarm_next_event(ctx, 0, &ev) == P2PSWARM_OK) {
      apply_event(st, ev);
      p2pswarm_event_free(ev);
    }
    struct pollfd pf = {.fd = p->out, .events = POLLIN};
    if (poll(&pf, 1, 50) > 0) {
      ssize_t n = read(p->out, p->buf + p->len, sizeof p->buf - p->len - 1);
      if (n <= 0) return 0;
      p->len += (size_t)n;
    }
  }
}

static void js_send(js_peer *p, const char *cmd) {
  size_t n = strlen(cmd);
  ASSERT(write(p->in, cmd, n) == (ssize_t)n && write(p->in, "\n", 1) == 1);
}

static void js_finish(js_peer *p, p2pswarm_context *ctx, net_state *st) {
  char line[256];
  js_send(p, "exit");
  ASSERT(js_until(p, "bye", line, sizeof line, ctx, st, 30000));
  close(p->in);
  close(p->out);
  int status = 0;
  ASSERT(waitpid(p->pid, &status, 0) == p->pid);
  ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

typedef struct {
  uint64_t source;
  const char *text;
} want;

static int conn_with_text(net_state *s, void *arg) {
  want *w = arg;
  for (int i = 0; i < s->n; i++)
    if (s->c[i].source == w->source && strstr(s->c[i].data, w->text)) return 1;
  return 0;
}

static void one_way(p2pswarm_context *ctx, const char *jsdir, const char *boot, int c_is_server,
                    uint8_t c_seed_byte, uint8_t js_seed_byte) {
  net_state st;
  memset(&st, 0, sizeof st);
  uint8_t topic[32], js_seed[32], js_pk[32];
  memset(topic, c_is_server ? 0x51 : 0x52, 32);
  memset(js_seed, js_seed_byte, 32);
  CHECK(p2pswarm_public_key_from_seed(js_seed, 32, js_pk));
  char topic_hex[65], seed_hex[65], js_pk_hex[65], c_pk_hex[65];
  hex(topic, 32, topic_hex);
  hex(js_seed, 32, seed_hex);
  hex(js_pk, 32, js_pk_hex);

  p2pswarm_options *o = local_options(boot, c_seed_byte);
  p2pswarm_swarm *s = NULL;
  CHECK(p2pswarm_swarm_new(ctx, o, &s));
  p2pswarm_options_free(o);
  uint8_t c_pk[32];
  CHECK(p2pswarm_swarm_public_key(s, c_pk));
  hex(c_pk, 32, c_pk_hex);
  uint64_t id = p2pswarm_swarm_id(s);
  js_peer js;
  char line[512];
  if (c_is_server) {
    p2pswarm_discovery *d = NULL;
    CHECK(p2pswarm_swarm_join(s, topic, 32, P2PSWARM_JOIN_SERVER, &d));
    CHECK(p2pswarm_discovery_flushed(d, NULL));
    p2pswarm_discovery_free(d);
    js_spawn(&js, jsdir, boot, topic_hex, seed_hex, "--client");
    ASSERT(js_until(&js, "joined", line, sizeof line, ctx, &st, 60000));
  } else {
    js_spawn(&js, jsdir, boot, topic_hex, seed_hex, "--server");
    ASSERT(js_until(&js, "joined", line, sizeof line, ctx, &st, 60000));
    CHECK(p2pswarm_swarm_join(s, topic, 32, P2PSWARM_JOIN_CLIENT, NULL));
    CHECK(p2pswarm_swarm_flush(s, NULL));
  }
  /* the JS side greets every connection with "hello from js" */
  want w = {id, "hello from js"};
  ASSERT(pump_until(ctx, &st, conn_with_text, &w, 30000));
  conn_rec *c = first_conn_of(&st, id);
  ASSERT(memcmp(c->remote, js_pk, 32) == 0);
  const char *msg = "hello from c";
  CHECK(p2pswarm_connection_write(c->conn, (const uint8_t *)msg, strlen(msg)));
  char expect[256];
  snprintf(expect, sizeof expect, "data %s hello from c", c_pk_hex);
  ASSERT(js_until(&js, "data ", line, sizeof line, ctx, &st, 30000));
  ASSERT(strcmp(line, expect) == 0);
  js_send(&js, "count");
  ASSERT(js_until(&js, "connections ", line, sizeof line, ctx, &st, 30000));
  ASSERT(strcmp(line, "connections 1") == 0);
  size_t n = 0;
  CHECK(p2pswarm_swarm_connections(s, &n));
  ASSERT(n == 1);
  printf("C %s <-> JS %s: one connection each, messages both ways\n",
         c_is_server ? "server" : "client", c_is_server ? "client" : "server");
  js_finish(&js, ctx, &st);
  CHECK(p2pswarm_swarm_destroy(s));
  p2pswarm_swarm_free(s);
  free_state(&st);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s JS_DIR\n", argv[0]);
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  p2pswarm_context *ctx = NULL;
  CHECK(p2pswarm_context_new(&ctx));
  p2pswarm_testnet *tn = NULL;
  CHECK(p2pswarm_testnet_new(ctx, 8, &tn));
  char boot[32];
  CHECK(p2pswarm_testnet_bootstrap(tn, boot, sizeof boot));
  one_way(ctx, argv[1], boot, 1, 0x61, 0x62);
  one_way(ctx, argv[1], boot, 0, 0x63, 0x64);
  p2pswarm_testnet_free(tn);
  p2pswarm_context_free(ctx);
  printf("test_interop_js: ok\n");
  return 0;
}
