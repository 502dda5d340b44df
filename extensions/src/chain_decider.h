// The chain of one worker for one policy: each started extension whose group
// matches the packet's mark is called in order until one decides (ipqext's
// chain). Per packet: no allocation, no lock, no system call (clock reads
// for one call in kTimingSample and for pending packets are vDSO).
//
// Group rule (ipqext's -G): an extension runs when its mask is 0 or
// (mark & mask) != 0, with `mark` the packet's mark as a NEXT with a new mark
// left it (so an extension may steer the ones after it).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "pending_table.h"
#include "verdictd/decider/decider.h"
#include "verdictd/extensions/host.h"

namespace verdictd::extensions {

// The worker handle extensions count through (verdictd_worker_t).
struct WorkerHandle {
  ExtensionWorkerCounters* counters = nullptr;
};

class ChainDecider final : public decider::Decider {
 public:
  // `table` (the worker's pending packets) may be null when no extension of
  // the plan may pend; `scratch` holds max_edit bytes for inline edits.
  ChainDecider(std::shared_ptr<const ChainPlan> plan, std::size_t worker, PendingTable* table,
               std::uint8_t* scratch, std::uint32_t max_edit);
  ~ChainDecider() override;

  // `now_ns` starts the deadline of a packet an extension keeps (0: the clock is read).
  queueio::Verdict Decide(const queueio::PacketView& packet, std::uint64_t now_ns) noexcept override;
  decider::Decision DecideOrDefer(const queueio::PacketView& packet,
                                  std::uint64_t now_ns) noexcept override;

 private:
  struct Link {
    LoadedExtension* extension;
    void* instance;
    std::unique_ptr<WorkerHandle> handle;
    ExtensionWorkerCounters* counters;
    bool may_pend;
  };
  decider::Decision Run(const queueio::PacketView& view, std::uint64_t now_ns) noexcept;

  std::shared_ptr<const ChainPlan> plan_;  // keeps the extensions loaded
  std::vector<Link> links_;
  PendingTable* table_;
  std::uint8_t* scratch_;
  std::uint32_t max_edit_;
};

}  // namespace verdictd::extensions
