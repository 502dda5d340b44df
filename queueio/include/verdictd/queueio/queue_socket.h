// One netlink socket bound to one nfnetlink_queue queue number.
//
// Open() (startup, throws QueueError) creates the socket, sizes its receive
// buffer, and binds the queue with copy mode, queue length and flags in ONE
// acknowledged request (so no packet arrives under a half-set configuration).
// Packet messages that arrive while Open() waits for that acknowledgement are
// kept and returned by the first Receive(), never discarded.
//
// Receive() fills pre-allocated slots (copy range + headroom each); a
// datagram larger than its slot is marked truncated (MSG_TRUNC), and
// ReceiveBatch::ForEachPacket() parses the packets in place. ENOBUFS is
// reported as kOverrun (the caller counts it), never fatal. With block, SO_RCVTIMEO
// carries the timeout (set again only when the timeout changes), so a
// receive is one recvmmsg system call.
// Receive() and Send() are the hot path: noexcept, no allocation, one
// recvmmsg / one sendmsg each. One owner thread. The socket keeps no
// counters: the caller counts what the statuses say (see
// metrics/queue_counters.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>

#include "verdictd/queueio/packet_source.h"
#include "verdictd/queueio/verdict_sink.h"

namespace verdictd::queueio {

enum class CopyMode : std::uint8_t { kMeta, kPacket };

struct QueueOptions {
  std::uint16_t queue_num = 0;
  CopyMode copy_mode = CopyMode::kPacket;
  std::uint32_t copy_range = 0xffff;      // bytes of each packet copied to userspace
  std::uint32_t max_queue_length = 4096;  // packets the kernel holds before it drops (or fails open)
  bool fail_open = true;                  // accept instead of drop when the queue is full
  bool gso = true;                        // receive GSO super-packets unsegmented
  bool conntrack = false;                 // attach conntrack state (NFQA_CT / NFQA_CT_INFO)
  bool uid_gid = false;                   // attach the owning socket's uid/gid
  bool secctx = false;                    // attach the security context (NFQA_SECCTX)
  std::size_t receive_buffer_bytes = 8u << 20;  // SO_RCVBUFFORCE target
  std::size_t send_buffer_bytes = 0;      // SO_SNDBUFFORCE target; 0 keeps the default
  std::size_t batch_size = 64;            // datagrams per recvmmsg
};

// Startup failure with a one-line message naming the queue and what to do.
class QueueError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// What Open() achieved, for the startup log and the metrics.
struct BindReport {
  std::size_t receive_buffer_bytes = 0;   // as the kernel reports it (SO_RCVBUF)
  bool receive_buffer_forced = false;     // SO_RCVBUFFORCE worked
  std::string notes;                      // e.g. "capped by net.core.rmem_max=..."
  std::size_t send_buffer_bytes = 0;      // as the kernel reports it (SO_SNDBUF)
  std::size_t datagram_buffer_bytes = 0;  // each recvmmsg slot: copy range + headroom
  // nf_conntrack_netlink is present: connmark verdicts and the conntrack
  // flag work. Without it the kernel ignores NFQA_CT in verdicts.
  bool conntrack_supported = false;
  std::uint32_t portid = 0;               // our netlink port id (see the proc file)
  // NFQA_CFG_F_* flags the kernel acknowledged with the bind (the bind is one
  // request, so these are exactly the flags asked for).
  std::uint32_t flags = 0;
  // Datagrams that arrived before the bind was acknowledged; kept and
  // returned by the first Receive() calls.
  std::size_t early_datagrams = 0;
};

class QueueSocket final : public PacketSource, public VerdictSink {
 public:
  static std::unique_ptr<QueueSocket> Open(const QueueOptions& options);  // throws QueueError

  // Takes over `fd`, a netlink socket another verdictd bound to this queue
  // and handed over (an upgrade): it is not bound again, so the kernel keeps
  // queueing to it and nothing waiting is lost. Checks that it is a
  // NETLINK_NETFILTER socket whose port id is `portid` (what the old process
  // said); throws QueueError naming the queue otherwise. `report` is what the
  // old process's bind found (flags, conntrack support): probing again would
  // change the live queue. The receive buffers are this process's own.
  // On success the socket owns `fd`; on failure the caller still does.
  static std::unique_ptr<QueueSocket> Adopt(int fd, std::uint32_t portid,
                                            const QueueOptions& options,
                                            const BindReport& report);
  ~QueueSocket() override;  // unbinds the queue
  QueueSocket(const QueueSocket&) = delete;
  QueueSocket& operator=(const QueueSocket&) = delete;

  ReceiveStatus Receive(ReceiveBatch& batch, bool block, int timeout_ms) noexcept override;
  SendStatus Send(std::span<const std::uint8_t> messages) noexcept override;

  // Unbinds now (idempotent); the kernel drops what is still queued.
  void Unbind() noexcept;

  // Queue control on the bound queue, sent without waiting for the answer
  // (it would arrive among packet messages, which must not be read and
  // dropped here; an error shows up as a kNetlinkError message in the
  // receive stream). False when the send failed. noexcept, no allocation:
  // callable from the worker thread.
  //
  // SetMaxLength(): the number of packets the kernel holds for us before it
  // drops (or, with fail-open, accepts) new ones.
  bool SetMaxLength(std::uint32_t max_length) noexcept;
  // SetMaxLength(0): with the fail-open flag the kernel then accepts every
  // new packet instead of queueing it, while the packets already queued
  // still wait for (and take) their verdicts. This is how a stopping worker
  // drains without a window in which the kernel would drop packets at unbind.
  bool StopQueueing() noexcept;

  // Hand-over: from now on the socket is another process's (it holds a
  // duplicate of fd()). Destroying this one then closes its descriptor
  // without unbinding, so the queue stays bound to the shared socket.
  void Detach() noexcept;

  // The largest buffer one Send() can carry (the kernel refuses a netlink
  // message batch bigger than the socket's send buffer with EMSGSIZE): size
  // VerdictBatcher buffers at most this.
  std::size_t max_send_bytes() const noexcept override;

  std::uint16_t queue_num() const noexcept;
  int fd() const noexcept;
  const BindReport& bind_report() const noexcept;

 private:
  struct Impl;
  explicit QueueSocket(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace verdictd::queueio
