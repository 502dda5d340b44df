// Hands a new policy (everything reload can change live) to running workers
// so that each worker switches between two receive batches and sees either
// the old or the new policy whole, never a mix.
//
// Publish() and Reclaim() run on the control thread (they may allocate and
// lock). Current() runs on a worker once per batch: one acquire load and one
// relaxed store, no lock, no read-modify-write. A retired policy is freed only
// after every worker has reported a newer generation, so a worker never reads
// freed memory.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "verdictd/service/policy.h"

namespace verdictd::service {

class PolicyExchange {
 public:
  // `workers` is the number of worker slots (worker indexes 0..workers-1).
  PolicyExchange(std::shared_ptr<const Policy> initial, std::size_t workers);

  // Worker side: the policy to use for the next batch. Marks `worker` as
  // having moved to that policy's generation.
  const Policy& Current(std::size_t worker) noexcept;

  // Control side: makes `next` current. Workers pick it up at their next batch.
  void Publish(std::shared_ptr<const Policy> next);
  // Control side: frees retired policies no worker can still be reading. An
  // idle worker blocked in receive keeps its old policy alive until it wakes.
  void Reclaim();
  // Marks a worker as gone (it will never call Current() again).
  void Retire(std::size_t worker) noexcept;

  std::uint64_t generation() const noexcept;

 private:
  struct alignas(64) WorkerSlot {
    std::atomic<std::uint64_t> seen{0};
    std::atomic<bool> active{true};
  };
  std::atomic<const Policy*> current_;
  std::vector<WorkerSlot> slots_;
  std::mutex control_mutex_;  // control thread only: Publish/Reclaim
  std::vector<std::shared_ptr<const Policy>> live_;  // current + retired, oldest first
};

}  // namespace verdictd::service
