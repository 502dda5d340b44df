// Encodes verdict messages for nfnetlink_queue into caller-owned buffers.
//
// No allocation, no syscalls, never throws. Each function appends one
// netlink message at `out` and returns its aligned size, or 0 when `out` is
// too small or the verdict cannot be encoded (a replacement longer than the
// 16-bit attribute length allows, a payload or connmark in a batch); nothing
// is written then.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "verdictd/queueio/verdict.h"

namespace verdictd::queueio {

// NFQNL_MSG_VERDICT for one packet, with the optional mark, connmark and
// replacement payload of `verdict`.
std::size_t EncodeVerdict(std::span<std::uint8_t> out, std::uint16_t queue_num, std::uint32_t id,
                          const Verdict& verdict, std::uint32_t seq) noexcept;

// NFQNL_MSG_VERDICT_BATCH: the kernel applies `verdict` (and its mark, if any)
// to the packets at the head of the queue (oldest first) up to the first one
// whose id comes after `last_id` in 32-bit serial order, so a run of ids that
// wrapped past 0xffffffff to 0 is covered whole. `verdict` must not
// carry a replacement payload or connmark (the kernel ignores them in a batch).
std::size_t EncodeBatchVerdict(std::span<std::uint8_t> out, std::uint16_t queue_num,
                               std::uint32_t last_id, const Verdict& verdict,
                               std::uint32_t seq) noexcept;

// Upper bound of EncodeVerdict's size for a payload of `payload_size` bytes.
constexpr std::size_t MaxVerdictMessageSize(std::size_t payload_size) noexcept {
  return 256 + ((payload_size + 3) & ~std::size_t{3});
}

}  // namespace verdictd::queueio
