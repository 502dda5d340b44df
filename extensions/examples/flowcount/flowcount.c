/*
 * flowcount: counts packets and bytes per flow (addresses, protocol, ports),
 * each worker in its own table (no locks on the packet path); `info` lists
 * the number of flows and the busiest ones. Parameter: "max_flows=N" (per
 * worker, default 4096); a full table counts the rest as "other".
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <verdictd/extension.h>

#define MAX_WORKERS 1024

struct flow {
  uint8_t key[37]; /* src 16, dst 16, proto 1, ports 4 */
  uint8_t used;
  atomic_ullong packets; /* written by one worker, read by info() */
  atomic_ullong bytes;
};

struct table {
  struct flow* flows;
  size_t size; /* a power of two */
  atomic_ullong other;
};

struct state {
  size_t max_flows;
  struct table* tables[MAX_WORKERS]; /* by worker index; kept across reloads */
};

static const verdictd_param_t params_table[] = {
    {"max_flows", VERDICTD_PARAM_UINT, 0, 1, 1u << 20, "4096", "flows tracked per worker"},
};

static int load(const verdictd_host_api_t* host_api, verdictd_host_t* host, const char* params,
                void** out, char* error, size_t error_size) {
  (void)host_api;
  (void)host;
  size_t max_flows = 4096;
  if (params != NULL && params[0] != '\0') {
    /* The host's number syntax (it checked params against params_table):
     * decimal, or hex after 0x. */
    const char* n = params + 10;
    const int hex = n[0] == '0' && (n[1] == 'x' || n[1] == 'X');
    char* end = NULL;
    if (strncmp(params, "max_flows=", 10) != 0 ||
        (max_flows = strtoul(n, &end, hex ? 16 : 10)) == 0 || *end != '\0' || max_flows > (1u << 20)) {
      snprintf(error, error_size, "expected max_flows=N (1..1048576), got \"%s\"", params);
      return -1;
    }
  }
  struct state* s = calloc(1, sizeof *s);
  if (s == NULL) return -1;
  s->max_flows = 1;
  while (s->max_flows < max_flows) s->max_flows <<= 1;
  *out = s;
  return 0;
}

static void unload(void* state) {
  struct state* s = state;
  for (size_t i = 0; i < MAX_WORKERS; ++i) {
    if (s->tables[i] != NULL) {
      free(s->tables[i]->flows);
      free(s->tables[i]);
    }
  }
  free(s);
}

static void* instantiate(void* state, verdictd_worker_t* worker, uint32_t worker_index,
                         char* error, size_t error_size) {
  (void)worker;
  struct state* s = state;
  if (worker_index >= MAX_WORKERS) {
    snprintf(error, error_size, "at most %d workers", MAX_WORKERS);
    return NULL;
  }
  /* A reload makes new instances; the worker's table (and its counts) stays. */
  if (s->tables[worker_index] == NULL) {
    struct table* t = calloc(1, sizeof *t);
    if (t != NULL) t->flows = calloc(s->max_flows * 2, sizeof *t->flows);
    if (t == NULL || t->flows == NULL) {
      free(t);
      snprintf(error, error_size, "out of memory");
      return NULL;
    }
    t->size = s->max_flows * 2;
    s->tables[worker_index] = t;
  }
  return s->tables[worker_index];
}

static void destroy(void* instance) { (void)instance; }

static int reset(void* state, char* error, size_t error_size) {
  (void)error;
  (void)error_size;
  /* Counts only (the workers own the keys): zeroing is safe while running. */
  struct state* s = state;
  for (size_t w = 0; w < MAX_WORKERS; ++w) {
    struct table* t = s->tables[w];
    if (t == NULL) continue;
    for (size_t i = 0; i < t->size; ++i) {
      atomic_store_explicit(&t->flows[i].packets, 0, memory_order_relaxed);
      atomic_store_explicit(&t->flows[i].bytes, 0, memory_order_relaxed);
    }
    atomic_store_explicit(&t->other, 0, memory_order_relaxed);
  }
  return 0;
}

static void info(void* state, char* buffer, size_t size) {
  struct state* s = state;
  unsigned long long flows = 0, packets = 0, bytes = 0, other = 0, top = 0;
  for (size_t w = 0; w < MAX_WORKERS; ++w) {
    struct table* t = s->tables[w];
    if (t == NULL) continue;
    other += atomic_load_explicit(&t->other, memory_order_relaxed);
    for (size_t i = 0; i < t->size; ++i) {
      const unsigned long long p = atomic_load_explicit(&t->flows[i].packets, memory_order_relaxed);
      if (p == 0) continue;
      ++flows;
      packets += p;
      bytes += atomic_load_explicit(&t->flows[i].bytes, memory_order_relaxed);
      if (p > top) top = p;
    }
  }
  snprintf(buffer, size, "flows %llu packets %llu bytes %llu busiest %llu other %llu", flows,
           packets, bytes, top, other);
}

static size_t flow_key(const verdictd_packet_t* p, uint8_t key[37]) {
  const uint8_t* d = p->data;
  size_t l4;
  memset(key, 0, 37);
  if (p->l3 == 4 && p->data_len >= 20) {
    memcpy(key, d + 12, 4);
    memcpy(key + 16, d + 16, 4);
    key[32] = d[9];
    l4 = (size_t)(d[0] & 15) * 4;
  } else if (p->l3 == 6 && p->data_len >= 40) {
    memcpy(key, d + 8, 32);
    key[32] = d[6];
    l4 = 40;
  } else {
    return 0;
  }
  if ((key[32] == 6 || key[32] == 17) && p->data_len >= l4 + 4) memcpy(key + 33, d + l4, 4);
  return 37;
}

static verdictd_result_t process(void* instance, verdictd_packet_t* packet,
                                 verdictd_verdict_t* verdict) {
  struct table* t = instance;
  uint8_t key[37];
  (void)verdict;
  if (flow_key(packet, key) == 0) return VERDICTD_NEXT;
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < sizeof key; ++i) h = (h ^ key[i]) * 1099511628211ull;
  for (size_t probe = 0; probe < 16; ++probe) {
    struct flow* f = &t->flows[(h + probe) & (t->size - 1)];
    if (!f->used) {
      memcpy(f->key, key, sizeof key);
      f->used = 1;
    } else if (memcmp(f->key, key, sizeof key) != 0) {
      continue;
    }
    atomic_store_explicit(&f->packets, atomic_load_explicit(&f->packets, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    atomic_store_explicit(&f->bytes,
                          atomic_load_explicit(&f->bytes, memory_order_relaxed) + packet->original_len,
                          memory_order_relaxed);
    return VERDICTD_NEXT;
  }
  atomic_store_explicit(&t->other, atomic_load_explicit(&t->other, memory_order_relaxed) + 1,
                        memory_order_relaxed);
  return VERDICTD_NEXT;
}

VERDICTD_EXTENSION_DEFINE = {
    .api_version = VERDICTD_EXTENSION_API_VERSION,
    .api_size = sizeof(verdictd_extension_api_t),
    .extension_version = 0x010000,
    .flags = 0,
    .name = "flowcount",
    .help = "counts packets and bytes per flow; info shows the flows",
    .usage = "[max_flows=N] (per worker, default 4096)",
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
    .reset = reset,
    .info = info,
    .process = process,
};
