/*
 * mtconn-bench: throughput benchmarks, each beside a reference
 * implementation measured in the same run.
 *   mtconn-bench <subcommand> [options]
 * Add a subcommand: write bench/bench_<name>.c with an
 * `int mtcb_<name>(int argc, char **argv)` and list it below.
 */
#include <stdio.h>
#include <string.h>

int mtcb_crypto(int argc, char **argv);
int mtcb_transport(int argc, char **argv);
int mtcb_session(int argc, char **argv);
int mtcb_context(int argc, char **argv);

static const struct {
  const char *name;
  int (*fn)(int argc, char **argv);
  const char *help;
} k_cmds[] = {
    {"crypto", mtcb_crypto, "AES-256-IGE/CTR, SHA-256, MTProto message path vs OpenSSL"},
    {"transport", mtcb_transport, "connection stack send/receive (obfs2, fake-TLS) vs OpenSSL CTR"},
    {"session", mtcb_session, "RPCs over one session vs its crypto, auth key CPU, idle heap"},
    {"context", mtcb_context, "1000 logged-in contexts: heap/RSS, keepalive CPU; start-up RTTs"},
};

static void usage(FILE *f) {
  fprintf(f, "usage: mtconn-bench <subcommand> [options]\nsubcommands:\n");
  for (size_t i = 0; i < sizeof k_cmds / sizeof k_cmds[0]; i++)
    fprintf(f, "  %-10s %s\n", k_cmds[i].name, k_cmds[i].help);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
    usage(stdout);
    return 0;
  }
  for (size_t i = 0; i < sizeof k_cmds / sizeof k_cmds[0]; i++)
    if (!strcmp(argv[1], k_cmds[i].name)) return k_cmds[i].fn(argc - 1, argv + 1);
  fprintf(stderr, "mtconn-bench: unknown subcommand '%s'\n", argv[1]);
  usage(stderr);
  return 2;
}
