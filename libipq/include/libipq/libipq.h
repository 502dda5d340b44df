/*
 * libipq.h: the iptables 1.2 userspace packet queuing API (libipq), on
 * NFQUEUE.
 *
 * Programs written for the old ip_queue kernel module build against this
 * header unchanged (#include <libipq.h> or <libipq/libipq.h>) and link with
 * -lipq. The kernel side is nfnetlink_queue: a handle binds one NFQUEUE
 * queue, by default queue 0, which is the queue the legacy "-j QUEUE" target
 * feeds (iptables-legacy / ip6tables-legacy).
 *
 * This header is self-contained and clean C89, C11 and C++ (-Wpedantic). It
 * defines what the removed kernel header <linux/netfilter_ipv4/ip_queue.h>
 * gave: the message structures with their old field names and order, the
 * message types and the copy modes.
 *
 * Environment (read by ipq_create_handle; an invalid value makes it fail
 * with IPQ_ERR_HANDLE and errno EINVAL, and ipq_perror says which variable):
 *   LIBIPQ_QUEUE=N         NFQUEUE queue number 0..65535 (default 0, the
 *                          queue of "-j QUEUE"); use it with
 *                          "-j NFQUEUE --queue-num N".
 *   LIBIPQ_RCVBUF=BYTES    socket receive buffer (default 8388608, set with
 *                          SO_RCVBUFFORCE; without CAP_NET_ADMIN capped by
 *                          net.core.rmem_max). Suffixes k, m accepted.
 *   LIBIPQ_QUEUE_MAXLEN=N  packets the kernel holds for the program (default
 *                          4096); beyond it the kernel drops (or accepts,
 *                          with LIBIPQ_FAIL_OPEN=1).
 *   LIBIPQ_FAIL_OPEN=0|1   1: a full queue lets packets pass instead of
 *                          dropping them, and packets the library cannot
 *                          hand to the program (see ipq_read) are accepted
 *                          instead of dropped (default 0, as ip_queue).
 *   LIBIPQ_BATCH=N         datagrams taken per receive system call, 1..1024
 *                          (default 64).
 *   LIBIPQ_COALESCE_US=N   on a busy queue (over 4000 packets/s) that just
 *                          ran dry, ipq_read waits up to N microseconds for
 *                          packets to gather before it blocks (default 2000;
 *                          0 turns it off). Verdicts are sent first.
 *
 * Thread-safety: one thread reads a handle (ipq_read); ipq_set_verdict may
 * be called from any thread, as with the original (verdicts of other threads
 * are sent at once, unbatched). ipq_errno is one process-wide variable.
 */
#ifndef LIBIPQ_LIBIPQ_H
#define LIBIPQ_LIBIPQ_H

/* What programs of the libipq era got from the old header. */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h> /* the man page's own example calls exit() without it */
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>
/* <linux/netfilter.h> (NF_ACCEPT, NF_DROP, NFPROTO_IPV4, ...) pulls in
 * <linux/in.h>, which clashes with a later <netinet/in.h>; glibc's header
 * first makes every include order of libipq-era programs work (unless the
 * program itself put <linux/in.h> first, which never worked). */
#ifndef _LINUX_IN_H
#include <netinet/in.h>
#endif
#include <linux/netfilter.h>
#include <linux/netlink.h>

/* <net/if.h> defines it only with _DEFAULT_SOURCE; the value is the
 * kernel's (and <linux/if.h>'s). */
#ifndef IFNAMSIZ
#define IFNAMSIZ 16
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Version of this implementation of the API (the API itself is the one of
 * iptables 1.2.x). The shared library's SONAME is libipq.so.1; MAJOR changes
 * with it. */
#define LIBIPQ_VERSION_MAJOR 1
#define LIBIPQ_VERSION_MINOR 0
#define LIBIPQ_VERSION ((LIBIPQ_VERSION_MAJOR << 16) | LIBIPQ_VERSION_MINOR)

/* The packet's payload follows ipq_packet_msg_t. The old header declared it "payload[0]", which strict
 * ISO C and C++ reject; C99 and later get a flexible array member, C89 and
 * C++ a one-byte array. offsetof(ipq_packet_msg_t, payload) is the same in
 * all of them; sizeof differs in C89/C++ by the padding of that byte, so
 * compute sizes from offsetof, not sizeof. */
#if !defined(__cplusplus) && defined(__STDC_VERSION__) && __STDC_VERSION__ >= 199901L
#define LIBIPQ_PAYLOAD_
#else
#define LIBIPQ_PAYLOAD_ 1
#endif

/* A packet message, as ipq_get_packet() returns it. */
typedef struct ipq_packet_msg {
  unsigned long packet_id;     /* ID of queued packet: the key of ipq_set_verdict() */
  unsigned long mark;          /* Netfilter mark value (0 when the packet has none) */
  long timestamp_sec;          /* Packet arrival time (seconds), from the kernel when it */
  long timestamp_usec;         /* timestamped the packet, else the time of receipt */
  unsigned int hook;           /* Netfilter hook we rode in on (NF_INET_*) */
  char indev_name[IFNAMSIZ];   /* Name of incoming interface ("" when none) */
  char outdev_name[IFNAMSIZ];  /* Name of outgoing interface ("" when none) */
  unsigned short hw_protocol;  /* Hardware protocol (network order) */
  unsigned short hw_type;      /* Hardware type (ARPHRD_*) of the incoming interface */
  unsigned char hw_addrlen;    /* Hardware address length (0 when none) */
  unsigned char hw_addr[8];    /* Hardware (source MAC) address */
  size_t data_len;             /* Length of packet data (0 in IPQ_COPY_META) */
  unsigned char payload[LIBIPQ_PAYLOAD_]; /* Optional packet data (data_len bytes) */
} ipq_packet_msg_t;

/* Messages userspace sent to ip_queue; kept for programs that use the types. */
typedef struct ipq_mode_msg {
  unsigned char value; /* Requested mode */
  size_t range;        /* Optional range of packet requested */
} ipq_mode_msg_t;

/* The replacement data followed it; it has no payload member here (as in the
 * first ip_queue header) so that ipq_peer_msg_t is valid ISO C. */
typedef struct ipq_verdict_msg {
  unsigned int value; /* Verdict to hand to netfilter */
  unsigned long id;   /* Packet ID for this verdict */
  size_t data_len;    /* Length of replacement data */
} ipq_verdict_msg_t;

typedef struct ipq_peer_msg {
  union {
    ipq_verdict_msg_t verdict;
    ipq_mode_msg_t mode;
  } msg;
} ipq_peer_msg_t;

/* Copy modes of ipq_set_mode(). */
enum {
  IPQ_COPY_NONE,   /* stop receiving: the queue is unbound */
  IPQ_COPY_META,   /* metadata only */
  IPQ_COPY_PACKET  /* metadata and up to `range` bytes of the packet */
};
#define IPQ_COPY_MAX IPQ_COPY_PACKET

/* Message types, as ipq_message_type() returns them (besides NLMSG_ERROR). */
#define IPQM_BASE 0x10
#define IPQM_MODE (IPQM_BASE + 1)
#define IPQM_VERDICT (IPQM_BASE + 2)
#define IPQM_PACKET (IPQM_BASE + 3)
#define IPQM_MAX (IPQM_BASE + 4)

/* Values of ipq_errno, with the texts ipq_errstr() returns. */
enum {
  IPQ_ERR_NONE = 0, /* "Unknown error" */
  IPQ_ERR_IMPL,     /* "Implementation error" */
  IPQ_ERR_HANDLE,   /* "Unable to create netlink handle" */
  IPQ_ERR_SOCKET,   /* "Unable to create netlink socket" */
  IPQ_ERR_BIND,     /* "Unable to bind netlink socket": the queue could not be bound
                       (errno EPERM: no CAP_NET_ADMIN; EBUSY: another process holds it) */
  IPQ_ERR_BUFFER,   /* "Unable to allocate buffer" */
  IPQ_ERR_RECV,     /* "Failed to receive netlink message" */
  IPQ_ERR_NLEOF,    /* "Received EOF on netlink socket" */
  IPQ_ERR_ADDRLEN,  /* "Invalid peer address length" */
  IPQ_ERR_STRUNC,   /* "Sent message truncated" */
  IPQ_ERR_RTRUNC,   /* "Received message truncated": the buffer of ipq_read() is too small */
  IPQ_ERR_NLRECV,   /* "Received error from netlink" */
  IPQ_ERR_SEND,     /* "Failed to send netlink message" */
  IPQ_ERR_SUPP,     /* "Operation not supported" */
  IPQ_ERR_RECVBUF,  /* "Receive buffer size invalid": smaller than struct nlmsgerr */
  IPQ_ERR_TIMEOUT,  /* "Timeout" */
  IPQ_ERR_PROTOCOL  /* "Invalid protocol specified" */
};
#define IPQ_MAXERR IPQ_ERR_PROTOCOL

typedef unsigned long ipq_id_t;

/* Opaque: the old structure's socket is not the whole story any more (the
 * library receives in batches), so a program must not poll its fd itself. */
struct ipq_handle;

/* The error of the last failed call (process-wide, as it always was). */
extern int ipq_errno;

/* Creates a handle for protocol PF_INET/NFPROTO_IPV4 or PF_INET6/NFPROTO_IPV6
 * (`flags` is unused, as it always was). Reads the LIBIPQ_* environment.
 * Returns NULL with ipq_errno set on failure (IPQ_ERR_PROTOCOL for another
 * protocol). The queue is bound by ipq_set_mode(). */
struct ipq_handle *ipq_create_handle(uint32_t flags, uint32_t protocol);

/* Sends the verdicts still pending, unbinds the queue, frees the handle.
 * Returns 0. Packets received but given no verdict are dropped by the kernel. */
int ipq_destroy_handle(struct ipq_handle *h);

/* Binds the queue (first call) or changes its copy mode: IPQ_COPY_META, or
 * IPQ_COPY_PACKET with `len` bytes of each packet (0 or more than 65535: the
 * whole packet up to 65535). IPQ_COPY_NONE unbinds. Returns a positive
 * number on success, -1 with ipq_errno set on failure (IPQ_ERR_BIND with
 * errno EPERM or EBUSY, IPQ_ERR_SUPP for an unknown mode). */
int ipq_set_mode(const struct ipq_handle *h, uint8_t mode, size_t len);

/* Waits for the next queue message and copies it into `buf`: a netlink
 * message whose type is IPQM_PACKET (an ipq_packet_msg_t follows the header)
 * or NLMSG_ERROR (an error the kernel reported, e.g. a verdict for an id it
 * no longer holds). `timeout` in microseconds: 0 waits forever, > 0 waits at
 * most that long, < 0 does not wait. Returns the message length, 0 on
 * timeout (ipq_errno IPQ_ERR_TIMEOUT) or when a signal interrupted a wait
 * with a timeout, -1 on error (IPQ_ERR_RECVBUF: `len` is below
 * sizeof(struct nlmsgerr); IPQ_ERR_RTRUNC: the message does not fit in
 * `len`, the packet is consumed and gets NF_DROP, or NF_ACCEPT with
 * LIBIPQ_FAIL_OPEN=1; IPQ_ERR_RECV: errno says why, EINTR for a signal
 * during a wait without timeout). Pending verdicts are sent before it waits. */
ssize_t ipq_read(const struct ipq_handle *h, unsigned char *buf, size_t len, int timeout);

/* The type of the message in `buf`: IPQM_PACKET or NLMSG_ERROR. */
int ipq_message_type(const unsigned char *buf);

/* The packet message in `buf` (after the netlink header). */
ipq_packet_msg_t *ipq_get_packet(const unsigned char *buf);

/* The error of an NLMSG_ERROR message in `buf`, as a positive errno value. */
int ipq_get_msgerr(const unsigned char *buf);

/* Gives packet `id` its verdict: NF_ACCEPT, NF_DROP, NF_REPEAT, NF_STOP or
 * NF_QUEUE (NF_QUEUE_NR(n) for queue n). With data_len > 0 and buf non-NULL,
 * the packet is replaced by those bytes (at most 65531; fix its checksums).
 * Consecutive plain verdicts may travel together in one message, and are
 * sent at the latest when the program next waits in ipq_read or has been
 * given every packet received so far. Returns a positive number, or -1 with
 * ipq_errno set (IPQ_ERR_SUPP and errno EINVAL: unknown verdict, id above
 * 32 bits, replacement too long; IPQ_ERR_SEND: the kernel refused the send). */
int ipq_set_verdict(const struct ipq_handle *h, ipq_id_t id, unsigned int verdict,
                    size_t data_len, unsigned char *buf);

/* No requests are defined; returns 1, as the original did. */
int ipq_ctl(const struct ipq_handle *h, int request, ...);

/* The text of ipq_errno. */
char *ipq_errstr(void);

/* Prints "s: <ipq_errstr()>[: <strerror(errno)>]" to stderr, and a second
 * line with the details the library knows (which queue, what to do). */
void ipq_perror(const char *s);

#ifdef __cplusplus
}
#endif

#endif /* LIBIPQ_LIBIPQ_H */
