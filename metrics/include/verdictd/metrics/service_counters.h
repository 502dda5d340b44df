// Counters of the service as a whole (not of one queue): written by the
// control plane (reload, control commands), read by the metrics scrape.
// One instance, owned by main and handed to whoever writes or reads it.
#pragma once

#include "verdictd/metrics/relaxed_counter.h"

namespace verdictd::metrics {

struct ServiceCounters {
  RelaxedCounter reloads;          // configurations applied live
  RelaxedCounter reload_failures;  // reloads refused (invalid file, restart-only change)
  RelaxedCounter control_requests; // commands served on the control socket
  RelaxedCounter control_errors;   // malformed or failed control commands
};

}  // namespace verdictd::metrics
