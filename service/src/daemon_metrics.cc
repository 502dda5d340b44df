#include "verdictd/service/daemon_metrics.h"

#include <spdlog/spdlog.h>

#include "verdictd/service/service.h"

namespace verdictd::service {

DaemonMetrics::DaemonMetrics(const config::MetricsSection& section) : section_(section) {
  if (section_.enabled) queues_ = std::make_shared<metrics::QueueCollector>();
}

DaemonMetrics::~DaemonMetrics() { Stop(); }

void DaemonMetrics::Start(const Service& service, const metrics::ServiceCounters& counters) {
  if (!section_.enabled) {
    spdlog::info("metrics: disabled ([metrics] enabled = false)");
    return;
  }
  const auto workers = service.counters();
  for (std::size_t i = 0; i < workers.size(); ++i) {
    queues_->AddWorker(service.plan()[i].queue.queue_num, workers[i]);
  }
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
