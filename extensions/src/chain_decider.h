// The chain of one worker for one policy: each started extension whose group
// matches the packet's mark is called in order until one decides (ipqext's
// chain). Per packet: no allocation, no lock, no system call (clock reads
// for one call in kTimingSample and for pending packets are vDSO).
//
// Group rule (ipqext's -G): an extension runs when its mask is 0 or
// (mark & mask) != 0, with `mark` the packet's mark as a NEXT with a new mark
// left it (so an extension may steer the ones after it).
//
// Cost: the links that will not run (stopped, or a group mask that excludes
// the packet) are skipped before the ABI view is touched, so a chain that
// does not see a packet costs a few loads. The view itself lives in the
// chain and is filled field by field from the parsed PacketView (no copy of
// the packet bytes; constant fields are set once at construction).
//
// An asynchronous extension's NEXT continues the chain with the extensions
// after it: the pending slot keeps a reference to the chain's links
// (ChainLinks, a Continuation). A reload may free the decider while such
// packets are still in flight; the links then move to the host's
// ChainGraveyard and are destroyed (on the control thread) once the last of
// them got its verdict.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "pending_table.h"
#include "verdictd/decider/decider.h"
#include "verdictd/extensions/host.h"

namespace verdictd::extensions {

// The worker handle extensions count through (verdictd_worker_t).
struct WorkerHandle {
  ExtensionWorkerCounters* counters = nullptr;
};

// One worker's instances of a plan's extensions, and the loop that runs them.
class ChainLinks final : public Continuation {
 public:
  ChainLinks(std::shared_ptr<const ChainPlan> plan, std::size_t worker, PendingTable* table,
             std::uint8_t* scratch, std::uint32_t max_edit);
  ~ChainLinks() override;
  ChainLinks(const ChainLinks&) = delete;
  ChainLinks& operator=(const ChainLinks&) = delete;

  // Writes the verdict into `out` (in the caller's return slot: a verdict
  // returned by value from here cost a store-forwarding stall per packet);
  // true when the packet was deferred instead (`out` untouched).
  // `now_ns` starts the deadline of a packet an extension keeps (0: the
  // clock is read).
  bool Run(const queueio::PacketView& view, std::uint64_t now_ns, queueio::Verdict& out) noexcept;
  bool may_pend() const noexcept { return may_pend_; }

  // Continuation (the worker thread of the pending table).
  decider::Decision Resume(const PacketContext& from, std::uint32_t next_link,
                           const ResultContext& result, std::uint32_t id) noexcept override;
  void Hold() noexcept override {
    outstanding_.store(outstanding_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  void Finished() noexcept override {
    outstanding_.store(outstanding_.load(std::memory_order_relaxed) - 1, std::memory_order_release);
  }
  // Control thread: pending packets that may still resume this chain.
  std::uint32_t outstanding() const noexcept { return outstanding_.load(std::memory_order_acquire); }

 private:
  struct Link {
    LoadedExtension* extension;
    const std::atomic<std::uint64_t>* gate;  // LoadedExtension::gate()
    verdictd_result_t (*process)(void*, verdictd_packet_t*, verdictd_verdict_t*);
    void* instance;
    std::unique_ptr<WorkerHandle> handle;
    ExtensionWorkerCounters* counters;
    bool may_pend;
  };
  static bool Runs(const Link& link, std::uint32_t mark) noexcept {
    const std::uint64_t gate = link.gate->load(std::memory_order_relaxed);
    const auto group = static_cast<std::uint32_t>(gate);
    return (gate & LoadedExtension::kGateStarted) != 0 && (group == 0 || (mark & group) != 0);
  }
  // The first link from `index` on that runs on `mark` (link_count_: none).
  std::size_t NextRunning(std::size_t index, std::uint32_t mark) const noexcept {
    while (index < link_count_ && !Runs(link_data_[index], mark)) ++index;
    return index;
  }
  void Fill(const queueio::PacketView& view) noexcept;
  static verdictd_result_t Call(const Link& link, ExtensionWorkerCounters& counters,
                                verdictd_packet_t& packet, verdictd_verdict_t& said) noexcept;
  // The chain from link `first` on (one that runs, or link_count_), for
  // the packet in context_. Loop<false> serves chains in which no extension
  // may pend (the usual case): compiled without the pending-slot code, its
  // frame is a fraction of Loop<true>'s.
  template <bool kMayPend>
  bool Loop(std::size_t first, ResultContext& result, std::uint32_t id,
            queueio::Verdict& out) noexcept;

  std::shared_ptr<const ChainPlan> plan_;  // keeps the extensions loaded
  std::vector<Link> links_;
  // links_ as the packet loop reads it (fixed once built): after each call
  // into an extension the compiler must reload the vector's bounds and
  // recompute its size; these two cut 240 to 219 instructions per
  // one-extension decision (callgrind).
  Link* link_data_ = nullptr;
  std::size_t link_count_ = 0;
  PendingTable* table_;
  std::uint8_t* scratch_;
  std::uint32_t max_edit_;
  bool may_pend_ = false;
  std::atomic<std::uint32_t> outstanding_{0};
  // The view handed to process(), reused for every packet.
  PacketContext context_;
  std::uint64_t now_ns_ = 0;  // of the packet in context_ (0: unknown)
  queueio::Verdict end_verdict_;
  // Interface names by index, from the plan; index 0 and unknown ones are "".
  const std::array<char, 16>* names_ = nullptr;
  std::size_t name_count_ = 0;
};

// Chains freed by a reload while some of their packets were still pending.
// Control thread (its own lock: a decider may be freed while the host's
// control lock is held elsewhere).
class ChainGraveyard {
 public:
  void Bury(std::unique_ptr<ChainLinks> links);
  // Destroys the buried chains that no pending packet refers to any more;
  // `all`: every one (no worker runs any more).
  void Sweep(bool all = false);
  std::size_t size();  // chains still buried

 private:
  std::mutex mutex_;
  std::vector<std::unique_ptr<ChainLinks>> buried_;
};

class ChainDecider final : public decider::Decider {
 public:
  // `table` (the worker's pending packets) may be null when no extension of
  // the plan may pend; `scratch` holds max_edit bytes for inline edits.
  ChainDecider(std::shared_ptr<const ChainPlan> plan, std::size_t worker, PendingTable* table,
               std::uint8_t* scratch, std::uint32_t max_edit, ChainGraveyard* graveyard);
  ~ChainDecider() override;

  queueio::Verdict Decide(const queueio::PacketView& packet, std::uint64_t now_ns) noexcept override;
  decider::Decision DecideOrDefer(const queueio::PacketView& packet,
                                  std::uint64_t now_ns) noexcept override;

 private:
  std::unique_ptr<ChainLinks> links_;
  ChainGraveyard* graveyard_;
};

}  // namespace verdictd::extensions
