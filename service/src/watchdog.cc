#include "verdictd/service/watchdog.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace verdictd::service {
namespace {

// "0-1", "0-3,7,9-10".
std::string Ranges(std::span<const std::uint16_t> sorted) {
  std::string text;
  for (std::size_t i = 0; i < sorted.size();) {
    std::size_t j = i;
    while (j + 1 < sorted.size() && sorted[j + 1] == sorted[j] + 1) ++j;
    if (!text.empty()) text += ',';
    text += std::to_string(sorted[i]);
    if (j > i) text += "-" + std::to_string(sorted[j]);
    i = j + 1;
  }
  return text;
}

}  // namespace

bool WorkerWatchdog::Check(std::span<const WorkerProgress> workers, std::uint64_t now_ns) {
  std::map<std::uint16_t, State> next;
  bool healthy = true;
  for (const WorkerProgress& worker : workers) {
    State state;
    if (const auto it = states_.find(worker.queue); it != states_.end()) state = it->second;
    else state = State{worker.heartbeat, now_ns, false, false};
    // The bound runs from the first sample that saw work waiting without the
    // heartbeat moving since.
    const bool newly_waiting = worker.work_waiting && !state.waiting;
    state.waiting = worker.work_waiting;
    if (worker.heartbeat != state.heartbeat || !worker.work_waiting || newly_waiting) {
      state.heartbeat = worker.heartbeat;
      state.since_ns = now_ns;
      if (state.stalled) {
        state.stalled = false;
        if (worker.counters != nullptr) {
          worker.counters->stalled.store(false, std::memory_order_relaxed);
        }
        spdlog::info("the worker of queue {} makes progress again", worker.queue);
      }
    } else if (!state.stalled && now_ns - state.since_ns >= stall_bound_ns_) {
      state.stalled = true;
      if (worker.counters != nullptr) {
        worker.counters->stalls.Add();
        worker.counters->stalled.store(true, std::memory_order_relaxed);
      }
      spdlog::error(
          "the worker of queue {} is stalled: packets wait for it and it has not come back to "
          "its receive loop for {} ms (bound {} ms); the systemd watchdog is no longer pinged "
          "until it recovers (a decider or extension that blocks?)",
          worker.queue, (now_ns - state.since_ns) / 1'000'000, stall_bound_ns_ / 1'000'000);
    }
    healthy = healthy && !state.stalled;
    next[worker.queue] = state;
  }
  states_ = std::move(next);
  return healthy;
}

std::vector<std::uint16_t> WorkerWatchdog::stalled() const {
  std::vector<std::uint16_t> queues;
  for (const auto& [queue, state] : states_) {
    if (state.stalled) queues.push_back(queue);
  }
  return queues;
}

std::string QueueSummary(std::span<const std::uint16_t> queues, std::uint64_t generation,
                         std::uint64_t verdicts, std::span<const std::uint16_t> stalled) {
  std::vector<std::uint16_t> sorted(queues.begin(), queues.end());
  std::sort(sorted.begin(), sorted.end());
  std::string text = sorted.empty() ? std::string("no queue bound")
                                    : (sorted.size() == 1 ? "queue " : "queues ") + Ranges(sorted) +
                                          " bound";
  text += ", " + std::to_string(sorted.size()) + (sorted.size() == 1 ? " worker" : " workers");
  text += ", generation " + std::to_string(generation);
  text += ", " + std::to_string(verdicts) + " verdicts";
  if (!stalled.empty()) {
    std::vector<std::uint16_t> s(stalled.begin(), stalled.end());
    std::sort(s.begin(), s.end());
    text += std::string(", ") + (s.size() == 1 ? "queue " : "queues ") + Ranges(s) + " stalled";
  }
  return text;
}

}  // namespace verdictd::service
