/*
 * slowlookup: an asynchronous extension. Each packet's "lookup" blocks for
 * a while in the host's task arena (never on the worker), then completes:
 * DROP when the packet's destination port is the configured one, else
 * ACCEPT. Parameters: "delay_us=N,spread=S,drop_port=P" (all optional):
 * packet k waits delay_us * (1 + k % spread), so completions come out of
 * order. The per-packet job is malloc'ed here for brevity; a production
 * extension would keep a pool.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <verdictd/extension.h>

struct state {
  const verdictd_host_api_t* host_api;
  verdictd_host_t* host;
  unsigned delay_us;
  unsigned spread;
  int drop_port; /* -1: none */
};

struct job {
  const struct state* state;
  uint64_t token;
  unsigned delay_us;
  int drop;
};

/* Declared parameters (ABI 1.1): the host refuses a string that does not
 * fit before load() runs, and `verdictd ctl ext help slowlookup` prints them. */
static const verdictd_param_t params_table[] = {
    {"delay_us", VERDICTD_PARAM_UINT, 0, 0, 10000000, "1000", "how long one lookup blocks"},
    {"spread", VERDICTD_PARAM_UINT, 0, 1, 1000, "1", "packet k waits delay_us * (1 + k % spread)"},
    {"drop_port", VERDICTD_PARAM_UINT, 0, 0, 65535, NULL, "drop packets to this destination port"},
};

/* "name=N" at p, N in the host's number syntax (decimal, or hex after 0x;
 * the host checked the string against params_table first): stores N and
 * returns the characters read, or 0 when p does not start so. */
static size_t number_param(const char* p, const char* name, unsigned long* value) {
  const size_t len = strlen(name);
  if (strncmp(p, name, len) != 0 || p[len] != '=') return 0;
  const char* n = p + len + 1;
  const int hex = n[0] == '0' && (n[1] == 'x' || n[1] == 'X');
  char* end = NULL;
  *value = strtoul(n, &end, hex ? 16 : 10);
  return end == n ? 0 : (size_t)(end - p);
}

static int load(const verdictd_host_api_t* host_api, verdictd_host_t* host, const char* params,
                void** out, char* error, size_t error_size) {
  struct state* s = calloc(1, sizeof *s);
  if (s == NULL) return -1;
  s->host_api = host_api;
  s->host = host;
  s->delay_us = 1000;
  s->spread = 1;
  s->drop_port = -1;
  const char* p = params != NULL ? params : "";
  while (*p != '\0') {
    unsigned long value = 0;
    size_t used = 0;
    if ((used = number_param(p, "delay_us", &value)) != 0 && value <= 10000000) {
      s->delay_us = (unsigned)value;
    } else if ((used = number_param(p, "spread", &value)) != 0 && value >= 1 && value <= 1000) {
      s->spread = (unsigned)value;
    } else if ((used = number_param(p, "drop_port", &value)) != 0 && value <= 65535) {
      s->drop_port = (int)value;
    } else {
      snprintf(error, error_size, "unknown or out-of-range parameter at \"%s\"", p);
      free(s);
      return -1;
    }
    p += used;
    if (*p == ',') {
      ++p;
    } else if (*p != '\0') {
      snprintf(error, error_size, "expected ',' at \"%s\"", p);
      free(s);
      return -1;
    }
  }
  *out = s;
  return 0;
}

static void unload(void* state) { free(state); }

static void* instantiate(void* state, verdictd_worker_t* worker, uint32_t worker_index,
                         char* error, size_t error_size) {
  (void)worker;
  (void)worker_index;
  (void)error;
  (void)error_size;
  return state; /* nothing per worker */
}

static void destroy(void* instance) { (void)instance; }

static void lookup(void* arg) {
  struct job* job = arg;
  struct timespec pause = {job->delay_us / 1000000, (long)(job->delay_us % 1000000) * 1000};
  nanosleep(&pause, NULL); /* the slow service */
  job->state->host_api->complete(job->token, job->drop ? VERDICTD_DROP : VERDICTD_ACCEPT, NULL, 0);
  free(job);
}

static int destination_port(const verdictd_packet_t* p) {
  size_t l4;
  uint8_t proto;
  if (p->l3 == 4 && p->data_len >= 20) {
    l4 = (size_t)(p->data[0] & 15) * 4;
    proto = p->data[9];
  } else if (p->l3 == 6 && p->data_len >= 40) {
    l4 = 40;
    proto = p->data[6];
  } else {
    return -1;
  }
  if ((proto != 6 && proto != 17) || p->data_len < l4 + 4) return -1;
  return (p->data[l4 + 2] << 8) | p->data[l4 + 3];
}

static verdictd_result_t process(void* instance, verdictd_packet_t* packet,
                                 verdictd_verdict_t* verdict) {
  const struct state* s = instance;
  (void)verdict;
  struct job* job = malloc(sizeof *job);
  if (job == NULL) return VERDICTD_NEXT;
  job->state = s;
  job->token = packet->token;
  job->delay_us = s->delay_us * (1 + packet->id % s->spread);
  job->drop = s->drop_port >= 0 && destination_port(packet) == s->drop_port;
  if (s->host_api->submit(s->host, lookup, job) != 0) {
    free(job);
    return VERDICTD_NEXT;
  }
  return VERDICTD_PENDING;
}

VERDICTD_EXTENSION_DEFINE = {
    .api_version = VERDICTD_EXTENSION_API_VERSION,
    .api_size = sizeof(verdictd_extension_api_t),
    .extension_version = 0x010000,
    .flags = VERDICTD_EXT_MAY_PEND,
    .name = "slowlookup",
    .help = "asynchronous lookup that blocks in the host's arena, then accepts or drops",
    .usage = "[delay_us=N][,spread=S][,drop_port=P]",
    .params = params_table,
    .param_count = sizeof params_table / sizeof params_table[0],
    .counter_names = NULL,
    .counter_count = 0,
    .load = load,
    .unload = unload,
    .instantiate = instantiate,
    .destroy = destroy,
    .start = NULL,
    .stop = NULL,
    .reset = NULL,
    .info = NULL,
    .process = process,
};
