// The kernel's side of a verdict exchange, for the service tests: packets
// waiting for a verdict, in the order they were queued, and what the verdict
// messages a worker sent did to them. A batch verdict follows
// nfqnl_recv_verdict_batch exactly: it takes packets from the head of the
// queue until the first one whose id is after the given one in 32-bit serial
// order (nfq_id_after: (int)(id - max) > 0), so ids that wrapped past
// 0xffffffff to 0 are covered like any others. The messages are decoded by
// the shared test_fixtures::DecodeVerdicts. Not thread-safe; allocates.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <set>
#include <span>
#include <string>
#include <vector>

namespace verdictd::service::testing {

class KernelModel {
 public:
  void Queue(std::uint32_t id) {
    queued_.insert(id);
    order_.push_back(id);
  }
  void QueueRange(std::uint32_t first, std::size_t count) {
    for (std::size_t i = 0; i < count; ++i) Queue(first + static_cast<std::uint32_t>(i));
  }
  // Applies every verdict message of one sent buffer, in order. Records a
  // problem for a malformed buffer (nothing of it is applied), a verdict for
  // an id that is not queued, or a batch verdict that covers nothing (the
  // kernel answers both with ENOENT).
  void Apply(std::span<const std::uint8_t> buffer);
  void ApplyAll(const std::vector<std::vector<std::uint8_t>>& buffers) {
    for (const auto& b : buffers) Apply(b);
  }

  // id -> NF_* verdict code (NF_ACCEPT = 1, NF_DROP = 0, ...).
  const std::map<std::uint32_t, std::uint32_t>& verdicts() const { return verdicts_; }
  const std::set<std::uint32_t>& still_queued() const { return queued_; }
  const std::vector<std::string>& problems() const { return problems_; }
  std::size_t batch_messages() const { return batch_messages_; }
  std::size_t single_messages() const { return single_messages_; }

 private:
  std::set<std::uint32_t> queued_;
  std::deque<std::uint32_t> order_;  // the kernel's queue_list: arrival order
  std::map<std::uint32_t, std::uint32_t> verdicts_;
  std::vector<std::string> problems_;
  std::size_t batch_messages_ = 0;
  std::size_t single_messages_ = 0;
};

}  // namespace verdictd::service::testing
