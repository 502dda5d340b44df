// What one worker (one queue) counts on its hot path. One instance per worker,
// cache-line aligned so two workers never share a line; the worker is the only
// writer, the scrape reads. How each value is exported, logged and shown by
// `ctl status` is declared once, in queue_counters.h: a new per-queue counter
// is a field here (or in queueio::BatcherStats), the line that counts it and
// a row there.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

#include "verdictd/base/false_sharing.h"
#include "verdictd/base/verdict_kind.h"
#include "verdictd/metrics/latency_histogram.h"
#include "verdictd/metrics/relaxed_counter.h"
#include "verdictd/queueio/verdict_batcher.h"

namespace verdictd::metrics {

// The `verdict` label of each verdict kind, indexed by the kind (the one
// name table, base/verdict_kind.h).
inline constexpr std::array<const char*, base::kVerdictKindCount> kVerdictLabels =
    base::VerdictKindNames();

struct alignas(base::kFalseSharingRange) WorkerCounters {
  RelaxedCounter packets;          // packets received and parsed
  RelaxedCounter bytes;            // original length of those packets
  RelaxedCounter gso_packets;      // GSO super-packets among them (may exceed the MTU)
  RelaxedMax max_packet_length;    // longest original length seen, in bytes
  std::array<RelaxedCounter, kVerdictLabels.size()> verdicts;
  RelaxedCounter malformed;        // messages skipped as malformed
  RelaxedCounter unparseable_verdicts;  // malformed messages that still had an id and got a verdict
  RelaxedCounter kernel_errors;    // NLMSG_ERROR replies (e.g. verdict for an unknown id)
  RelaxedCounter enobufs;          // ENOBUFS seen on receive
  RelaxedCounter receive_errors;
  RelaxedCounter send_errors;
  // Sends, messages, and the verdicts lost or changed on the way: the worker's
  // VerdictBatcher writes these itself (it is constructed with this address).
  queueio::BatcherStats batcher;
  LatencyHistogram verdict_latency;  // receive -> verdict sent
  LatencyHistogram kernel_delay;     // kernel timestamp -> receive (when present)

  // Worker state, written by the worker when it starts and stops (never per
  // packet), read by the scrape: verdictd_worker_up, verdictd_worker_cpu and
  // the worker's own CPU time (from /proc/self/task/<tid>/stat).
  std::atomic<bool> up{false};  // true while the worker runs its receive loop
  std::atomic<int> cpu{-1};     // CPU it is pinned to, -1 when not pinned
  std::atomic<int> tid{0};      // gettid() of the worker thread, 0 unknown

  // Progress, for readiness and the watchdog (service/watchdog.h). The worker
  // stores `heartbeat` (loop iterations, first store when it enters its
  // receive loop) and `pending` (verdicts it holds) once per loop iteration,
  // never per packet. The watchdog (control thread) is the single writer of
  // `stalled` and `stalls`.
  std::atomic<std::uint64_t> heartbeat{0};
  std::atomic<std::uint32_t> pending{0};
  std::atomic<bool> stalled{false};
  RelaxedCounter stalls;  // times the worker was found stalled

  // What the kernel acknowledged when the queue was bound (written once
  // before the worker starts): NFQA_CFG_F_* bits, copy mode and range asked,
  // maximum queue length. The scrape compares copy mode and range with the
  // kernel's own table.
  struct Posture {
    std::atomic<std::uint32_t> flags{0};
    std::atomic<std::uint32_t> max_length{0};
    std::atomic<bool> bound{false};
  } posture;
};

}  // namespace verdictd::metrics
