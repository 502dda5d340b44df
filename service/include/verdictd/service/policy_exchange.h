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

#include "verdictd/base/false_sharing.h"
#include "verdictd/service/policy.h"

namespace verdictd::service {

class PolicyExchange {
 public:
  // Worker slots 0..workers-1 are active from the start; `capacity` (at
  // least `workers`) bounds the slots Activate() may bring in later, for
  // workers added while running.
  PolicyExchange(std::shared_ptr<const Policy> initial, std::size_t workers,
                 std::size_t capacity = 0);

  // Worker side: the policy to use for the next batch. Marks `worker` as
  // having moved to that policy's generation. Same as Peek() then Report().
  const Policy& Current(std::size_t worker) noexcept;
  // Worker side, in two steps: the current policy, without reporting it, so
  // the policy the worker reported last stays alive while it hands state
  // over from it; then Report() the generation moved to. Between the two
  // the worker may use both policies.
  const Policy& Peek() const noexcept;
  void Report(std::size_t worker, std::uint64_t generation) noexcept;

  // Control side: makes `next` current. Workers pick it up at their next batch.
  void Publish(std::shared_ptr<const Policy> next);
  // Control side: frees retired policies no worker can still be reading. An
  // idle worker blocked in receive keeps its old policy alive until it wakes.
  void Reclaim();
  // Marks a worker as gone (it will never call Current() again).
  void Retire(std::size_t worker) noexcept;
  // Control side, before worker `worker` (< capacity()) starts: the slot
  // counts again, as having seen the current generation.
  void Activate(std::size_t worker);
  std::size_t capacity() const noexcept { return slots_.size(); }

  std::uint64_t generation() const noexcept;

 private:
  struct alignas(base::kFalseSharingRange) WorkerSlot {
    std::atomic<std::uint64_t> seen{0};
    std::atomic<bool> active{true};
  };
  std::atomic<const Policy*> current_;
  std::vector<WorkerSlot> slots_;
  std::mutex control_mutex_;  // control thread only: Publish/Reclaim
  std::vector<std::shared_ptr<const Policy>> live_;  // current + retired, oldest first
};

}  // namespace verdictd::service
