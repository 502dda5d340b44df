// The per-queue counters, declared once: one row per value a queue's
// WorkerCounters holds (its own fields, and the verdict batcher's
// BatcherStats inside it), with everything each consumer needs to show it:
//  - the Prometheus collector (collectors.h): family name, help, type, an
//    optional extra label that splits one family over several rows;
//  - the log summary the daemon writes when a queue stops or is removed
//    (service/queue_plan.h SummarizeCounters): the key, and whether a zero
//    is left out;
//  - `verdictd ctl status` (service/queue_status.h): the key.
// A null name leaves the row out of that consumer. A row marked per_verdict
// expands into one value per verdict kind (label `verdict`, and the kind's
// name as the log and status key).
//
// Adding a per-queue counter: the field (worker_counters.h, or BatcherStats
// in queueio when the batcher counts it), the line that counts it, and a
// row here. The consumers iterate the table and need no change.
//
// Plain constant data; the readers load relaxed (any thread, no locks).
#pragma once

#include <cstddef>
#include <cstdint>

#include "verdictd/metrics/worker_counters.h"

namespace verdictd::metrics {

enum class CounterKind : std::uint8_t { kCounter, kGauge };

// How the values of several workers of one queue (briefly two, around a
// reload) combine into the queue's value.
enum class Combine : std::uint8_t { kSum, kAny };

struct QueueCounter {
  const char* metric;       // Prometheus family; nullptr: not exported
  const char* help;
  CounterKind kind;
  const char* label_name;   // nullptr, or the label telling this row from the
  const char* label_value;  //   other rows of the same family
  const char* log_key;      // "packets" in "packets 10"; nullptr: not in the log summary
  bool log_omit_zero;       // leave the value out of the log summary while it is 0
  const char* status_key;   // "received" in "received=10"; nullptr: not in ctl status
  Combine combine;
  bool per_verdict;         // one value per verdict kind, `kind` the index of kVerdictLabels
  std::uint64_t (*read)(const WorkerCounters& counters, std::size_t kind) noexcept;
};

namespace internal {
inline std::uint64_t Load(const std::atomic<std::uint64_t>& value) noexcept {
  return value.load(std::memory_order_relaxed);
}
}  // namespace internal

// In the order the log summary and ctl status print them (ctl status puts
// the kernel's drops and backlog after the counters, then the gauges).
inline constexpr QueueCounter kQueueCounters[] = {
    {"verdictd_received_packets_total", "Packets received from the kernel queue.",
     CounterKind::kCounter, nullptr, nullptr, "packets", false, "received", Combine::kSum, false,
     [](const WorkerCounters& c, std::size_t) noexcept { return c.packets.value(); }},
    {"verdictd_received_bytes_total", "Original length of the packets received, in bytes.",
     CounterKind::kCounter, nullptr, nullptr, "bytes", false, nullptr, Combine::kSum, false,
     [](const WorkerCounters& c, std::size_t) noexcept { return c.bytes.value(); }},
    {"verdictd_verdicts_total", "Verdicts given, by kind (accept, drop, repeat, queue, stop).",
     CounterKind::kCounter, "verdict", nullptr, "", true, "", Combine::kSum, true,
     [](const WorkerCounters& c, std::size_t k) noexcept { return c.verdicts[k].value(); }},
    {nullptr, nullptr, CounterKind::kCounter, nullptr, nullptr, "gso_packets", false, nullptr,
     Combine::kSum, false,
     [](const WorkerCounters& c, std::size_t) noexcept { return c.gso_packets.value(); }},
    {nullptr, nullptr, CounterKind::kGauge, nullptr, nullptr, "max_packet_length", false, nullptr,
     Combine::kSum, false,
     [](const WorkerCounters& c, std::size_t) noexcept { return c.max_packet_length.value(); }},
    {"verdictd_verdict_sends_total", "Send system calls that carried verdicts.",
     CounterKind::kCounter, nullptr, nullptr, "verdict_sends", false, nullptr, Combine::kSum, false,
     [](const WorkerCounters& c, std::size_t) noexcept { return internal::Load(c.batcher.sends); }},
    {"verdictd_verdict_messages_total",
     "Verdict messages sent: type batch (NFQNL_MSG_VERDICT_BATCH, covers a run of ids) or single "
     "(NFQNL_MSG_VERDICT).",
     CounterKind::kCounter, "type", "batch", "batch_messages", false, nullptr, Combine::kSum, false,
     [](const WorkerCounters& c, std::size_t) noexcept {
       return internal::Load(c.batcher.batch_messages);
     }},
    {"verdictd_verdict_messages_total", nullptr, CounterKind::kCounter, "type", "single", nullptr,
     false, nullptr, Combine::kSum, false,
     [](const WorkerCounters& c, std::size_t) noexcept {
       return internal::Load(c.batcher.single_messages);
     }},
    {"verdictd_malformed_messages_total", "Netlink messages skipped as malformed.",
     CounterKind::kCounter, nullptr, nullptr, "malformed", false, nullptr, Combine::kSum, false,
     [](const WorkerCounters& c, std::size_t) noexcept { return c.malformed.value(); }},
    {"verdictd_unparseable_packets_total",
     "Malformed messages that still had a packet id and got the unparseable verdict.",
     CounterKind::kCounter, nullptr, nullptr, nullptr, false, nullptr, Combine::kSum, false,
     [](const WorkerCounters& c, std::size_t) noexcept { return c.unparseable_verdicts.value(); }},
    {"verdictd_kernel_errors_total",
     "Error replies from the kernel (for example a verdict for an unknown id).",
     CounterKind::kCounter, nullptr, nullptr, "kernel_errors", false, nullptr, Combine::kSum, false,
     [](const WorkerCounters& c, std::size_t) noexcept { return c.kernel_errors.value(); }},
    {"verdictd_enobufs_total",
     "ENOBUFS seen on receive (the socket buffer overflowed and messages were lost).",
     CounterKind::kCounter, nullptr, nullptr, "enobufs", false, nullptr, Combine::kSum, false,
     [](const WorkerCounters& c, std::size_t) noexcept { return c.enobufs.value(); }},
    {"verdictd_receive_errors_total", "Failed receive calls other than ENOBUFS.",
     CounterKind::kCounter, nullptr, nullptr, nullptr, false, nullptr, Combine::kSum, false,
     [](const WorkerCounters& c, std::size_t) noexcept { return c.receive_errors.value(); }},
    {"verdictd_send_errors_total", "Failed verdict send calls.", CounterKind::kCounter, nullptr,
     nullptr, "send_errors", false, nullptr, Combine::kSum, false,
     [](const WorkerCounters& c, std::size_t) noexcept { return c.send_errors.value(); }},
    {"verdictd_failed_verdicts_total",
     "Verdicts lost with a send the kernel refused; the kernel holds those packets until a later "
     "batch verdict covers them or the queue is unbound.",
     CounterKind::kCounter, nullptr, nullptr, "failed_verdicts", true, nullptr, Combine::kSum,
     false,
     [](const WorkerCounters& c, std::size_t) noexcept {
       return internal::Load(c.batcher.failed_verdicts);
     }},
    {"verdictd_oversized_replacements_total",
     "Verdicts whose replacement payload exceeded one netlink attribute (65531 bytes); the packet "
     "was dropped instead.",
     CounterKind::kCounter, nullptr, nullptr, "oversized_replacements", true, nullptr,
     Combine::kSum, false,
     [](const WorkerCounters& c, std::size_t) noexcept {
       return internal::Load(c.batcher.oversized_replacements);
     }},
    {"verdictd_connmark_stripped_total",
     "Connmark verdicts sent without their connmark because the kernel lacks "
     "nf_conntrack_netlink (it would ignore them).",
     CounterKind::kCounter, nullptr, nullptr, "connmarks_stripped", true, nullptr, Combine::kSum,
     false,
     [](const WorkerCounters& c, std::size_t) noexcept {
       return internal::Load(c.batcher.connmarks_stripped);
     }},
    {"verdictd_worker_stalls_total", "Times the queue's worker was found stalled.",
     CounterKind::kCounter, nullptr, nullptr, nullptr, false, nullptr, Combine::kSum, false,
     [](const WorkerCounters& c, std::size_t) noexcept { return c.stalls.value(); }},
    {"verdictd_worker_pending_verdicts",
     "Verdicts the worker holds, not yet sent (sampled once per loop).", CounterKind::kGauge,
     nullptr, nullptr, nullptr, false, "pending", Combine::kSum, false,
     [](const WorkerCounters& c, std::size_t) noexcept {
       return std::uint64_t{c.pending.load(std::memory_order_relaxed)};
     }},
    {"verdictd_worker_stalled",
     "1 while the queue's worker is stalled: packets wait for it and it has not come back to its "
     "receive loop within the stall bound.",
     CounterKind::kGauge, nullptr, nullptr, nullptr, false, "stalled", Combine::kAny, false,
     [](const WorkerCounters& c, std::size_t) noexcept {
       return std::uint64_t{c.stalled.load(std::memory_order_relaxed) ? 1u : 0u};
     }},
};

// The number of values of `row` (the verdict kinds for a per_verdict row, else 1).
constexpr std::size_t ValueCount(const QueueCounter& row) noexcept {
  return row.per_verdict ? kVerdictLabels.size() : 1;
}

// `so_far` (the value of the workers seen so far) combined with one more worker's `value`.
constexpr std::uint64_t Combined(const QueueCounter& row, std::uint64_t so_far,
                                 std::uint64_t value) noexcept {
  return row.combine == Combine::kSum ? so_far + value : (so_far != 0 || value != 0 ? 1 : 0);
}

// The log or status key of kind `kind` of `row`: its own key, or the verdict name.
constexpr const char* RowKey(const QueueCounter& row, const char* key, std::size_t kind) noexcept {
  return row.per_verdict ? kVerdictLabels[kind] : key;
}

}  // namespace verdictd::metrics
