// The prometheus::Collectable objects verdictd exposes. Each one builds its
// metric families at scrape time from plain memory the rest of the service
// writes (Seastar's rule: counters are fields, the metrics layer reads them),
// so nothing here runs on the packet path.
//
// Thread-safety: Collect() may run on the HTTP server's threads while the
// workers count; registration (AddWorker) is safe at any time (a mutex held
// only at registration and scrape). Ownership: collectors keep plain pointers
// to counters the service owns; those must outlive the collectors' last
// Collect() (stop the MetricsServer before destroying the workers).
//
// Metric names: verdictd_ prefix, base units, _total on counters, label
// `queue` on everything per queue. See metrics/README.md for the list.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include "verdictd/metrics/service_counters.h"
#include "verdictd/metrics/worker_counters.h"
#include "verdictd/queueio/kernel_queue_stats.h"

namespace verdictd::metrics {

// Per-queue metrics: the workers' counters (summed over every worker
// registered for a queue) and the kernel's queue stats for those queues.
class QueueCollector final : public prometheus::Collectable {
 public:
  // `kernel_stats_path`: where the kernel's queue table is read (tests point it
  // at a file); empty disables the kernel metrics. The file is opened here and
  // kept open: it is readable by root only (0440), and the open descriptor
  // keeps working after the daemon drops privileges, in the network namespace
  // it was opened in. Construct the collector before dropping privileges.
  explicit QueueCollector(std::string kernel_stats_path = queueio::kNfnetlinkQueueProcPath);
  ~QueueCollector() override;
  QueueCollector(const QueueCollector&) = delete;
  QueueCollector& operator=(const QueueCollector&) = delete;

  // Registers the counters of the worker serving `queue`. Not owned.
  void AddWorker(std::uint16_t queue, const WorkerCounters& counters);
  // Forgets the worker of `queue` with these counters (a queue removed while
  // running; call before its counters are destroyed). Its series disappear
  // from the next scrape.
  void RemoveWorker(std::uint16_t queue, const WorkerCounters& counters);
  // Forgets every worker (call before their counters are destroyed).
  void RemoveWorkers();

  // Whether the kernel's queue table is open (false: the constructor's open
  // failed, with kernel_stats_errno(); the scrape then exports
  // verdictd_kernel_stats_available 0 and no verdictd_kernel_* family).
  bool kernel_stats_available() const;
  int kernel_stats_errno() const;
  const std::string& kernel_stats_path() const { return kernel_stats_path_; }
  // The kernel's queue table read now through the held descriptor (for
  // `verdictd ctl status`); nullopt when it cannot be read.
  std::optional<std::vector<queueio::KernelQueueStats>> ReadKernelTable() const;

  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  mutable std::mutex mutex_;
  std::map<std::uint16_t, std::vector<const WorkerCounters*>> workers_;
  std::string kernel_stats_path_;
  mutable int kernel_stats_fd_ = -1;  // guarded by mutex_
  int kernel_stats_errno_ = 0;
};

// Service-wide metrics: reloads, control requests, and build info.
class ServiceCollector final : public prometheus::Collectable {
 public:
  // `counters` is not owned; nullptr exports build info only.
  explicit ServiceCollector(const ServiceCounters* counters, std::string version = "");
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  const ServiceCounters* counters_;
  std::string version_;
};

// The usual process metrics (process_cpu_seconds_total,
// process_resident_memory_bytes, process_virtual_memory_bytes,
// process_open_fds, process_max_fds, process_start_time_seconds) under the
// names every Prometheus client library uses, so stock dashboards work.
class ProcessCollector final : public prometheus::Collectable {
 public:
  std::vector<prometheus::MetricFamily> Collect() const override;
};

// The families of `collectable` in the text exposition format (tests, and a
// future `verdictctl stats`).
std::string SerializeText(const prometheus::Collectable& collectable);

// The version string compiled into the library (the project's version).
const char* BuildVersion() noexcept;

}  // namespace verdictd::metrics
