// Collects the verdicts of one queue and turns them into as few netlink
// messages as the kernel's semantics allow.
//
// Batching rule: the kernel applies NFQNL_MSG_VERDICT_BATCH to every queued
// id <= the one given. Verdicts are therefore added in the order the packets
// were received, and a run of plain verdicts with the same kind and mark is
// folded into one batch message only while no packet received before the
// run's end is still undecided (see Defer()). Non-plain verdicts (payload,
// connmark) go out as single NFQNL_MSG_VERDICT messages in the same buffer,
// in order, so the kernel applies them before later batch messages.
//
// One instance per worker; not thread-safe. Never allocates after
// construction; Add() and Flush() are noexcept.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "verdictd/queueio/verdict.h"
#include "verdictd/queueio/verdict_sink.h"

namespace verdictd::queueio {

struct BatcherStats {
  std::uint64_t verdicts = 0;          // packets given a verdict
  std::uint64_t batch_messages = 0;    // NFQNL_MSG_VERDICT_BATCH messages sent
  std::uint64_t single_messages = 0;   // NFQNL_MSG_VERDICT messages sent
  std::uint64_t sends = 0;             // calls to the sink (system calls)
  std::uint64_t send_failures = 0;     // sends the sink refused
};

enum class AddStatus : std::uint8_t { kOk, kNeedsFlush };

class VerdictBatcher {
 public:
  // `buffer_bytes` bounds one send; `max_pending` bounds the verdicts held
  // before Add() asks for a flush.
  VerdictBatcher(std::uint16_t queue_num, std::size_t buffer_bytes, std::size_t max_pending);
  ~VerdictBatcher();
  VerdictBatcher(const VerdictBatcher&) = delete;
  VerdictBatcher& operator=(const VerdictBatcher&) = delete;

  // Records the verdict of packet `id`. kNeedsFlush: the buffer or the pending
  // limit is full; the verdict was NOT recorded; call Flush() and Add() again.
  AddStatus Add(std::uint32_t id, const Verdict& verdict) noexcept;

  // Sends everything recorded in one sink call. Returns false if the sink
  // failed (the verdicts are counted as send_failures and discarded; the
  // kernel keeps those packets until a later batch verdict covers them or
  // the queue is unbound).
  bool Flush(VerdictSink& sink) noexcept;

  std::size_t pending() const noexcept;
  const BatcherStats& stats() const noexcept { return stats_; }

 private:
  struct State;
  std::unique_ptr<State> state_;
  BatcherStats stats_;
};

}  // namespace verdictd::queueio
