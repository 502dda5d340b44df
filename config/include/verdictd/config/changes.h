// What a reload may change while verdictd runs, and what needs a restart.
//
// Live (swapped in between two receive batches): verdict.default,
// verdict.unparseable, the batching keys (verdict.batch_size up to
// max(limits::kLiveBatchSizeCapacity, the running value), flush_interval_us,
// busy_poll_us), [log] level and the rules. [[queues]] changes are live when
// the caller can add and remove queues (QueueChanges::kLive): the service
// then checks, per queue number, that a queue which stays keeps its settings.
// Restart-only: [metrics], [control] and [process] user, because they are
// bound to sockets or privileges that exist once per process.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "verdictd/config/config.h"

namespace verdictd::config {

// Whether the caller applies [[queues]] changes live (the daemon) or not.
enum class QueueChanges : std::uint8_t { kRestart, kLive };

// The keys that differ between `running` and `next` and cannot change live,
// as dotted paths ("queues[1].count", "metrics.listen"); empty when `next`
// can be applied by a reload.
std::vector<std::string> RestartOnlyChanges(const Config& running, const Config& next,
                                            QueueChanges queues = QueueChanges::kRestart);

// Every key that differs, live or not (for the reload log line).
std::vector<std::string> ChangedKeys(const Config& running, const Config& next);

// The settings of one queue (the [[queues]] keys other than first, count
// and cpus) that differ, as "copy_range 65535 -> 128, fail_open 1 -> 0";
// empty when there are none. A queue that stays across a reload keeps its
// socket, so the service refuses these changes naming them.
std::string QueueSettingChanges(const QueueRange& running, const QueueRange& next);

}  // namespace verdictd::config
