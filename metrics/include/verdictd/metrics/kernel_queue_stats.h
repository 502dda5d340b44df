// The kernel's own view of each nfnetlink_queue queue, from
// /proc/net/netfilter/nfnetlink_queue.
//
// That file lists the queues bound in the reading thread's network namespace
// (/proc/net follows the reader), one line per queue, written by the kernel's
// seq_show() in net/netfilter/nfnetlink_queue.c as
//   queue_num peer_portid queue_total copy_mode copy_range
//   queue_dropped queue_user_dropped id_sequence 1
// queue_dropped counts packets dropped because the queue held max_len
// packets (without fail-open), queue_user_dropped those dropped because the
// netlink socket's receive buffer was full. Both are 32-bit in the kernel
// and wrap. Read at scrape time only (control plane: allocates, never throws).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace verdictd::metrics {

inline constexpr const char* kKernelQueueStatsPath = "/proc/net/netfilter/nfnetlink_queue";

struct KernelQueueStats {
  std::uint16_t queue_num = 0;
  std::uint32_t peer_portid = 0;    // netlink port id of the bound socket
  std::uint32_t waiting = 0;        // queue_total: packets waiting for a verdict
  std::uint32_t copy_mode = 0;
  std::uint32_t copy_range = 0;
  std::uint32_t queue_dropped = 0;  // queue full
  std::uint32_t user_dropped = 0;   // socket receive buffer full
  std::uint32_t last_id = 0;        // id_sequence: id of the last packet queued
  bool operator==(const KernelQueueStats&) const = default;
};

// Parses the file's text; lines that do not have the expected form are
// skipped (a future kernel may add columns: extra trailing fields are fine).
std::vector<KernelQueueStats> ParseKernelQueueStats(std::string_view text);

// Reads and parses `path`; std::nullopt when it cannot be read (no
// nfnetlink_queue in this kernel). An empty vector: no queue bound.
std::optional<std::vector<KernelQueueStats>> ReadKernelQueueStats(
    const std::string& path = kKernelQueueStatsPath);

}  // namespace verdictd::metrics
