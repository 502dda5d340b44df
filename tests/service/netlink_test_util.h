// Test helpers: builds nfnetlink_queue packet messages as the kernel sends
// them, and replays sent verdict buffers against a model of the kernel queue
// (including the batch-verdict rule: every queued id <= the given one).
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <span>
#include <string>
#include <vector>

namespace verdictd::service::testing {

struct PacketSpec {
  std::uint32_t id = 1;
  std::uint16_t queue = 0;
  std::size_t payload_size = 60;
  std::uint32_t original_length = 0;  // 0: payload_size
  bool gso = false;
};

// One NFQNL_MSG_PACKET message (nlmsghdr + nfgenmsg + attributes).
std::vector<std::uint8_t> PacketMessage(const PacketSpec& spec);
// The same, cut `cut` bytes short while claiming the full length inside the
// payload attribute (the packet header stays readable).
std::vector<std::uint8_t> BrokenPayloadMessage(std::uint32_t id, std::uint16_t queue);
// A NFQNL_MSG_PACKET without NFQA_PACKET_HDR.
std::vector<std::uint8_t> MessageWithoutHeader(std::uint16_t queue);
// NLMSG_ERROR carrying -error.
std::vector<std::uint8_t> ErrorMessage(int error);

// Datagrams with one packet message each, ids first..first+count-1.
std::vector<std::vector<std::uint8_t>> PacketDatagrams(std::uint32_t first, std::size_t count,
                                                        std::uint16_t queue = 0);

// The kernel's side: packets waiting for a verdict, and what they got.
class KernelModel {
 public:
  void Queue(std::uint32_t id) { queued_.insert(id); }
  void QueueRange(std::uint32_t first, std::size_t count) {
    for (std::size_t i = 0; i < count; ++i) Queue(first + static_cast<std::uint32_t>(i));
  }
  // Applies every verdict message of one sent buffer, in order. Returns false
  // (and records a problem) on malformed messages or verdicts for ids that
  // are not queued.
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
  std::map<std::uint32_t, std::uint32_t> verdicts_;
  std::vector<std::string> problems_;
  std::size_t batch_messages_ = 0;
  std::size_t single_messages_ = 0;
};

}  // namespace verdictd::service::testing
