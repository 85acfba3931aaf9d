/* chat: join a topic and relay stdin lines to every connected peer, peer data to stdout.
 * Events (connections, closes) go to stderr. One poll() loop over stdin and the event fd.
 *
 *   chat --testnet 8 TOPIC                     start a local testnet too and print its address
 *   chat --bootstrap 127.0.0.1:PORT TOPIC      join through a given bootstrap node
 *   chat --public TOPIC                        join on the public HyperDHT network
 *
 * TOPIC is a string; the 32-byte topic is the string repeated to fill 32 bytes, as
 * Buffer.alloc(32).fill(TOPIC) in JS.
 */
#define _GNU_SOURCE
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <p2pswarm.h>

#define MAX_PEERS 64

static p2pswarm_connection *peers[MAX_PEERS];
static uint64_t peer_ids[MAX_PEERS];

static void die(const char *what, p2pswarm_result r) {
  char detail[256];
  p2pswarm_last_error_detail(detail, sizeof detail);
  fprintf(stderr, "chat: %s: %s (%s)\n", what, p2pswarm_error_message(r), detail);
  exit(1);
}

static void usage(FILE *f) {
  fprintf(f, "usage: chat [--testnet N | --bootstrap HOST:PORT ... | --public] [--seed-byte B] TOPIC\n");
}

static void hex(const uint8_t *b, size_t n, char *out) {
  for (size_t i = 0; i < n; i++) sprintf(out + 2 * i, "%02x", b[i]);
}

static void on_event(p2pswarm_event *ev) {
  uint8_t pk[32];
  char pkhex[65];
  switch (p2pswarm_event_get_kind(ev)) {
  case P2PSWARM_EVENT_CONNECTION:
    for (int i = 0; i < MAX_PEERS; i++) {
      if (peers[i] == NULL) {
        if (p2pswarm_event_take_connection(ev, &peers[i]) == P2PSWARM_OK) {
          peer_ids[i] = p2pswarm_connection_id(peers[i]);
          p2pswarm_connection_remote_public_key(peers[i], pk);
          hex(pk, 32, pkhex);
          fprintf(stderr, "* connected to %s\n", pkhex);
        }
        break;
      }
    }
    break;
  case P2PSWARM_EVENT_DATA: {
    const uint8_t *data;
    size_t len;
    if (p2pswarm_event_data(ev, &data, &len) == P2PSWARM_OK) {
      fwrite(data, 1, len, stdout);
      fflush(stdout);
    }
    break;
  }
  case P2PSWARM_EVENT_END: { /* the peer is done writing: end our side too */
    uint64_t id = p2pswarm_event_connection_id(ev);
    for (int i = 0; i < MAX_PEERS; i++)
      if (peers[i] && peer_ids[i] == id) p2pswarm_connection_end(peers[i]);
    break;
  }
  case P2PSWARM_EVENT_CLOSE: {
    uint64_t id = p2pswarm_event_connection_id(ev);
    for (int i = 0; i < MAX_PEERS; i++) {
      if (peers[i] && peer_ids[i] == id) {
        p2pswarm_connection_free(peers[i]);
        peers[i] = NULL;
        fprintf(stderr, "* connection closed\n");
      }
    }
    break;
  }
  default:
    break;
  }
}

int main(int argc, char **argv) {
  int testnet_nodes = 0, public_net = 0, seed_byte = -1;
  const char *topic_str = NULL;
  p2pswarm_options *opts = NULL;
  p2pswarm_result r;
  signal(SIGPIPE, SIG_IGN);
  if ((r = p2pswarm_options_new(&opts)) != P2PSWARM_OK) die("options", r);
  int have_bootstrap = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      usage(stdout);
      p2pswarm_options_free(opts);
      return 0;
    } else if (!strcmp(argv[i], "--testnet") && i + 1 < argc) {
      testnet_nodes = atoi(argv[++i]);
    } else if (!strcmp(argv[i], "--bootstrap") && i + 1 < argc) {
      if ((r = p2pswarm_options_add_bootstrap(opts, argv[++i])) != P2PSWARM_OK) die("--bootstrap", r);
      have_bootstrap = 1;
    } else if (!strcmp(argv[i], "--public")) {
      public_net = 1;
    } else if (!strcmp(argv[i], "--seed-byte") && i + 1 < argc) {
      seed_byte = atoi(argv[++i]) & 0xff;
    } else if (argv[i][0] != '-' && !topic_str) {
      topic_str = argv[i];
    } else {
      usage(stderr);
      return 2;
    }
  }
  if (!topic_str || !*topic_str || (!testnet_nodes && !have_bootstrap && !public_net)) {
    usage(stderr);
    fprintf(stderr, "(give --testnet, --bootstrap or --public: no network is chosen by default)\n");
    return 2;
  }
  uint8_t topic[32];
  for (size_t i = 0; i < 32; i++) topic[i] = (uint8_t)topic_str[i % strlen(topic_str)];
  if (seed_byte >= 0) {
    uint8_t seed[32];
    memset(seed, seed_byte, 32);
    p2pswarm_options_set_seed(opts, seed, 32);
  }

  p2pswarm_context *ctx = NULL;
  if ((r = p2pswarm_context_new(&ctx)) != P2PSWARM_OK) die("context", r);
  p2pswarm_testnet *tn = NULL;
  if (testnet_nodes > 0) {
    char boot[32];
    if ((r = p2pswarm_testnet_new(ctx, (size_t)testnet_nodes, &tn)) != P2PSWARM_OK) die("testnet", r);
    p2pswarm_testnet_bootstrap(tn, boot, sizeof boot);
    fprintf(stderr, "* testnet bootstrap %s\n", boot);
    p2pswarm_options_add_bootstrap(opts, boot);
    p2pswarm_options_set_host(opts, "127.0.0.1");
  }
  p2pswarm_swarm *swarm = NULL;
  if ((r = p2pswarm_swarm_new(ctx, opts, &swarm)) != P2PSWARM_OK) die("swarm", r);
  p2pswarm_options_free(opts);
  p2pswarm_discovery *disc = NULL;
  r = p2pswarm_swarm_join(swarm, topic, 32, P2PSWARM_JOIN_SERVER | P2PSWARM_JOIN_CLIENT, &disc);
  if (r != P2PSWARM_OK) die("join", r);
  if ((r = p2pswarm_discovery_flushed(disc, NULL)) != P2PSWARM_OK) die("flushed", r);
  uint8_t pk[32];
  char pkhex[65];
  p2pswarm_swarm_public_key(swarm, pk);
  hex(pk, 32, pkhex);
  fprintf(stderr, "* joined as %s\n", pkhex);

  int efd = -1;
  p2pswarm_event_fd(ctx, &efd);
  struct pollfd fds[2] = {{.fd = 0, .events = POLLIN}, {.fd = efd, .events = POLLIN}};
  char line[4096];
  int stdin_open = 1;
  for (;;) {
    if (poll(fds, 2, -1) < 0) break;
    if (fds[1].revents & POLLIN) {
      p2pswarm_event *ev;
      while ((r = p2pswarm_next_event(ctx, 0, &ev)) == P2PSWARM_OK) {
        on_event(ev);
        p2pswarm_event_free(ev);
      }
      if (r == P2PSWARM_ERR_CLOSED) break;
    }
    if (stdin_open && (fds[0].revents & (POLLIN | POLLHUP))) {
      ssize_t n = read(0, line, sizeof line);
      if (n <= 0) { /* end of input: end our side of every connection and quit */
        stdin_open = 0;
        fds[0].fd = -1;
        break;
      }
      for (int i = 0; i < MAX_PEERS; i++) {
        if (peers[i] && p2pswarm_connection_write(peers[i], (const uint8_t *)line, (size_t)n) ==
                            P2PSWARM_ERR_WOULD_BLOCK)
          fprintf(stderr, "* peer is not reading: line dropped\n");
      }
    }
  }
  /* graceful exit: end every connection, wait (up to 5 s) until the peers ended theirs */
  int open = 0;
  for (int i = 0; i < MAX_PEERS; i++)
    if (peers[i]) p2pswarm_connection_end(peers[i]), open++;
  for (int waited = 0; open > 0 && waited < 50; waited++) {
    p2pswarm_event *ev;
    if (p2pswarm_next_event(ctx, 100, &ev) == P2PSWARM_OK) {
      on_event(ev);
      p2pswarm_event_free(ev);
    }
    open = 0;
    for (int i = 0; i < MAX_PEERS; i++) open += peers[i] != NULL;
  }
  for (int i = 0; i < MAX_PEERS; i++) p2pswarm_connection_free(peers[i]);
  p2pswarm_discovery_free(disc);
  p2pswarm_swarm_destroy(swarm);
  p2pswarm_swarm_free(swarm);
  p2pswarm_testnet_free(tn);
  p2pswarm_context_free(ctx);
  return 0;
}
