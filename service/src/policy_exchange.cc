#include "verdictd/service/policy_exchange.h"

#include <algorithm>

namespace verdictd::service {

PolicyExchange::PolicyExchange(std::shared_ptr<const Policy> initial, std::size_t workers,
                               std::size_t capacity)
    : current_(initial.get()), slots_(std::max(workers, capacity)) {
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    slots_[i].seen.store(initial->generation, std::memory_order_relaxed);
    slots_[i].active.store(i < workers, std::memory_order_relaxed);
  }
  live_.push_back(std::move(initial));
}

const Policy& PolicyExchange::Current(std::size_t worker) noexcept {
  const Policy& policy = Peek();
  Report(worker, policy.generation);
  return policy;
}

const Policy& PolicyExchange::Peek() const noexcept {
  return *current_.load(std::memory_order_acquire);
}

// Reclaim() frees only generations older than every reported one and never
// the newest, so both the reported policy and any newer one Peek() returned
// stay alive until the next Report().
void PolicyExchange::Report(std::size_t worker, std::uint64_t generation) noexcept {
  slots_[worker].seen.store(generation, std::memory_order_release);
}

void PolicyExchange::Publish(std::shared_ptr<const Policy> next) {
  std::lock_guard lock(control_mutex_);
  current_.store(next.get(), std::memory_order_release);
  live_.push_back(std::move(next));
}

void PolicyExchange::Reclaim() {
  std::lock_guard lock(control_mutex_);
  // A worker that reported generation g may still be using the policy of g
  // (it reports before use), never an older one.
  std::uint64_t oldest_in_use = live_.back()->generation;
  for (const auto& slot : slots_) {
    if (slot.active.load(std::memory_order_acquire)) {
      oldest_in_use = std::min(oldest_in_use, slot.seen.load(std::memory_order_acquire));
    }
  }
  const Policy* newest = live_.back().get();
  std::erase_if(live_, [&](const std::shared_ptr<const Policy>& policy) {
    return policy->generation < oldest_in_use && policy.get() != newest;
  });
}

void PolicyExchange::Retire(std::size_t worker) noexcept {
  slots_[worker].active.store(false, std::memory_order_release);
}

void PolicyExchange::Activate(std::size_t worker) {
  std::lock_guard lock(control_mutex_);
  WorkerSlot& slot = slots_.at(worker);
  slot.seen.store(live_.back()->generation, std::memory_order_release);
  slot.active.store(true, std::memory_order_release);
}

std::uint64_t PolicyExchange::generation() const noexcept {
  return current_.load(std::memory_order_acquire)->generation;
}

}  // namespace verdictd::service
