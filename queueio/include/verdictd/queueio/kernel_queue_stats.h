// The kernel's own view of the nfnetlink_queue queues, from
// /proc/net/netfilter/nfnetlink_queue: the one parser of that table, used at
// bind time (is the queue held by another socket?) and by the metrics scrape.
//
// The file lists the queues bound in the reading thread's network namespace
// (/proc/net follows the reader), one line per queue, written by the kernel's
// seq_show() in net/netfilter/nfnetlink_queue.c as
//   queue_num peer_portid queue_total copy_mode copy_range
//   queue_dropped queue_user_dropped id_sequence 1
// The counters are 32-bit in the kernel and wrap. The file is readable by
// root only (0440).
//
// Control plane only: allocates, never throws (an unreadable file or a line
// that does not parse is reported as absent). Thread-safe (no shared state).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace verdictd::queueio {

inline constexpr const char* kNfnetlinkQueueProcPath = "/proc/net/netfilter/nfnetlink_queue";

// One line of the table; fields named as in the kernel's seq_show().
struct KernelQueueStats {
  std::uint16_t queue_num = 0;
  std::uint32_t peer_portid = 0;    // netlink port id of the bound socket
  std::uint32_t queue_total = 0;    // packets waiting for a verdict now
  std::uint32_t copy_mode = 0;      // 0 none, 1 meta, 2 packet
  std::uint32_t copy_range = 0;
  std::uint32_t queue_dropped = 0;  // dropped because the queue was full (no fail-open)
  std::uint32_t user_dropped = 0;   // dropped because the netlink socket was full
  std::uint32_t id_sequence = 0;    // id of the last packet queued (a running count)
  bool operator==(const KernelQueueStats&) const = default;
};

// Every line of the file's text, in file order. Lines that do not have the
// expected form (fewer than eight unsigned fields, a queue number above
// 65535, a counter above 2^32-1) are skipped; extra trailing fields are fine
// (the kernel prints a constant 1 last, and a future kernel may add columns).
std::vector<KernelQueueStats> ParseKernelQueueTable(std::string_view proc_text);

// Reads and parses the file; nullopt when it cannot be read (not root, or no
// nfnetlink_queue in this kernel). An empty vector: no queue bound.
std::optional<std::vector<KernelQueueStats>> ReadKernelQueueTable(
    const std::string& path = kNfnetlinkQueueProcPath);

// The line of `queue_num` in the file's text; nullopt when the queue is not bound.
std::optional<KernelQueueStats> ParseKernelQueueStats(std::string_view proc_text,
                                                      std::uint16_t queue_num);

// Reads the file; nullopt when the queue is not bound or the file is unreadable.
std::optional<KernelQueueStats> ReadKernelQueueStats(
    std::uint16_t queue_num, const std::string& path = kNfnetlinkQueueProcPath);

}  // namespace verdictd::queueio
