// The receive side seam: a batch of datagrams in, a count out.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

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
