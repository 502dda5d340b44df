#include "verdictd/service/daemon_metrics.h"

#include <spdlog/spdlog.h>

#include "verdictd/service/service.h"

namespace verdictd::service {

DaemonMetrics::DaemonMetrics(const config::MetricsSection& section) : section_(section) {
  if (section_.enabled) queues_ = std::make_shared<metrics::QueueCollector>();
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
