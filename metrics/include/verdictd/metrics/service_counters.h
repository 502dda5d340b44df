// Counters of the service as a whole (not of one queue): written by the
// control plane (reload, control commands), read by the metrics scrape.
// One instance, owned by main and handed to whoever writes or reads it.
#pragma once

#include <atomic>
#include <cstdint>

#include "verdictd/metrics/relaxed_counter.h"

namespace verdictd::metrics {

struct ServiceCounters {
  RelaxedCounter reloads;          // configurations applied live
  RelaxedCounter reload_failures;  // reloads refused (invalid file, restart-only change)
  RelaxedCounter control_requests; // commands served on the control socket
  RelaxedCounter control_errors;   // malformed or failed control commands

  // Gauges the control thread sets (startup, each reload).
  std::atomic<int> conntrack_netlink{-1};  // 1: nf_conntrack_netlink present, 0 absent, -1 unknown
  // Rules with bypass_via = "connmark" that bypass through the packet mark
  // because the kernel lacks nf_conntrack_netlink (service/build_policy.h).
  std::atomic<std::uint32_t> connmark_bypass_fallback_rules{0};
};

}  // namespace verdictd::metrics
