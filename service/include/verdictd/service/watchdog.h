// Stall detection for the workers, behind systemd's watchdog (WatchdogSec=)
// and the verdictd_worker_stalled / verdictd_worker_stalls_total metrics.
//
// A worker is stalled when work waits for it (its socket is readable, it
// holds verdicts not yet sent, or the kernel holds packets for it) and its heartbeat (WorkerCounters::heartbeat,
// one per loop iteration) has not moved for `stall_bound`. An idle worker is
// never stalled: its blocking receive times out every stop_check_ms and the
// loop comes round anyway, and nothing waits for it. The daemon pings the
// watchdog only while Check() says every worker makes progress, so a hung
// worker makes systemd restart the service.
//
// Control thread only (not thread-safe); allocates; never throws except
// std::bad_alloc.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "verdictd/metrics/worker_counters.h"

namespace verdictd::service {

// One worker as the watchdog sees it at one instant.
struct WorkerProgress {
  std::uint16_t queue = 0;
  std::uint64_t heartbeat = 0;
  bool work_waiting = false;  // readable socket, pending verdicts or a kernel backlog
  // Where stalled/stalls are recorded; may be nullptr (tests).
  metrics::WorkerCounters* counters = nullptr;
};

class WorkerWatchdog {
 public:
  explicit WorkerWatchdog(std::uint64_t stall_bound_ns) : stall_bound_ns_(stall_bound_ns) {}

  // Updates the state from one sample of every running worker; returns true
  // when none is stalled. A worker that becomes stalled is logged once (with
  // its queue, how long and what waits) and counted; one that recovers is
  // logged once. Workers missing from `workers` are forgotten.
  bool Check(std::span<const WorkerProgress> workers, std::uint64_t now_ns);

  // Queues stalled at the last Check(), ascending.
  std::vector<std::uint16_t> stalled() const;
  std::uint64_t stall_bound_ns() const noexcept { return stall_bound_ns_; }

 private:
  struct State {
    std::uint64_t heartbeat = 0;
    std::uint64_t since_ns = 0;  // when the heartbeat last moved (or work began to wait)
    bool stalled = false;
    bool waiting = false;  // work waited at the last sample
  };
  std::uint64_t stall_bound_ns_;
  std::map<std::uint16_t, State> states_;
};

// "queues 0-1 bound, 2 workers, generation 3, 1234 verdicts" (the STATUS=
// line), with ", queue 1 stalled" appended for stalled queues.
std::string QueueSummary(std::span<const std::uint16_t> queues, std::uint64_t generation,
                         std::uint64_t verdicts, std::span<const std::uint16_t> stalled);

}  // namespace verdictd::service
