// The running daemon's data plane: one bound queue, one Worker and one pinned
// thread per queue number.
//
// Startup functions (PlanQueues, Open, Start) may allocate and throw
// (queueio::QueueError, std::runtime_error) with one-line messages that name
// the queue or CPU and what to do. Stop() is noexcept. All member functions
// are called from one control thread; counters() may be read from any thread
// while workers run (single-writer relaxed counters).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "verdictd/config/config.h"
#include "verdictd/metrics/worker_counters.h"
#include "verdictd/queueio/queue_socket.h"
#include "verdictd/service/policy_exchange.h"
#include "verdictd/service/worker.h"

namespace verdictd::service {

// One queue of the plan: how to bind it and where its worker runs.
struct QueuePlan {
  queueio::QueueOptions queue;
  int cpu = -1;  // -1: not pinned
};

// The CPUs this process may run on, ascending (sched_getaffinity).
std::vector<int> AllowedCpus();

// Expands the config's queue ranges into one entry per queue number: a range
// with count 0 gets one queue per CPU in `cpus`; worker i of a range is pinned
// to range.cpus[i] or, without a list, to cpus[i % cpus.size()]. Throws
// std::runtime_error on overlapping ranges, ranges past queue 65535, or a CPU
// list whose length does not match the queue count.
std::vector<QueuePlan> PlanQueues(const config::Config& config, std::span<const int> cpus);

// The worker settings of one queue from the verdict section.
WorkerOptions MakeWorkerOptions(const config::VerdictSection& verdict, std::size_t index,
                                std::uint16_t queue_num);

// One line of a worker's counters for the log ("queue 3: packets 10 ...").
std::string SummarizeCounters(std::uint16_t queue_num, const metrics::WorkerCounters& counters);

// One line per queue: copy mode, flags, CPU, receive buffer achieved.
std::string DescribeQueue(const QueuePlan& plan, const queueio::BindReport& report);

class Service {
 public:
  Service(std::vector<QueuePlan> plan, const config::VerdictSection& verdict);
  ~Service();  // Stop()s
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  // Binds every queue (throws queueio::QueueError naming the queue). Logs one
  // summary line per queue: buffer size achieved, copy mode, flags, CPU.
  void Open();
  // Starts one pinned worker thread per queue. `on_fatal` is called (from the
  // worker thread, once) when a worker gives up; it should make the control
  // thread stop the service. Throws std::runtime_error if a thread cannot be
  // pinned to its CPU.
  void Start(PolicyExchange& exchange, std::function<void()> on_fatal);
  // Stops receiving, gives every packet already received (or still readable)
  // its verdict, flushes, joins the workers and unbinds. Idempotent.
  void Stop() noexcept;

  std::size_t size() const noexcept { return plan_.size(); }
  const std::vector<QueuePlan>& plan() const noexcept { return plan_; }
  std::span<const metrics::WorkerCounters> counters() const noexcept {
    return {counters_.get(), plan_.size()};
  }
  // Bound sockets (after Open()); index = worker index.
  const queueio::QueueSocket& socket(std::size_t index) const { return *sockets_.at(index); }
  // True once a worker gave up with an error; failure() says why.
  bool failed() const noexcept { return failed_.load(std::memory_order_acquire); }
  std::string failure() const;

 private:
  void RunWorker(std::size_t index) noexcept;

  std::vector<QueuePlan> plan_;
  config::VerdictSection verdict_;
  std::unique_ptr<metrics::WorkerCounters[]> counters_;
  std::vector<std::unique_ptr<queueio::QueueSocket>> sockets_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::vector<std::uint8_t>> drain_messages_;
  std::vector<std::thread> threads_;
  std::function<void()> on_fatal_;
  std::atomic<bool> failed_{false};
  std::atomic<bool> fatal_reported_{false};
  std::vector<std::string> failures_;  // index = worker; written by that worker before failed_
};

}  // namespace verdictd::service
