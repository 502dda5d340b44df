// Turning the configuration's queue ranges into one entry per queue number
// (how to bind it, which CPU its worker runs on; what a reload would change
// about a queue). The lines the daemon logs about a queue are queue_log.h.
// Startup and control plane: may allocate; the
// functions that can fail throw std::runtime_error with a one-line message
// naming the range and what to do.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "verdictd/config/config.h"
#include "verdictd/queueio/queue_socket.h"
#include "verdictd/service/worker.h"

namespace verdictd::service {

// One queue of the plan: how to bind it and where its worker runs.
struct QueuePlan {
  queueio::QueueOptions queue;
  int cpu = -1;  // -1: not pinned
  // The [[queues]] settings `queue` was made from (first, count and cpus
  // left at their defaults): what a reload compares for a queue that stays.
  config::QueueRange settings;
};

// The CPUs this process may run on, ascending (sched_getaffinity).
std::vector<int> AllowedCpus();

// Where the workers of a range of `count` queues run by default, so that
// `--queue-cpu-fanout` (which queues CPU c's packets to first + c % count)
// finds each queue served on a CPU that feeds it: queue first+i goes to the
// lowest CPU c in `allowed` with c % count == i, among the `cpu_count` CPUs
// of the machine. When none of the CPUs that feed a queue is allowed
// (restricted affinity: taskset, CPUAffinity=, cpusets), that queue runs on
// allowed[i % allowed.size()] and `warning` says which queues, what was done
// and what to do. Queues no CPU feeds (i >= cpu_count) also take
// allowed[i % allowed.size()], silently. `allowed` must not be empty.
struct CpuMapping {
  std::vector<int> cpus;  // one per queue of the range
  std::string warning;    // empty when every fed queue is on a CPU that feeds it
};
CpuMapping MapFanoutCpus(std::uint16_t first, std::size_t count, std::span<const int> allowed,
                         int cpu_count);

// Expands the config's queue ranges into one entry per queue number: a range
// with count 0 gets one queue per CPU in `cpus`; worker i of a range is pinned
// to range.cpus[i] or, without a list, as MapFanoutCpus() says (`cpu_count`
// 0: the machine's configured CPUs). Throws std::runtime_error on
// overlapping ranges, ranges past queue 65535, or a CPU list whose length
// does not match the queue count. `warnings` (optional) receives the
// MapFanoutCpus() warnings, one line per range.
std::vector<QueuePlan> PlanQueues(const config::Config& config, std::span<const int> cpus,
                                  std::string* warnings = nullptr, int cpu_count = 0);

// The worker settings of one queue from the verdict section.
WorkerOptions MakeWorkerOptions(const config::VerdictSection& verdict, std::size_t index,
                                std::uint16_t queue_num);

// The settings of a queue that stays across a reload but would change, as
// "copy_range 64 -> 128, cpu 0 -> 1"; empty when it may keep running as it is.
std::string QueueSettingChanges(const QueuePlan& running, const QueuePlan& next);

}  // namespace verdictd::service
