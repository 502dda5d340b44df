#include "kernel_model.h"

#include <linux/netfilter/nfnetlink_queue.h>

#include <algorithm>

#include "verdictd/test_fixtures/netlink_messages.h"

namespace verdictd::service::testing {

void KernelModel::Apply(std::span<const std::uint8_t> buffer) {
  const auto messages = test_fixtures::DecodeVerdicts(buffer);
  if (!messages) {
    problems_.push_back("malformed verdict buffer of " + std::to_string(buffer.size()) + " bytes");
    return;
  }
  for (const test_fixtures::DecodedVerdict& message : *messages) {
    const std::uint32_t id = message.id;
    if (message.type == NFQNL_MSG_VERDICT) {
      ++single_messages_;
      if (queued_.erase(id) == 0) {
        problems_.push_back("verdict for id " + std::to_string(id) + " which is not queued");
      } else {
        order_.erase(std::find(order_.begin(), order_.end(), id));
        verdicts_[id] = message.verdict;
      }
    } else if (message.type == NFQNL_MSG_VERDICT_BATCH) {
      ++batch_messages_;
      // The kernel's walk: from the head, until an id after `id`.
      std::size_t covered = 0;
      while (!order_.empty() && static_cast<std::int32_t>(order_.front() - id) <= 0) {
        verdicts_[order_.front()] = message.verdict;
        queued_.erase(order_.front());
        order_.pop_front();
        ++covered;
      }
      if (covered == 0) problems_.push_back("batch verdict up to " + std::to_string(id) + " covers nothing");
    } else {
      problems_.push_back("unexpected message type " + std::to_string(message.type));
    }
  }
}

}  // namespace verdictd::service::testing
