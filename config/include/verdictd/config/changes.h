// What a reload may change while verdictd runs, and what needs a restart.
//
// Live (swapped in between two receive batches): verdict.default,
// verdict.unparseable, [log] level and the rules. Restart-only: [[queues]]
// (ranges and their socket settings), [metrics], [control] and [process]
// user, because they are bound to sockets, threads or privileges that exist
// once per process, and verdict.batch_size / flush_interval_us /
// busy_poll_us, which each worker takes once when it starts.
#pragma once

#include <string>
#include <vector>

#include "verdictd/config/config.h"

namespace verdictd::config {

// The keys that differ between `running` and `next` and cannot change live,
// as dotted paths ("queues[1].count", "metrics.listen"); empty when `next`
// can be applied by a reload.
std::vector<std::string> RestartOnlyChanges(const Config& running, const Config& next);

// Every key that differs, live or not (for the reload log line).
std::vector<std::string> ChangedKeys(const Config& running, const Config& next);

}  // namespace verdictd::config
