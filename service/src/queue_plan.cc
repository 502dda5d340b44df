#include "verdictd/service/queue_plan.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <stdexcept>
#include <string>

#include "verdictd/config/changes.h"
#include "verdictd/config/limits.h"

namespace verdictd::service {
namespace {

queueio::CopyMode ToCopyMode(config::CopyMode mode) {
  return mode == config::CopyMode::kMeta ? queueio::CopyMode::kMeta : queueio::CopyMode::kPacket;
}

}  // namespace

std::vector<int> AllowedCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
      if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
    }
  }
  if (cpus.empty()) {
    const long online = sysconf(_SC_NPROCESSORS_ONLN);
    for (int cpu = 0; cpu < std::max(1L, online); ++cpu) cpus.push_back(cpu);
  }
  return cpus;
}

CpuMapping MapFanoutCpus(std::uint16_t first, std::size_t count, std::span<const int> allowed,
                         int cpu_count) {
  CpuMapping mapping;
  if (allowed.empty()) return mapping;
  const int highest = *std::max_element(allowed.begin(), allowed.end());
  cpu_count = std::max(cpu_count, highest + 1);
  std::string moved;
  for (std::size_t i = 0; i < count; ++i) {
    int chosen = -1;
    std::string feeders;
    for (int c = static_cast<int>(i); c < cpu_count; c += static_cast<int>(count)) {
      feeders += (feeders.empty() ? "" : ",") + std::to_string(c);
      if (chosen < 0 && std::find(allowed.begin(), allowed.end(), c) != allowed.end()) chosen = c;
    }
    if (chosen < 0) {
      chosen = allowed[i % allowed.size()];
      if (!feeders.empty()) {
        moved += (moved.empty() ? "" : "; ") + std::string("queue ") +
                 std::to_string(first + i) +
                 " (fed by CPU " + feeders + ") runs on CPU " + std::to_string(chosen);
      }
    }
    mapping.cpus.push_back(chosen);
  }
  if (!moved.empty()) {
    std::string list;
    for (int c : allowed) list += (list.empty() ? "" : ",") + std::to_string(c);
    mapping.warning = "--queue-cpu-fanout sends the packets of CPU c to queue " +
                      std::to_string(first) + " + c % " + std::to_string(count) + ", but this process may run only on CPU(s) " + list +
                      ": " + moved +
                      ", so those packets cross CPUs. Allow the feeding CPUs (taskset, "
                      "CPUAffinity=, cpuset), or match the firewall rule to the CPUs, or list "
                      "[[queues]] cpus explicitly";
  }
  return mapping;
}

std::vector<QueuePlan> PlanQueues(const config::Config& config, std::span<const int> cpus,
                                  std::string* warnings, int cpu_count) {
  if (cpus.empty()) throw std::runtime_error("no CPU available to run workers on");
  if (cpu_count <= 0) cpu_count = static_cast<int>(std::max(1L, sysconf(_SC_NPROCESSORS_CONF)));
  std::vector<QueuePlan> plan;
  for (std::size_t r = 0; r < config.queues.size(); ++r) {
    const config::QueueRange& range = config.queues[r];
    std::size_t count = range.count;
    if (count == config::QueueRange::kOnePerCpu) {
      count = range.cpus.empty() ? cpus.size() : range.cpus.size();
    }
    const std::string where = "queues[" + std::to_string(r) + "] (queues " +
                              std::to_string(range.first) + ".." +
                              std::to_string(range.first + count - 1) + ")";
    if (range.first + count - 1 > 65535) {
      throw std::runtime_error(where + ": queue numbers end at 65535; lower first or count");
    }
    if (!range.cpus.empty() && range.cpus.size() != count) {
      throw std::runtime_error(where + ": " + std::to_string(range.cpus.size()) +
                               " CPUs listed for " + std::to_string(count) +
                               " queues; list one CPU per queue or none");
    }
    CpuMapping mapping;
    if (range.cpus.empty()) {
      mapping = MapFanoutCpus(range.first, count, cpus, cpu_count);
      if (!mapping.warning.empty() && warnings != nullptr) {
        *warnings += (warnings->empty() ? "" : "\n") + where + ": " + mapping.warning;
      }
    }
    for (std::size_t i = 0; i < count; ++i) {
      QueuePlan entry;
      queueio::QueueOptions& q = entry.queue;
      q.queue_num = static_cast<std::uint16_t>(range.first + i);
      q.copy_mode = ToCopyMode(range.copy_mode);
      q.copy_range = range.copy_range;
      q.max_queue_length = range.max_length;
      q.fail_open = range.fail_open;
      q.gso = range.gso;
      q.conntrack = range.conntrack;
      q.uid_gid = range.uid_gid;
      q.secctx = range.secctx;
      q.receive_buffer_bytes = range.receive_buffer_bytes;
      q.batch_size = range.receive_batch;
      entry.cpu = range.cpus.empty() ? mapping.cpus[i] : range.cpus[i];
      entry.settings = range;
      entry.settings.first = config::QueueRange::kDefaultFirst;
      entry.settings.count = config::QueueRange::kOnePerCpu;
      entry.settings.cpus.clear();
      for (const QueuePlan& other : plan) {
        if (other.queue.queue_num == q.queue_num) {
          throw std::runtime_error(where + ": queue " + std::to_string(q.queue_num) +
                                   " is already in another range; ranges must not overlap");
        }
      }
      plan.push_back(entry);
    }
  }
  if (plan.empty()) throw std::runtime_error("no queue configured; give at least one queue");
  return plan;
}

WorkerOptions MakeWorkerOptions(const config::VerdictSection& verdict, std::size_t index,
                                std::uint16_t queue_num) {
  WorkerOptions options;
  options.index = index;
  options.queue_num = queue_num;
  options.batch_size = verdict.batch_size;
  // A reload may raise the batch size up to this without a restart.
  options.batch_capacity = config::limits::LiveBatchCapacity(verdict.batch_size);
  options.flush_interval_us = verdict.flush_interval_us;
  options.busy_poll_us = verdict.busy_poll_us;
  options.latency_budget_us = verdict.latency_budget_us;
  // Room for batch_capacity single verdicts with mark and connmark (up to 64
  // bytes each); a fuller buffer would only flush early. The worker caps it at
  // what one send to its socket may carry (VerdictSink::max_send_bytes()).
  options.send_buffer_bytes = std::max<std::size_t>(64 * 1024, options.batch_capacity * 64);
  return options;
}

std::string QueueSettingChanges(const QueuePlan& running, const QueuePlan& next) {
  std::string changes = config::QueueSettingChanges(running.settings, next.settings);
  if (running.cpu != next.cpu) {
    if (!changes.empty()) changes += ", ";
    changes += "cpu " + std::to_string(running.cpu) + " -> " + std::to_string(next.cpu);
  }
  return changes;
}

}  // namespace verdictd::service
