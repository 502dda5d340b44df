// The running daemon's data plane: one bound queue, one Worker and one pinned
// thread per queue number (planned by queue_plan.h), and the queues a reload
// adds or removes while it runs.
//
// Startup functions (Open, Start) may allocate and throw
// (queueio::QueueError, std::runtime_error) with one-line messages that name
// the queue or CPU and what to do. Stop() is noexcept. Member functions are
// control-plane calls, safe from several threads (an internal mutex the
// workers never take); the counters are single-writer relaxed values any
// thread may read while the workers run.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "verdictd/config/config.h"
#include "verdictd/metrics/worker_counters.h"
#include "verdictd/queueio/queue_socket.h"
#include "verdictd/service/handover.h"
#include "verdictd/service/policy_exchange.h"
#include "verdictd/service/queue_changer.h"
#include "verdictd/service/queue_plan.h"
#include "verdictd/service/watchdog.h"
#include "verdictd/service/worker.h"

namespace verdictd::service {

// The counters of one running queue, for status and metrics.
struct QueueCountersRef {
  std::uint16_t queue = 0;
  const metrics::WorkerCounters* counters = nullptr;
  const QueuePlan* plan = nullptr;  // how it was bound and pinned; valid during the visit
};

// Told when a queue's worker joins or leaves while verdictd runs (a reload
// changed [[queues]]), so the metrics register or forget its counters. Called
// on the control thread; `removed` runs before the counters are destroyed.
struct QueueObserver {
  std::function<void(std::uint16_t queue, const metrics::WorkerCounters&)> added;
  std::function<void(std::uint16_t queue, const metrics::WorkerCounters&)> removed;
};

class Service final : public QueueChanger {
 public:
  // `cpus`: where the workers of queues added later by a reload may run
  // (PlanQueues); AllowedCpus() in the daemon.
  Service(std::vector<QueuePlan> plan, const config::VerdictSection& verdict,
          std::vector<int> cpus);
  ~Service() override;  // Stop()s
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  // Binds every queue (throws queueio::QueueError naming the queue). Logs one
  // summary line per queue: buffer size achieved, copy mode, flags, CPU.
  void Open();
  // Upgrade: like Open(), but every planned queue takes the socket the old
  // process handed over (QueueSocket::Adopt checks it) instead of binding.
  // Throws naming the queue that has none or whose socket is not the bound
  // one. The sockets are owned by the service from here on, even on throw.
  // `bind_missing` (systemd's store, which may predate a config change):
  // planned queues without a socket are bound afresh instead.
  void Adopt(const std::vector<HandedQueue>& handed, bool bind_missing = false);
  // The running queues' sockets (descriptors still owned by the service),
  // for systemd's file descriptor store.
  std::vector<HandedQueue> Sockets() const;
  // Upgrade, the old side: stops receiving, gives every packet already read
  // its verdict, joins the workers and detaches the sockets (destroying the
  // service then closes them without unbinding). Returns what the new
  // process needs; the descriptors stay open until the service is destroyed.
  std::vector<HandedQueue> HandOver() noexcept;
  // Starts one pinned worker thread per queue. `on_fatal` is called (from the
  // worker thread, once) when a worker gives up; it should make the control
  // thread stop the service. Throws std::runtime_error if a thread cannot be
  // pinned to its CPU. `exchange` must have at least slot_count() slots and
  // outlive the service.
  void Start(PolicyExchange& exchange, std::function<void()> on_fatal);
  // Stops receiving, gives every packet already received (or still readable)
  // its verdict, flushes, joins the workers and unbinds. Idempotent; no
  // queue change is committed afterwards.
  void Stop() noexcept;

  // QueueChanger: [[queues]] changes applied live by a reload. Queues that
  // are in both the running and the next plan keep running untouched and
  // must keep their settings and CPU (else Prepare() refuses, naming them);
  // added queues get a new worker; removed ones are drained and unbound.
  std::string Prepare(const config::Config& next) override;
  std::string Commit() override;
  void Abort() noexcept override;
  std::size_t slot_count() const override;

  // Running queues, by queue number.
  std::size_t size() const;
  std::vector<QueuePlan> plan() const;
  // Calls `visit` with the counters of every running queue (by queue
  // number); no queue is removed while it runs.
  void VisitCounters(const std::function<void(std::span<const QueueCountersRef>)>& visit) const;
  // Registers `observer` and calls observer.added for every running queue.
  void set_observer(QueueObserver observer);

  // True when every running worker has entered its receive loop (its
  // heartbeat moved): the moment to tell systemd READY=1.
  bool AllReceiving() const;
  // One sample per running worker for the watchdog: heartbeat, and whether
  // work waits for it (its socket is readable, or it holds verdicts).
  std::vector<WorkerProgress> Progress();
  // What the bind probe found: the kernel has nf_conntrack_netlink (connmark
  // verdicts work). False until a queue is open.
  bool conntrack_supported() const;
  // Test seam (see Worker::RequestTestStall); false when `queue` does not run.
  bool RequestTestStall(std::uint16_t queue, std::uint32_t ms);
  // Test seam: Commit() calls `hook` with the queue number before it starts
  // each added queue's worker; a throw fails that start, as a thread that
  // cannot be created would. Only tests set it.
  void set_start_hook_for_test(std::function<void(std::uint16_t queue)> hook);

  // True once a worker gave up with an error; failure() says why.
  bool failed() const noexcept { return failed_.load(std::memory_order_acquire); }
  std::string failure() const;

 private:
  struct Lane;
  struct PendingChange {
    bool active = false;
    config::VerdictSection verdict;
    std::vector<std::size_t> added;    // slots bound by Prepare(), not started
    std::vector<std::size_t> removed;  // slots to drain and stop
  };

  // All called with mutex_ held.
  std::string StartLane(std::size_t slot, const config::VerdictSection& verdict);
  void StopLane(std::size_t slot) noexcept;
  std::size_t FreeSlot();
  void TrimFreeSlots() noexcept;  // drops free slots at the end
  std::vector<const Lane*> RunningLanes() const;
  void RunWorker(Lane& lane) noexcept;

  mutable std::mutex mutex_;  // control threads only; workers never take it
  config::VerdictSection verdict_;  // of the startup workers; added ones get the reload's
  const std::vector<int> cpus_;
  std::vector<std::unique_ptr<Lane>> lanes_;  // index = worker slot; nullptr: free
  PendingChange pending_;
  PolicyExchange* exchange_ = nullptr;
  bool stopped_ = false;
  QueueObserver observer_;
  std::function<void()> on_fatal_;
  std::function<void(std::uint16_t)> test_start_hook_;
  std::atomic<bool> failed_{false};
  std::atomic<bool> fatal_reported_{false};
};

}  // namespace verdictd::service
