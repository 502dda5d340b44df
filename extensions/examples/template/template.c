/*
 * template: the extension to copy. It passes every packet on (NEXT) and
 * counts what it saw; `info` shows the count.
 *
 * To write a new extension: copy this folder, replace every "template" with
 * the new name (file names too), put the inspection into process(), build
 * (see CMakeLists.txt here, or docs/extensions.md), and copy NAME.so into
 * verdictd's extension directory.
 *
 * Parameters are declared in a static table (params_table below): the host
 * checks the configured string against it before load() runs and prints it
 * with `verdictd ctl ext help template`; load() then only reads the values.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <verdictd/extension.h>

/* Process-wide state (load .. unload). */
struct state {
  const verdictd_host_api_t* host_api;
  verdictd_host_t* host;
  uint32_t mark; /* "mark=N": the mark given to the packets passed on; 0 none */
  atomic_ullong packets; /* summed over the workers; info() reads it */
};

/* Per-worker state (instantiate .. destroy): touched by one thread only. */
struct instance {
  struct state* state;
  verdictd_worker_t* worker;
};

static const char* const counter_names[] = {"packets"};

static const verdictd_param_t params_table[] = {
    {"mark", VERDICTD_PARAM_UINT, 0, 0, 0xffffffffu, "0",
     "give the packets passed on this mark (0: leave it)"},
};

static int load(const verdictd_host_api_t* host_api, verdictd_host_t* host, const char* params,
                void** out, char* error, size_t error_size) {
  struct state* s = calloc(1, sizeof *s);
  if (s == NULL) {
    snprintf(error, error_size, "out of memory");
    return -1;
  }
  s->host_api = host_api;
  s->host = host;
  /* The host checked the string against params_table: "" or "mark=N",
   * N in the host's number syntax (decimal, or hex after 0x; never octal). */
  if (params != NULL && strncmp(params, "mark=", 5) == 0) {
    const char* n = params + 5;
    const int hex = n[0] == '0' && (n[1] == 'x' || n[1] == 'X');
    s->mark = (uint32_t)strtoul(n, NULL, hex ? 16 : 10);
  }
  *out = s;
  return 0;
}

static void unload(void* state) { free(state); }

static void* instantiate(void* state, verdictd_worker_t* worker, uint32_t worker_index,
                         char* error, size_t error_size) {
  (void)worker_index;
  struct instance* i = calloc(1, sizeof *i);
  if (i == NULL) {
    snprintf(error, error_size, "out of memory");
    return NULL;
  }
  i->state = state;
  i->worker = worker;
  return i;
}

static void destroy(void* instance) { free(instance); }

static int reset(void* state, char* error, size_t error_size) {
  (void)error;
  (void)error_size;
  atomic_store_explicit(&((struct state*)state)->packets, 0, memory_order_relaxed);
  return 0;
}

static void info(void* state, char* buffer, size_t size) {
  struct state* s = state;
  snprintf(buffer, size, "packets %llu",
           (unsigned long long)atomic_load_explicit(&s->packets, memory_order_relaxed));
}

static verdictd_result_t process(void* instance, verdictd_packet_t* packet,
                                 verdictd_verdict_t* verdict) {
  struct instance* i = instance;
  (void)packet;
  /* Relaxed add: the workers share this one cache line; an extension that
   * counts at line rate keeps per-instance counts and sums them in info(). */
  atomic_fetch_add_explicit(&i->state->packets, 1, memory_order_relaxed);
  i->state->host_api->count(i->worker, 0, 1);
  if (i->state->mark != 0) {
    verdict->flags |= VERDICTD_VERDICT_SET_MARK;
    verdict->mark = i->state->mark;
  }
  return VERDICTD_NEXT;
}

VERDICTD_EXTENSION_DEFINE = {
    .api_version = VERDICTD_EXTENSION_API_VERSION,
    .api_size = sizeof(verdictd_extension_api_t),
    .extension_version = 0x010000,
    .flags = 0,
    .name = "template",
    .help = "passes every packet to the next extension and counts them",
    .usage = "[mark=N]",
    .counter_names = counter_names,
    .counter_count = 1,
    .load = load,
    .unload = unload,
    .instantiate = instantiate,
    .destroy = destroy,
    .start = NULL,
    .stop = NULL,
    .reset = reset,
    .info = info,
    .process = process,
    .params = params_table,
    .param_count = sizeof params_table / sizeof params_table[0],
};
