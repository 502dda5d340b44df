// What the extension host counts per extension and worker: plain
// single-writer counters (the worker thread that runs the extension),
// summed over the workers at scrape time. Registered once per extension name
// and kept for the life of the process, so the counters stay monotonic across
// unload and load and a late completion never writes to freed memory.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "verdictd/base/false_sharing.h"
#include "verdictd/metrics/latency_histogram.h"
#include "verdictd/metrics/relaxed_counter.h"

namespace verdictd::extensions {

// Result labels, in verdictd_result_t order.
inline constexpr std::array<const char*, 7> kResultLabels = {"accept", "drop",  "next",   "altered",
                                                             "repeat", "queue", "pending"};
// Counters an extension may declare (counter_names); more are ignored.
inline constexpr std::size_t kMaxExtensionCounters = 16;

struct alignas(base::kFalseSharingRange) ExtensionWorkerCounters {
  metrics::RelaxedCounter calls;   // process() calls
  std::array<metrics::RelaxedCounter, kResultLabels.size()> results;
  metrics::RelaxedCounter errors;  // bad results, failed edits, refused rewrites
  metrics::RelaxedCounter timeouts;   // pending packets given the timeout verdict
  metrics::RelaxedCounter overflows;  // packets that found the pending table full
  metrics::RelaxedCounter late;       // completions after the timeout (ignored)
  metrics::RelaxedCounter pending_started;   // PENDING results
  metrics::RelaxedCounter pending_finished;  // of those, verdicts given (completed or timed out)
  // process() time, sampled (one call in kTimingSample) so that the clock
  // reads stay off most packets.
  metrics::LatencyHistogram process_time;
  std::array<metrics::RelaxedCounter, kMaxExtensionCounters> custom;
};

inline constexpr std::uint64_t kTimingSample = 64;

// The counters of one extension name, one block per worker slot.
struct ExtensionCounters {
  ExtensionCounters(std::string extension_name, std::size_t worker_slots)
      : name(std::move(extension_name)), workers(worker_slots) {}
  std::string name;
  std::vector<std::string> counter_names;  // set at the first load (control thread)
  std::vector<ExtensionWorkerCounters> workers;
};

}  // namespace verdictd::extensions
