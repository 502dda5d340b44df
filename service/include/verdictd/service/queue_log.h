// The one-line texts the daemon logs about a queue: how it was bound (at
// start, on adoption, when a reload adds it) and its counters (when it is
// removed and when the daemon stops). Control plane: allocates the string;
// never throws beyond std::bad_alloc.
#pragma once

#include <cstdint>
#include <string>

#include "verdictd/metrics/worker_counters.h"
#include "verdictd/queueio/queue_socket.h"
#include "verdictd/service/queue_plan.h"

namespace verdictd::service {

// One line per queue: copy mode, flags, CPU, receive buffer achieved.
std::string DescribeQueue(const QueuePlan& plan, const queueio::BindReport& report);

// One line of a worker's counters for the log ("queue 3: packets 10 ...").
std::string SummarizeCounters(std::uint16_t queue_num, const metrics::WorkerCounters& counters);

}  // namespace verdictd::service
