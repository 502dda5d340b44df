// The daemon's /metrics endpoint: the metrics library wired to the running
// service (its workers' counters, the service-wide counters, the kernel's
// queue table). main.cc creates one and calls Start() and Stop(); everything
// else lives here.
//
// Startup functions throw metrics::MetricsError (one line naming the address
// and what to do; the daemon exits 2). Call from the control thread only.
#pragma once

#include <memory>

#include "verdictd/config/config.h"
#include "verdictd/metrics/collectors.h"
#include "verdictd/metrics/metrics_server.h"
#include "verdictd/metrics/service_counters.h"

namespace verdictd::service {

class Service;

class DaemonMetrics {
 public:
  // Opens the kernel's queue table now: it is readable by root only, so this
  // runs before privileges are dropped. Nothing listens yet.
  explicit DaemonMetrics(const config::MetricsSection& section);
  ~DaemonMetrics();  // Stop()s
  DaemonMetrics(const DaemonMetrics&) = delete;
  DaemonMetrics& operator=(const DaemonMetrics&) = delete;

  // After Service::Open(): registers every worker's counters (and follows
  // queues added or removed later) and `counters`, then binds the listen
  // address and serves. Does nothing when [metrics] enabled = false.
  // `service` and `counters` must outlive Stop().
  void Start(Service& service, const metrics::ServiceCounters& counters);

  // Stops serving (milliseconds) and forgets the counters. Idempotent.
  void Stop() noexcept;

  // Where other parts (rules, extensions) add their own collectables; nullptr
  // when metrics are disabled or not started.
  metrics::MetricsServer* server() noexcept { return server_.get(); }
  // The queue collector (its held kernel table serves `ctl status`);
  // nullptr when metrics are disabled.
  const metrics::QueueCollector* queues() const noexcept { return queues_.get(); }

 private:
  config::MetricsSection section_;
  std::shared_ptr<metrics::QueueCollector> queues_;
  std::unique_ptr<metrics::MetricsServer> server_;
};

}  // namespace verdictd::service
