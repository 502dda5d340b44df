#include "verdictd/service/service.h"

#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <stdexcept>
#include <string>

#include "verdictd/service/queue_log.h"

namespace verdictd::service {
namespace {

// "queue 3" or "queues 4, 5, 9".
std::string NameQueues(std::vector<std::uint16_t> queues) {
  std::sort(queues.begin(), queues.end());
  std::string text = queues.size() == 1 ? "queue " : "queues ";
  for (std::size_t i = 0; i < queues.size(); ++i) {
    if (i > 0) text += ", ";
    text += std::to_string(queues[i]);
  }
  return text;
}

}  // namespace

// One running (or prepared) queue: its socket, worker, thread and counters.
struct Service::Lane {
  QueuePlan plan;
  std::unique_ptr<queueio::QueueSocket> socket;
  std::unique_ptr<Worker> worker;
  std::thread thread;
  metrics::WorkerCounters counters;
  std::string failure;             // written by the worker before `failed` is set
  std::atomic<bool> failed{false};
};

Service::Service(std::vector<QueuePlan> plan, const config::VerdictSection& verdict,
                 std::vector<int> cpus)
    : verdict_(verdict), cpus_(std::move(cpus)) {
  for (QueuePlan& entry : plan) {
    auto lane = std::make_unique<Lane>();
    lane->plan = entry;
    lanes_.push_back(std::move(lane));
  }
}

Service::~Service() { Stop(); }

void Service::Open() {
  std::lock_guard lock(mutex_);
  for (auto& lane : lanes_) {
    lane->socket = queueio::QueueSocket::Open(lane->plan.queue);
    spdlog::info("{}", DescribeQueue(lane->plan, lane->socket->bind_report()));
  }
}

void Service::Adopt(const std::vector<HandedQueue>& handed, bool bind_missing) {
  std::lock_guard lock(mutex_);
  std::vector<bool> used(handed.size(), false);
  std::string missing;
  for (auto& lane : lanes_) {
    for (std::size_t i = 0; i < handed.size(); ++i) {
      const HandedQueue& h = handed[i];
      if (used[i] || h.queue != lane->plan.queue.queue_num) continue;
      used[i] = true;
      queueio::BindReport report;
      report.flags = h.flags;
      report.conntrack_supported = h.conntrack_supported;
      try {
        lane->socket = queueio::QueueSocket::Adopt(h.fd, h.portid, lane->plan.queue, report);
      } catch (...) {
        for (std::size_t j = i; j < handed.size(); ++j) {
          if (!used[j] || j == i) ::close(handed[j].fd);
        }
        throw;
      }
      spdlog::info("{} (taken over, port id {})", DescribeQueue(lane->plan, lane->socket->bind_report()),
                   h.portid);
      break;
    }
    if (!lane->socket && bind_missing) {
      lane->socket = queueio::QueueSocket::Open(lane->plan.queue);
      spdlog::info("{}", DescribeQueue(lane->plan, lane->socket->bind_report()));
    }
    if (!lane->socket) missing += (missing.empty() ? "" : ",") + std::to_string(lane->plan.queue.queue_num);
  }
  for (std::size_t i = 0; i < handed.size(); ++i) {
    if (!used[i]) ::close(handed[i].fd);
  }
  if (!missing.empty()) {
    throw queueio::QueueError("upgrade: the old process handed over no socket for queue(s) " +
                              missing);
  }
}

std::vector<HandedQueue> Service::Sockets() const {
  std::lock_guard lock(mutex_);
  std::vector<HandedQueue> sockets;
  for (const auto& lane : lanes_) {
    if (!lane || !lane->socket) continue;
    const queueio::BindReport& report = lane->socket->bind_report();
    sockets.push_back(HandedQueue{lane->plan.queue.queue_num, lane->socket->fd(), report.portid,
                                  report.flags, report.conntrack_supported});
  }
  return sockets;
}

std::vector<HandedQueue> Service::HandOver() noexcept {
  std::lock_guard lock(mutex_);
  stopped_ = true;
  std::vector<HandedQueue> handed;
  for (auto& lane : lanes_) {
    if (lane && lane->worker) lane->worker->RequestHandOver();
  }
  for (auto& lane : lanes_) {
    if (!lane) continue;
    if (lane->thread.joinable()) lane->thread.join();
    if (!lane->socket) continue;
    lane->socket->Detach();
    const queueio::BindReport& report = lane->socket->bind_report();
    try {
      handed.push_back(HandedQueue{lane->plan.queue.queue_num, lane->socket->fd(), report.portid,
                                   report.flags, report.conntrack_supported});
    } catch (...) {  // out of memory: that queue stays with this process and ends with it
    }
  }
  return handed;
}

std::string Service::StartLane(std::size_t slot, const config::VerdictSection& verdict) {
  Lane& lane = *lanes_[slot];
  const std::uint16_t queue_num = lane.plan.queue.queue_num;
  queueio::QueueSocket& socket = *lane.socket;
  WorkerOptions options = MakeWorkerOptions(verdict, slot, queue_num);
  options.receive_batch = lane.plan.queue.batch_size;
  options.wait_fd = socket.fd();
  const queueio::BindReport& report = socket.bind_report();
  // Without nf_conntrack_netlink the kernel ignores a verdict's connmark:
  // leave it out and count it, so that the metrics say what happened.
  options.connmark_supported = report.conntrack_supported;
  lane.counters.posture.flags.store(report.flags, std::memory_order_relaxed);
  lane.counters.posture.max_length.store(lane.plan.queue.max_queue_length,
                                         std::memory_order_relaxed);
  lane.counters.posture.bound.store(true, std::memory_order_relaxed);
  lane.worker = std::make_unique<Worker>(options, socket, socket, *exchange_, lane.counters);
  if (lane.plan.queue.fail_open) {
    // The kernel accepts new packets instead of queueing them while the
    // worker gives the queued ones their verdicts (queue_socket.h).
    lane.worker->set_drain_hook([&socket] { socket.StopQueueing(); });
  }
  exchange_->Activate(slot);
  lane.thread = std::thread([this, &lane] { RunWorker(lane); });
  const std::string name = "verdictd-q" + std::to_string(queue_num);
  pthread_setname_np(lane.thread.native_handle(), name.substr(0, 15).c_str());
  if (lane.plan.cpu < 0) return "";
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(lane.plan.cpu, &set);
  const int rc = pthread_setaffinity_np(lane.thread.native_handle(), sizeof set, &set);
  if (rc == 0) return "";
  return "cannot pin the worker of queue " + std::to_string(queue_num) + " to CPU " +
         std::to_string(lane.plan.cpu) + ": " + std::strerror(rc) +
         "; list CPUs this process may use (--cpus)";
}

void Service::Start(PolicyExchange& exchange, std::function<void()> on_fatal) {
  std::string error;
  {
    std::lock_guard lock(mutex_);
    for (const auto& lane : lanes_) {
      if (!lane->socket) throw std::logic_error("Service::Start before Open");
    }
    if (exchange.capacity() < lanes_.size()) {
      throw std::logic_error("Service::Start: the policy exchange has too few worker slots");
    }
    exchange_ = &exchange;
    on_fatal_ = std::move(on_fatal);
    for (std::size_t slot = 0; slot < lanes_.size() && error.empty(); ++slot) {
      error = StartLane(slot, verdict_);
    }
  }
  if (!error.empty()) {
    Stop();
    throw std::runtime_error(error);
  }
}

void Service::RunWorker(Lane& lane) noexcept {
  metrics::WorkerCounters& counters = lane.counters;
  counters.tid.store(static_cast<int>(gettid()), std::memory_order_relaxed);
  counters.cpu.store(lane.plan.cpu, std::memory_order_relaxed);
  counters.up.store(true, std::memory_order_release);
  const WorkerExit exit = lane.worker->Run();
  counters.up.store(false, std::memory_order_release);
  if (exit == WorkerExit::kFatalError) {
    try {
      lane.failure =
          "queue " + std::to_string(lane.plan.queue.queue_num) + ": " + lane.worker->fatal_reason();
    } catch (...) {
    }
    lane.failed.store(true, std::memory_order_release);
    failed_.store(true, std::memory_order_release);
    try {  // off the packet path: this worker has ended
      spdlog::error("the worker of {}; it gave up, verdictd stops", lane.failure);
    } catch (...) {
    }
    if (!fatal_reported_.exchange(true) && on_fatal_) on_fatal_();
  }
}

void Service::StopLane(std::size_t slot) noexcept {
  Lane& lane = *lanes_[slot];
  if (lane.worker) lane.worker->RequestStop();
  if (lane.thread.joinable()) lane.thread.join();
  // The worker drained and flushed: nothing is left queued, unbinding drops nothing.
  if (lane.socket) lane.socket->Unbind();
}

void Service::Stop() noexcept {
  std::lock_guard lock(mutex_);
  stopped_ = true;
  // Every worker is asked first, so they drain in parallel.
  for (auto& lane : lanes_) {
    if (lane && lane->worker) lane->worker->RequestStop();
  }
  for (std::size_t slot = 0; slot < lanes_.size(); ++slot) {
    if (lanes_[slot]) StopLane(slot);
  }
}

void Service::TrimFreeSlots() noexcept {
  while (!lanes_.empty() && !lanes_.back()) lanes_.pop_back();
}

std::size_t Service::FreeSlot() {
  for (std::size_t slot = 0; slot < lanes_.size(); ++slot) {
    if (!lanes_[slot]) return slot;
  }
  lanes_.emplace_back();
  return lanes_.size() - 1;
}

std::string Service::Prepare(const config::Config& next) {
  std::lock_guard lock(mutex_);
  if (pending_.active) throw std::logic_error("Service::Prepare: a queue change is pending");
  if (stopped_ || exchange_ == nullptr) throw std::runtime_error("verdictd is not running");
  const std::vector<QueuePlan> plan = PlanQueues(next, cpus_);

  std::map<std::uint16_t, std::size_t> running;  // queue number -> slot
  for (std::size_t slot = 0; slot < lanes_.size(); ++slot) {
    if (lanes_[slot]) running[lanes_[slot]->plan.queue.queue_num] = slot;
  }
  std::string refused;
  std::vector<const QueuePlan*> added;
  for (const QueuePlan& entry : plan) {
    const auto it = running.find(entry.queue.queue_num);
    if (it == running.end()) {
      added.push_back(&entry);
      continue;
    }
    const std::string changes = QueueSettingChanges(lanes_[it->second]->plan, entry);
    if (!changes.empty()) {
      if (!refused.empty()) refused += "; ";
      refused += "queue " + std::to_string(entry.queue.queue_num) + ": " + changes;
    }
    running.erase(it);
  }
  if (!refused.empty()) {
    throw std::runtime_error(
        "a running queue cannot change its settings or CPU live (" + refused +
        "); restart verdictd, or remove the queue in one reload and add it back in the next");
  }
  // Removed queues free their slots only at Commit(), after the added ones
  // took theirs: free slots first, then new ones at the end.
  std::size_t free_slots = 0;
  for (const auto& lane : lanes_) free_slots += lane ? 0 : 1;
  const std::size_t new_slots = added.size() > free_slots ? added.size() - free_slots : 0;
  if (lanes_.size() + new_slots > exchange_->capacity()) {
    throw std::runtime_error("at most " + std::to_string(exchange_->capacity()) +
                             " worker slots exist while verdictd runs; add these queues in a "
                             "later reload, after removing others, or restart verdictd");
  }

  PendingChange change;
  change.verdict = next.verdict;
  try {
    for (const QueuePlan* entry : added) {
      const std::size_t slot = FreeSlot();
      auto lane = std::make_unique<Lane>();
      lane->plan = *entry;
      lanes_[slot] = std::move(lane);
      change.added.push_back(slot);
      lanes_[slot]->socket = queueio::QueueSocket::Open(entry->queue);
      spdlog::info("{}", DescribeQueue(*entry, lanes_[slot]->socket->bind_report()));
    }
  } catch (...) {
    for (std::size_t slot : change.added) {
      if (lanes_[slot]->socket) lanes_[slot]->socket->Unbind();
      lanes_[slot].reset();
    }
    TrimFreeSlots();
    throw;
  }
  for (const auto& [queue, slot] : running) change.removed.push_back(slot);

  auto queues_in = [&](const std::vector<std::size_t>& slots) {
    std::vector<std::uint16_t> queues;
    for (std::size_t slot : slots) queues.push_back(lanes_[slot]->plan.queue.queue_num);
    return NameQueues(std::move(queues));
  };
  std::string summary;
  if (!change.added.empty()) summary = "adds " + queues_in(change.added);
  if (!change.removed.empty()) {
    summary += (summary.empty() ? "" : "; ") + std::string("removes ") + queues_in(change.removed);
  }
  change.active = true;
  pending_ = std::move(change);
  return summary;
}

std::string Service::Commit() {
  std::lock_guard lock(mutex_);
  if (!pending_.active) return "";
  PendingChange change = std::move(pending_);
  pending_ = PendingChange{};
  std::string warnings;
  if (stopped_) {
    // Stop() ran in between: it unbound the prepared queues; start nothing.
    std::vector<std::uint16_t> added;
    for (std::size_t slot : change.added) {
      added.push_back(lanes_[slot]->plan.queue.queue_num);
      lanes_[slot].reset();
    }
    TrimFreeSlots();
    throw std::runtime_error("verdictd is stopping; the queue change was not applied" +
                             (added.empty() ? std::string()
                                            : " (" + NameQueues(added) + " unbound again)"));
  }
  auto warn = [&](const std::string& warning) {
    spdlog::warn("{}", warning);
    warnings += (warnings.empty() ? "" : "; ") + warning;
  };
  std::string failures;  // the added queues that did not start
  for (std::size_t slot : change.added) {
    Lane& lane = *lanes_[slot];
    try {
      if (test_start_hook_) test_start_hook_(lane.plan.queue.queue_num);
      if (const std::string warning = StartLane(slot, change.verdict); !warning.empty()) {
        warn(warning);
      }
    } catch (const std::exception& e) {
      // The policy is already published; the other changes still apply.
      const std::string failure = "queue " + std::to_string(lane.plan.queue.queue_num) +
                                  ": cannot start its worker (" + e.what() +
                                  "); it was unbound, reload to retry";
      spdlog::error("{}", failure);
      failures += (failures.empty() ? "" : "; ") + failure;
      if (lane.thread.joinable()) StopLane(slot);
      if (lane.worker) exchange_->Retire(slot);  // activated, never to run
      lane.socket->Unbind();
      lanes_[slot].reset();
      continue;
    }
    if (observer_.added) observer_.added(lane.plan.queue.queue_num, lane.counters);
  }
  // Every removed worker is asked first, so they drain in parallel.
  for (std::size_t slot : change.removed) lanes_[slot]->worker->RequestStop();
  for (std::size_t slot : change.removed) {
    StopLane(slot);
    Lane& lane = *lanes_[slot];
    spdlog::info("removed {}", SummarizeCounters(lane.plan.queue.queue_num, lane.counters));
    if (lane.failed.load(std::memory_order_acquire)) {
      spdlog::error("removed queue had failed: {}", lane.failure);
    }
    if (observer_.removed) observer_.removed(lane.plan.queue.queue_num, lane.counters);
    lanes_[slot].reset();
  }
  TrimFreeSlots();
  if (!failures.empty()) throw std::runtime_error(failures);
  return warnings;
}

void Service::set_start_hook_for_test(std::function<void(std::uint16_t queue)> hook) {
  std::lock_guard lock(mutex_);
  test_start_hook_ = std::move(hook);
}

void Service::Abort() noexcept {
  std::lock_guard lock(mutex_);
  if (!pending_.active) return;
  for (std::size_t slot : pending_.added) {
    if (lanes_[slot] && lanes_[slot]->socket) lanes_[slot]->socket->Unbind();
    lanes_[slot].reset();
  }
  pending_ = PendingChange{};
  TrimFreeSlots();
}

std::size_t Service::slot_count() const {
  std::lock_guard lock(mutex_);
  return lanes_.size();
}

std::vector<const Service::Lane*> Service::RunningLanes() const {
  std::vector<const Lane*> lanes;
  for (std::size_t slot = 0; slot < lanes_.size(); ++slot) {
    if (!lanes_[slot]) continue;
    // Bound by a Prepare() not yet committed: not running yet.
    if (pending_.active && std::ranges::find(pending_.added, slot) != pending_.added.end()) continue;
    lanes.push_back(lanes_[slot].get());
  }
  std::ranges::sort(lanes, {}, [](const Lane* lane) { return lane->plan.queue.queue_num; });
  return lanes;
}

std::size_t Service::size() const {
  std::lock_guard lock(mutex_);
  return RunningLanes().size();
}

std::vector<QueuePlan> Service::plan() const {
  std::lock_guard lock(mutex_);
  std::vector<QueuePlan> plan;
  for (const Lane* lane : RunningLanes()) plan.push_back(lane->plan);
  return plan;
}

void Service::VisitCounters(
    const std::function<void(std::span<const QueueCountersRef>)>& visit) const {
  std::lock_guard lock(mutex_);
  std::vector<QueueCountersRef> refs;
  for (const Lane* lane : RunningLanes()) {
    refs.push_back({lane->plan.queue.queue_num, &lane->counters, &lane->plan});
  }
  visit(refs);
}

void Service::set_observer(QueueObserver observer) {
  std::lock_guard lock(mutex_);
  observer_ = std::move(observer);
  if (!observer_.added) return;
  for (const Lane* lane : RunningLanes()) observer_.added(lane->plan.queue.queue_num, lane->counters);
}

bool Service::AllReceiving() const {
  std::lock_guard lock(mutex_);
  for (const Lane* lane : RunningLanes()) {
    if (lane->counters.heartbeat.load(std::memory_order_relaxed) == 0) return false;
  }
  return true;
}

std::vector<WorkerProgress> Service::Progress() {
  std::lock_guard lock(mutex_);
  std::vector<WorkerProgress> progress;
  for (const Lane* running : RunningLanes()) {
    // RunningLanes() hands out const views; this member is not const.
    Lane& lane = const_cast<Lane&>(*running);
    WorkerProgress p;
    p.queue = lane.plan.queue.queue_num;
    p.heartbeat = lane.counters.heartbeat.load(std::memory_order_relaxed);
    pollfd pfd{lane.socket->fd(), POLLIN, 0};
    const bool readable = ::poll(&pfd, 1, 0) > 0 && (pfd.revents & POLLIN) != 0;
    p.work_waiting = readable || lane.counters.pending.load(std::memory_order_relaxed) > 0;
    p.counters = &lane.counters;
    progress.push_back(p);
  }
  return progress;
}

bool Service::conntrack_supported() const {
  std::lock_guard lock(mutex_);
  for (const auto& lane : lanes_) {
    if (lane && lane->socket) return lane->socket->bind_report().conntrack_supported;
  }
  return false;
}

bool Service::RequestTestStall(std::uint16_t queue, std::uint32_t ms) {
  std::lock_guard lock(mutex_);
  for (const Lane* lane : RunningLanes()) {
    if (lane->plan.queue.queue_num == queue && lane->worker) {
      lane->worker->RequestTestStall(ms);
      return true;
    }
  }
  return false;
}

std::string Service::failure() const {
  std::lock_guard lock(mutex_);
  std::string text;
  for (const auto& lane : lanes_) {
    if (!lane || !lane->failed.load(std::memory_order_acquire)) continue;
    if (!text.empty()) text += "; ";
    text += lane->failure;
  }
  return text;
}

}  // namespace verdictd::service
