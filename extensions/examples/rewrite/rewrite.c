/*
 * rewrite: substitutes byte strings in the payload of UDP and TCP packets
 * (after the L4 header), e.g. parameters "hello=HOWDY,foo=barbaz": every
 * occurrence of "hello" becomes "HOWDY" (the length may change). Packets
 * without a match pass on (NEXT); rewritten ones are ALTERED and verdictd
 * repairs lengths and checksums. A rewrite that would pass the host's edit
 * bound leaves the packet unchanged.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <verdictd/extension.h>

#define MAX_RULES 8
#define MAX_TEXT 64

struct rule {
  unsigned char from[MAX_TEXT];
  size_t from_len;
  unsigned char to[MAX_TEXT];
  size_t to_len;
};

struct state {
  const verdictd_host_api_t* host_api;
  struct rule rules[MAX_RULES];
  size_t count;
};

struct instance {
  struct state* state;
  verdictd_worker_t* worker;
  unsigned char* out; /* the rewritten packet, sized at instantiate */
  size_t out_size;
};

static const char* const counter_names[] = {"rewritten"};

static int parse(struct state* s, const char* params, char* error, size_t error_size) {
  const char* p = params;
  while (*p != '\0') {
    const char* end = strchr(p, ',');
    size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
    const char* eq = memchr(p, '=', len);
    if (eq == NULL || eq == p || s->count == MAX_RULES) {
      snprintf(error, error_size, "expected FROM=TO[,FROM=TO...] (at most %d), got \"%.*s\"",
               MAX_RULES, (int)len, p);
      return -1;
    }
    struct rule* r = &s->rules[s->count++];
    r->from_len = (size_t)(eq - p);
    r->to_len = len - r->from_len - 1;
    if (r->from_len > MAX_TEXT || r->to_len > MAX_TEXT) {
      snprintf(error, error_size, "FROM and TO are at most %d bytes", MAX_TEXT);
      return -1;
    }
    memcpy(r->from, p, r->from_len);
    memcpy(r->to, eq + 1, r->to_len);
    p += len;
    if (*p == ',') ++p;
  }
  if (s->count == 0) {
    snprintf(error, error_size, "needs at least one FROM=TO");
    return -1;
  }
  return 0;
}

static int load(const verdictd_host_api_t* host_api, verdictd_host_t* host, const char* params,
                void** out, char* error, size_t error_size) {
  (void)host;
  struct state* s = calloc(1, sizeof *s);
  if (s == NULL) return -1;
  s->host_api = host_api;
  if (parse(s, params != NULL ? params : "", error, error_size) != 0) {
    free(s);
    return -1;
  }
  *out = s;
  return 0;
}

static void unload(void* state) { free(state); }

static void* instantiate(void* state, verdictd_worker_t* worker, uint32_t worker_index,
                         char* error, size_t error_size) {
  (void)worker_index;
  struct state* s = state;
  struct instance* i = calloc(1, sizeof *i);
  if (i != NULL) {
    i->out_size = s->host_api->max_edit_len;
    i->out = malloc(i->out_size);
  }
  if (i == NULL || i->out == NULL) {
    if (i != NULL) free(i);
    snprintf(error, error_size, "out of memory");
    return NULL;
  }
  i->state = s;
  i->worker = worker;
  return i;
}

static void destroy(void* instance) {
  struct instance* i = instance;
  free(i->out);
  free(i);
}

/* Offset of the L4 payload of a UDP/TCP packet, or 0. */
static size_t payload_offset(const uint8_t* d, uint32_t len) {
  size_t l3, proto;
  if (len >= 20 && d[0] >> 4 == 4) {
    l3 = (size_t)(d[0] & 15) * 4;
    proto = d[9];
    if ((((d[6] << 8) | d[7]) & 0x3fff) != 0) return 0; /* fragment */
  } else if (len >= 40 && d[0] >> 4 == 6) {
    l3 = 40;
    proto = d[6];
  } else {
    return 0;
  }
  if (proto == 17 && len >= l3 + 8) return l3 + 8;
  if (proto == 6 && len >= l3 + 20) {
    size_t off = l3 + (size_t)(d[l3 + 12] >> 4) * 4;
    return off <= len ? off : 0;
  }
  return 0;
}

static verdictd_result_t process(void* instance, verdictd_packet_t* packet,
                                 verdictd_verdict_t* verdict) {
  struct instance* i = instance;
  const struct state* s = i->state;
  (void)verdict;
  const size_t start = payload_offset(packet->data, packet->data_len);
  if (start == 0 || (packet->flags & (VERDICTD_PACKET_GSO | VERDICTD_PACKET_TRUNCATED)) != 0) {
    return VERDICTD_NEXT;
  }
  size_t in = start, out = start, changes = 0;
  memcpy(i->out, packet->data, start);
  while (in < packet->data_len) {
    const struct rule* hit = NULL;
    for (size_t k = 0; k < s->count; ++k) {
      const struct rule* r = &s->rules[k];
      if (in + r->from_len <= packet->data_len && memcmp(packet->data + in, r->from, r->from_len) == 0) {
        hit = r;
        break;
      }
    }
    const size_t need = hit != NULL ? hit->to_len : 1;
    if (out + need > i->out_size) return VERDICTD_NEXT; /* over the bound: unchanged */
    if (hit != NULL) {
      memcpy(i->out + out, hit->to, hit->to_len);
      out += hit->to_len;
      in += hit->from_len;
      ++changes;
    } else {
      i->out[out++] = packet->data[in++];
    }
  }
  if (changes == 0) return VERDICTD_NEXT;
  uint8_t* edit = s->host_api->edit(packet, (uint32_t)out);
  if (edit == NULL) return VERDICTD_NEXT;
  memcpy(edit, i->out, out);
  s->host_api->count(i->worker, 0, 1);
  return VERDICTD_ALTERED; /* lengths and checksums: the host repairs them */
}

VERDICTD_EXTENSION_DEFINE = {
    .api_version = VERDICTD_EXTENSION_API_VERSION,
    .api_size = sizeof(verdictd_extension_api_t),
    .extension_version = 0x010000,
    .flags = 0,
    .name = "rewrite",
    .help = "substitutes byte strings in UDP and TCP payloads",
    .usage = "FROM=TO[,FROM=TO...] (at most 8 pairs of at most 64 bytes)",
    .counter_names = counter_names,
    .counter_count = 1,
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
