// The /metrics HTTP endpoint (prometheus-cpp pull, civetweb underneath).
//
// Construction binds the listen address and starts the server's threads;
// destruction stops them. Startup errors throw MetricsError with a one-line
// message naming the address and what to do; the daemon prints it and exits
// with status 2. Thread-safety: AddCollectable/RemoveCollectable may be
// called from any thread at any time; scrapes run on the server's threads.
#pragma once

#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include <prometheus/collectable.h>

namespace prometheus {
class Exposer;
}

namespace verdictd::metrics {

class MetricsError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class MetricsServer {
 public:
  // `listen` is "address:port" ("127.0.0.1:9470", "[::1]:9470", port 0 picks
  // a free one). Registers a ProcessCollector. Throws MetricsError.
  explicit MetricsServer(const std::string& listen);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // Adds a collectable to the /metrics exposition; the server keeps it alive.
  // Other parts (rules, extensions) register their own counters this way.
  void AddCollectable(std::shared_ptr<prometheus::Collectable> collectable);
  void RemoveCollectable(const std::shared_ptr<prometheus::Collectable>& collectable);

  // The port actually bound (useful with port 0).
  int port() const;
  const std::string& listen() const noexcept { return listen_; }

 private:
  std::string listen_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  std::mutex mutex_;
  std::vector<std::shared_ptr<prometheus::Collectable>> collectables_;
};

}  // namespace verdictd::metrics
