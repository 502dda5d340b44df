// The seams between the worker loop and the kernel: one call per batch.
// QueueSocket implements both on netlink; tests and benchmarks use the
// in-memory MemoryQueue (memory_queue.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace verdictd::queueio {

enum class SendStatus : std::uint8_t { kOk, kWouldBlock, kError };

class VerdictSink {
 public:
  virtual ~VerdictSink() = default;
  // Sends a buffer of one or more netlink verdict messages. noexcept.
  virtual SendStatus Send(std::span<const std::uint8_t> messages) noexcept = 0;
  // The largest buffer one Send() may carry; a VerdictBatcher that sends
  // here is sized to at most this, so that a full batch flushes early
  // instead of failing (a netlink socket refuses a send bigger than its send
  // buffer with EMSGSIZE). Unlimited unless the sink says otherwise.
  virtual std::size_t max_send_bytes() const noexcept { return SIZE_MAX; }
};

}  // namespace verdictd::queueio
