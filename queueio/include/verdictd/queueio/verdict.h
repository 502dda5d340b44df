// What userspace answers for one packet. Plain data, no allocation.
#pragma once

#include <cstdint>
#include <span>

#include "verdictd/base/verdict_kind.h"

namespace verdictd::queueio {

// The verdicts nfnetlink_queue accepts (NF_ACCEPT, NF_DROP, NF_REPEAT,
// NF_QUEUE with a target queue number, NF_STOP): the project's one list of
// verdict kinds, with their names and kernel codes (base/verdict_kind.h).
using base::VerdictKind;

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

  // A plain verdict of `kind`, e.g. from a configured verdict setting
  // (`target_queue` matters only for kinds that take one).
  static constexpr Verdict Of(VerdictKind kind, std::uint16_t target_queue = 0) noexcept {
    Verdict v;
    v.kind = kind;
    v.target_queue = target_queue;
    return v;
  }
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
