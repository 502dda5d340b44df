// The receive side seam: a batch of datagrams in, a count out, and the
// packets they carry out of ForEachPacket(), parsed in place (the views
// point into the source's receive buffers; nothing is copied or allocated).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "verdictd/queueio/parser.h"

namespace verdictd::queueio {

// One received datagram: bytes as received, `truncated` when it was larger
// than its buffer (MSG_TRUNC).
struct Datagram {
  std::span<const std::uint8_t> bytes;
  bool truncated = false;
};

enum class ReceiveStatus : std::uint8_t {
  kOk,           // count > 0 datagrams are in the batch
  kWouldBlock,   // nothing to read (non-blocking receive), or a timeout passed
  kInterrupted,  // a signal arrived; check for shutdown and call again
  kOverrun,      // ENOBUFS: the kernel dropped messages; counted, call again
  kError,        // anything else; errno is in last_errno
};

// Pre-allocated storage for one batch; owned by the source, reused per call.
struct ReceiveBatch {
  std::span<const Datagram> datagrams;  // valid until the next Receive()
  int last_errno = 0;

  // Every message of every datagram, in order, parsed:
  // `fn(const ParseResult&, const PacketView&)` once per message, and once
  // for a datagram's damaged or cut end (see ParseDatagram). The views are
  // valid until the next Receive(). noexcept, no allocation.
  template <typename Fn>
  void ForEachPacket(Fn&& fn) const noexcept {
    for (const Datagram& datagram : datagrams) ParseDatagram(datagram.bytes, datagram.truncated, fn);
  }
};

class PacketSource {
 public:
  virtual ~PacketSource() = default;
  // Receives up to the source's batch size of datagrams. With `block`, waits
  // (at most `timeout_ms`, -1 = forever) for the first one; the rest are
  // taken only if already there. noexcept.
  virtual ReceiveStatus Receive(ReceiveBatch& batch, bool block, int timeout_ms) noexcept = 0;
};

}  // namespace verdictd::queueio
