#include "verdictd/queueio/memory_queue.h"

#include <algorithm>

namespace verdictd::queueio {

MemoryQueue::MemoryQueue(std::vector<std::vector<std::uint8_t>> datagrams, std::size_t batch_size,
                         bool loop)
    : script_(std::move(datagrams)), batch_size_(std::max<std::size_t>(batch_size, 1)), loop_(loop) {
  batch_.resize(batch_size_);
}

ReceiveStatus MemoryQueue::Receive(ReceiveBatch& batch, bool /*block*/,
                                   int /*timeout_ms*/) noexcept {
  batch.datagrams = {};
  batch.last_errno = 0;
  std::size_t count = 0;
  while (count < batch_size_ && !script_.empty()) {
    if (next_ >= script_.size()) {
      if (!loop_) break;
      next_ = 0;
    }
    const auto& bytes = script_[next_++];
    batch_[count++] = Datagram{std::span<const std::uint8_t>(bytes.data(), bytes.size()), false};
  }
  if (count == 0) return ReceiveStatus::kWouldBlock;
  batch.datagrams = std::span<const Datagram>(batch_.data(), count);
  return ReceiveStatus::kOk;
}

SendStatus MemoryQueue::Send(std::span<const std::uint8_t> messages) noexcept {
  ++send_calls_;
  sent_bytes_ += messages.size();
  if (record_sends_) {
    // Test-only path: recording copies (and may allocate); turn it off in benchmarks.
    try {
      sent_.emplace_back(messages.begin(), messages.end());
    } catch (...) {
      return SendStatus::kError;
    }
  }
  return SendStatus::kOk;
}

}  // namespace verdictd::queueio
