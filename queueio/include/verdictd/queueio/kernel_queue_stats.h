// The kernel's own view of one queue, from /proc/net/netfilter/nfnetlink_queue
// (per network namespace: the reader's namespace decides what it sees).
//
// Control plane only (reads a file, allocates); meant for the metrics scrape
// and for diagnosing bind failures. Thread-safe (no shared state).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace verdictd::queueio {

struct KernelQueueStats {
  std::uint16_t queue_num = 0;
  std::uint32_t peer_portid = 0;   // netlink port id of the bound socket
  std::uint32_t queue_total = 0;   // packets waiting for a verdict now
  std::uint32_t copy_mode = 0;     // 0 none, 1 meta, 2 packet
  std::uint32_t copy_range = 0;
  std::uint32_t queue_dropped = 0; // dropped because the queue was full (no fail-open)
  std::uint32_t user_dropped = 0;  // dropped because the netlink socket was full
  std::uint32_t id_sequence = 0;   // last packet id handed out
};

inline constexpr const char* kNfnetlinkQueueProcPath = "/proc/net/netfilter/nfnetlink_queue";

// The line of `queue_num` in the file's text; nullopt when the queue is not bound.
std::optional<KernelQueueStats> ParseKernelQueueStats(std::string_view proc_text,
                                                      std::uint16_t queue_num);

// Reads the file; nullopt when the queue is not bound or the file is unreadable
// (it is readable by root only).
std::optional<KernelQueueStats> ReadKernelQueueStats(
    std::uint16_t queue_num, const char* path = kNfnetlinkQueueProcPath);

}  // namespace verdictd::queueio
