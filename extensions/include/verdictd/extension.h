/*
 * verdictd extension ABI: inspection code loaded into verdictd as a shared
 * object and chained, each extension deciding packets in turn.
 *
 * One public C header (C11 and C++ clean). An extension exports exactly one
 * symbol, a const verdictd_extension_api_t named VERDICTD_EXTENSION_ENTRY
 * ("verdictd_extension"); everything else in the .so should have hidden
 * visibility (-fvisibility=hidden). The host checks, before it calls
 * anything: the major of api_version equals VERDICTD_EXTENSION_API_MAJOR,
 * api_size is at least the size of the version-1.0 struct, name/help/usage
 * are set and the required function pointers (load, unload, instantiate,
 * destroy, process) are present. Optional pointers may be NULL.
 *
 * Versioning (as libdaq's module API): api_version = major << 16 | minor. A
 * new minor only appends fields at the end of a struct; the host reads a
 * field only when api_size covers it. A new major breaks compatibility and
 * the host refuses the extension. The host's own table (verdictd_host_api_t)
 * carries its version and size the same way: check host->api_size before
 * using a field added after 1.0.
 *
 * History:
 *   1.0  the first ABI.
 *   1.1  the packet view's hw_addr/hw_addrlen are filled (NFQA_HWADDR; a
 *        1.0 host left them 0: check host->api_version's minor >= 1);
 *        extensions may declare a static parameter table (params,
 *        param_count) that the host checks `key=value` parameters against
 *        before load() and prints with `verdictd ctl ext help NAME`.
 *
 * Lifecycle (ipqext's init/fini/start/stop/reset/info/help):
 *   load(host, params)      once per process when the extension is added;
 *                           `params` is the configured parameter string
 *                           ("param1,param2", ipqext's init_pass). Returns 0,
 *                           or nonzero with a message in `error` (the host
 *                           refuses the extension and logs that text).
 *   instantiate(worker)     once per worker thread, after load; per-worker
 *                           state needs no locks.
 *   start/stop/reset        on `verdictd ctl ext start|stop|reset` (and
 *                           start at load when configured started). A stopped
 *                           extension is skipped by the chain (NEXT).
 *   process(instance, pkt)  per packet, on the instance's worker thread.
 *   info(instance)          status text while running (any thread: guard
 *                           what it reads); help() needs no load at all.
 *   destroy / unload        reverse order, after no worker can call it again.
 *
 * Thread model: process() runs on one worker thread per instance and must
 * not block (no system calls that wait, no locks that workers contend for).
 * Work that may block goes to the host's task arena through submit() after
 * process() returned VERDICTD_PENDING; the work finishes by calling
 * complete() from any thread. load/unload/start/stop/reset/info run on the
 * control thread.
 */
#ifndef VERDICTD_EXTENSION_H
#define VERDICTD_EXTENSION_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VERDICTD_EXTENSION_API_MAJOR 1
#define VERDICTD_EXTENSION_API_MINOR 1
#define VERDICTD_EXTENSION_API_VERSION \
  ((uint32_t)((VERDICTD_EXTENSION_API_MAJOR << 16) | VERDICTD_EXTENSION_API_MINOR))
#define VERDICTD_HOST_API_MAJOR 1
#define VERDICTD_HOST_API_MINOR 1
#define VERDICTD_HOST_API_VERSION \
  ((uint32_t)((VERDICTD_HOST_API_MAJOR << 16) | VERDICTD_HOST_API_MINOR))
#define VERDICTD_API_MAJOR_OF(version) ((uint32_t)(version) >> 16)

/* The one exported symbol. */
#define VERDICTD_EXTENSION_ENTRY verdictd_extension
#define VERDICTD_EXTENSION_ENTRY_NAME "verdictd_extension"

#if defined(__GNUC__) || defined(__clang__)
#define VERDICTD_EXPORT __attribute__((visibility("default")))
#else
#define VERDICTD_EXPORT
#endif
#ifdef __cplusplus
#define VERDICTD_EXTERN_C extern "C"
#else
#define VERDICTD_EXTERN_C
#endif
/* Use as: VERDICTD_EXTENSION_DEFINE = { VERDICTD_EXTENSION_API_VERSION, ... }; */
#define VERDICTD_EXTENSION_DEFINE \
  VERDICTD_EXTERN_C VERDICTD_EXPORT const verdictd_extension_api_t VERDICTD_EXTENSION_ENTRY

/* Opaque handles: the host's, never dereferenced by an extension. */
typedef struct verdictd_host verdictd_host_t;     /* one per loaded extension */
typedef struct verdictd_worker verdictd_worker_t; /* one per instance (worker) */

/* What process() (or complete()) decides. */
typedef enum verdictd_result {
  VERDICTD_ACCEPT = 0,  /* accept; leaves the chain */
  VERDICTD_DROP = 1,    /* drop; leaves the chain */
  VERDICTD_NEXT = 2,    /* the next extension decides (ipqext's NF_QUEUE) */
  VERDICTD_ALTERED = 3, /* payload rewritten (see edit()); accept it rewritten */
  VERDICTD_REPEAT = 4,  /* re-inject at the same hook (NF_REPEAT) */
  VERDICTD_QUEUE = 5,   /* to queue verdict->target_queue (NF_QUEUE) */
  VERDICTD_PENDING = 6  /* asynchronous: complete(packet->token, ...) later */
} verdictd_result_t;

/* verdictd_packet_t.flags */
#define VERDICTD_PACKET_HAS_MARK (1u << 0)
#define VERDICTD_PACKET_HAS_TIMESTAMP (1u << 1)
/* The kernel left the L4 checksum to be finished by offload: the field
 * holds only the pseudo-header sum (CHECKSUM_PARTIAL, GSO flag on). */
#define VERDICTD_PACKET_CHECKSUM_NOT_READY (1u << 2)
#define VERDICTD_PACKET_GSO (1u << 3)       /* a GSO super-packet (may exceed the MTU) */
#define VERDICTD_PACKET_TRUNCATED (1u << 4) /* copy range cut it: data_len < original_len */

/* A view of one queued packet. Valid during process() only, except for
 * extensions that set VERDICTD_EXT_MAY_PEND: their packets live in a host
 * slot that stays valid (and writable through edit()) until complete(). */
typedef struct verdictd_packet {
  uint32_t id;          /* the kernel's packet id */
  uint16_t queue;       /* queue number */
  uint16_t hw_protocol; /* host order, e.g. 0x0800 */
  uint8_t hook;         /* NF_INET_* hook */
  uint8_t family;       /* AF_INET, AF_INET6, ... (nfgen_family) */
  uint8_t l3;           /* 4 or 6: the IP version of data[0]; 0 unknown */
  uint8_t reserved0;
  uint32_t flags;  /* VERDICTD_PACKET_* */
  uint32_t mark;   /* the packet's mark (0 when absent) */
  uint32_t indev;  /* interface indexes, 0 when absent */
  uint32_t outdev;
  char indev_name[16]; /* interface names ("" when absent or unknown) */
  char outdev_name[16];
  /* The link-layer source address (NFQA_HWADDR: the sender's MAC at the
   * input and forward hooks; none at output), hw_addrlen bytes of hw_addr,
   * the rest zero; hw_addrlen 0 when the kernel sent none. Filled since
   * host ABI 1.1 (a 1.0 host always left it 0). */
  uint8_t hw_addrlen;
  uint8_t hw_addr[8];
  int64_t timestamp_ns;  /* CLOCK_REALTIME arrival, when HAS_TIMESTAMP */
  const uint8_t* data;   /* the bytes, the network header first */
  uint32_t data_len;     /* bytes in data */
  uint32_t original_len; /* the packet's real length */
  uint64_t token;        /* for complete(), when process() returns PENDING */
} verdictd_packet_t;

/* verdictd_verdict_t.flags */
#define VERDICTD_VERDICT_SET_MARK (1u << 0)       /* give the packet verdict->mark */
#define VERDICTD_VERDICT_CHECKSUMS_DONE (1u << 1) /* ALTERED: checksums are already right */

/* What the extension adds to its result. Zeroed by the host before each
 * process() call. */
typedef struct verdictd_verdict {
  uint32_t flags;        /* VERDICTD_VERDICT_* */
  uint32_t mark;         /* with VERDICTD_VERDICT_SET_MARK */
  uint16_t target_queue; /* with VERDICTD_QUEUE */
  uint16_t reserved0;
} verdictd_verdict_t;

/* Log levels for host->log(). */
enum { VERDICTD_LOG_DEBUG = 0, VERDICTD_LOG_INFO = 1, VERDICTD_LOG_WARN = 2, VERDICTD_LOG_ERROR = 3 };


/* The host's services, passed to load(). Every function is thread-safe
 * unless it says otherwise. */
typedef struct verdictd_host_api {
  uint32_t api_version; /* VERDICTD_HOST_API_VERSION of the running host */
  uint32_t api_size;    /* sizeof(verdictd_host_api_t) of the running host */
  /* One line of text into verdictd's log, prefixed with the extension's
   * name. Off the per-packet path (it may lock and write). */
  void (*log)(verdictd_host_t* host, int level, const char* message);
  /* Worker thread only, inside process(): makes packet->data writable and
   * `new_len` bytes long (at most the host's edit bound, max_edit_len), the
   * first min(data_len, new_len) bytes kept. Returns the writable bytes (also
   * in packet->data from then on), or NULL if new_len is too large. Return
   * VERDICTD_ALTERED afterwards. */
  uint8_t* (*edit)(verdictd_packet_t* packet, uint32_t new_len);
  /* Hands `work(arg)` to the host's task arena (oneTBB; it may block there).
   * Returns 0, or -1 when the host has no arena. Any thread. */
  int (*submit)(verdictd_host_t* host, void (*work)(void* arg), void* arg);
  /* Ends a PENDING packet: `result` as process() would return it (not
   * PENDING; NEXT means the end-of-chain verdict), `verdict` may be NULL.
   * For an ALTERED result the packet's bytes were changed in place (the slot
   * given to process(), at most max_edit_len; new length in `new_len`).
   * Any thread, exactly once per token; a token that timed out is ignored,
   * and so is a second call, or a call for a packet whose process() then
   * returned something other than PENDING (process()'s result stands). */
  void (*complete)(uint64_t token, verdictd_result_t result, const verdictd_verdict_t* verdict,
                   uint32_t new_len);
  /* Adds `delta` to the extension's counter `index` (see counter_names) for
   * this worker. Worker thread of `worker` only; no lock, no allocation. */
  void (*count)(verdictd_worker_t* worker, uint32_t index, uint64_t delta);
  /* Makes an IPv4 or IPv6 packet of `len` bytes consistent in place: the
   * length fields (IPv4 total length, IPv6 payload length, UDP length), the
   * IPv4 header checksum and the full TCP/UDP/ICMP/ICMPv6 checksum (also
   * for packets that came CHECKSUM_NOT_READY: the kernel treats a rewritten
   * packet as CHECKSUM_NONE). Returns 0; 1 when only the IP header could be
   * fixed (a fragment, an unknown protocol); -1 if it is not an IP packet
   * it can parse (left unchanged). `flags` must be 0. Pure, any thread. */
  int (*repair_checksums)(uint8_t* data, uint32_t len, uint32_t flags);
  uint32_t max_edit_len; /* the most bytes edit() gives */
} verdictd_host_api_t;

/* verdictd_extension_api_t.flags */
#define VERDICTD_EXT_MAY_PEND (1u << 0) /* process() may return PENDING */

/* A declared parameter (ABI 1.1), for extensions whose parameter string is
 * a comma-separated list of `name=value` and `name` items. The host refuses
 * a string that does not fit the table (an unknown name, a name given
 * twice, a value of the wrong type or out of range) before load() runs,
 * naming the extension and the parameter; load() still gets the whole
 * string and parses it itself. */
typedef enum verdictd_param_type {
  VERDICTD_PARAM_FLAG = 0,   /* `name` alone, no value */
  VERDICTD_PARAM_UINT = 1,   /* `name=N`, decimal or 0x hex, min <= N <= max */
  VERDICTD_PARAM_STRING = 2  /* `name=TEXT`, min <= length <= max (max 0: no bound) */
} verdictd_param_type_t;

typedef struct verdictd_param {
  const char* name;          /* [A-Za-z0-9_.-]+ */
  uint32_t type;             /* verdictd_param_type_t */
  uint32_t reserved0;        /* 0 */
  uint64_t min;              /* UINT: least value; STRING: least length */
  uint64_t max;              /* UINT: largest value; STRING: largest length (0: any) */
  const char* default_value; /* what load() uses when it is absent, as text (help only); may be NULL */
  const char* help;          /* one line; may be NULL */
} verdictd_param_t;

typedef struct verdictd_extension_api {
  /* Sanity and version checks. */
  uint32_t api_version; /* VERDICTD_EXTENSION_API_VERSION */
  uint32_t api_size;    /* sizeof(verdictd_extension_api_t) */
  uint32_t extension_version; /* the extension's own, free form (e.g. 0x010000) */
  uint32_t flags;             /* VERDICTD_EXT_* */
  const char* name;  /* e.g. "template"; matched against the configured name */
  const char* help;  /* one line: what it does */
  const char* usage; /* its parameters, e.g. "PATTERN=REPLACEMENT[,...]" */
  /* Counters the extension keeps per worker, shown as metrics
   * (verdictd_extension_counter_total{extension, counter}). May be NULL. */
  const char* const* counter_names;
  uint32_t counter_count;

  /* Process scope. `state` receives the extension's own process-wide
   * pointer, passed back to every other call. Required. */
  int (*load)(const verdictd_host_api_t* host_api, verdictd_host_t* host, const char* params,
              void** state, char* error, size_t error_size);
  void (*unload)(void* state); /* required */
  /* Worker scope: returns the instance (non-NULL) or NULL with `error`. Required. */
  void* (*instantiate)(void* state, verdictd_worker_t* worker, uint32_t worker_index,
                       char* error, size_t error_size);
  void (*destroy)(void* instance); /* required */
  /* Control; each returns 0 or nonzero with `error`. May be NULL. */
  int (*start)(void* state, char* error, size_t error_size);
  int (*stop)(void* state, char* error, size_t error_size);
  int (*reset)(void* state, char* error, size_t error_size);
  /* Status text into `buffer` (NUL-terminated). May be NULL. */
  void (*info)(void* state, char* buffer, size_t size);
  /* Per packet, on the instance's worker thread. Required. */
  verdictd_result_t (*process)(void* instance, verdictd_packet_t* packet,
                               verdictd_verdict_t* verdict);

  /* ABI 1.1 (read only when api_size covers them). The parameter table,
   * static: NULL (or param_count 0) leaves the parameter string free form,
   * checked by load() alone. */
  const verdictd_param_t* params;
  uint32_t param_count;
  uint32_t reserved1; /* 0 */
} verdictd_extension_api_t;

/* The size of the 1.0 struct: the least api_size the host accepts. */
#define VERDICTD_EXTENSION_API_SIZE_1_0 \
  (offsetof(verdictd_extension_api_t, process) + sizeof(void*))
/* The size of the 1.1 struct: the host reads the parameter table only then. */
#define VERDICTD_EXTENSION_API_SIZE_1_1 \
  (offsetof(verdictd_extension_api_t, reserved1) + sizeof(uint32_t))

#ifdef __cplusplus
}
#endif

#endif /* VERDICTD_EXTENSION_H */
