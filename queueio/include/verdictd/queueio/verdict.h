// What userspace answers for one packet. Plain data, no allocation.
#pragma once

#include <cstdint>
#include <span>

namespace verdictd::queueio {

// The verdicts nfnetlink_queue accepts (NF_ACCEPT, NF_DROP, NF_REPEAT,
// NF_QUEUE with a target queue number, NF_STOP).
enum class VerdictKind : std::uint8_t { kAccept, kDrop, kRepeat, kQueue, kStop };
inline constexpr int kVerdictKindCount = 5;

// Stable lowercase names, used in logs, config and metric labels.
const char* VerdictKindName(VerdictKind kind) noexcept;

struct Verdict {
  VerdictKind kind = VerdictKind::kAccept;
  std::uint16_t target_queue = 0;  // only for kQueue

  bool set_mark = false;
  std::uint32_t mark = 0;
  bool set_connmark = false;
  std::uint32_t connmark = 0;

  // Non-empty: the packet's bytes are replaced by these (network header
  // first). The span must stay valid until the verdict is flushed.
  std::span<const std::uint8_t> replacement;

  // Plain verdicts (no mark, connmark or payload) may be folded into one
  // NFQNL_MSG_VERDICT_BATCH with their neighbours.
  bool plain() const noexcept { return !set_mark && !set_connmark && replacement.empty(); }

  static constexpr Verdict Accept() noexcept { return Verdict{}; }
  static constexpr Verdict Drop() noexcept {
    Verdict v;
    v.kind = VerdictKind::kDrop;
    return v;
  }
  static constexpr Verdict ToQueue(std::uint16_t queue) noexcept {
    Verdict v;
    v.kind = VerdictKind::kQueue;
    v.target_queue = queue;
    return v;
  }
};

}  // namespace verdictd::queueio
