#include "verdictd/service/daemon_metrics.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstring>

#include "verdictd/service/service.h"

namespace verdictd::service {

DaemonMetrics::DaemonMetrics(const config::MetricsSection& section) : section_(section) {
  if (!section_.enabled) return;
  queues_ = std::make_shared<metrics::QueueCollector>();
  if (queues_->kernel_stats_available()) return;
  // Said once, here: the scrape then exports verdictd_kernel_stats_available 0.
  const int err = queues_->kernel_stats_errno();
  spdlog::warn(
      "kernel queue metrics unavailable: cannot open {} ({}): the file is readable by root only "
      "(root:root, mode 0440) and verdictd started as uid {} without the group root or "
      "CAP_DAC_READ_SEARCH; verdictd_kernel_stats_available is 0 and the kernel's drop and "
      "backlog counters (verdictd_kernel_*) are not exported. Run the unit as it ships "
      "(SupplementaryGroups=root), or grant CAP_DAC_READ_SEARCH (verdictd drops it once the "
      "table is open), or start verdictd as root with [process] user set",
      queues_->kernel_stats_path(), std::strerror(err), ::getuid());
}

DaemonMetrics::~DaemonMetrics() { Stop(); }

void DaemonMetrics::Start(Service& service, const metrics::ServiceCounters& counters) {
  if (!section_.enabled) {
    spdlog::info("metrics: disabled ([metrics] enabled = false)");
    return;
  }
  // The collector outlives the service's use of these (Stop() forgets all).
  service.set_observer(
      {[queues = queues_](std::uint16_t queue, const metrics::WorkerCounters& worker) {
         queues->AddWorker(queue, worker);
       },
       [queues = queues_](std::uint16_t queue, const metrics::WorkerCounters& worker) {
         queues->RemoveWorker(queue, worker);
       }});
  server_ = std::make_unique<metrics::MetricsServer>(section_.listen);  // throws MetricsError
  server_->AddCollectable(queues_);
  server_->AddCollectable(std::make_shared<metrics::ServiceCollector>(&counters));
  spdlog::info("metrics: serving http://{}/metrics", section_.listen);
}

void DaemonMetrics::Stop() noexcept {
  server_.reset();
  if (queues_) queues_->RemoveWorkers();
}

}  // namespace verdictd::service
