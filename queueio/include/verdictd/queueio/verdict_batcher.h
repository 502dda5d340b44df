// Collects the verdicts of one queue and turns them into as few netlink
// messages as the kernel's semantics allow.
//
// Batching rule: the kernel applies NFQNL_MSG_VERDICT_BATCH to every queued
// id <= the one given (precisely: to the oldest queued packets up to the
// first id after the given one in 32-bit serial order, so runs across the
// wrap from 0xffffffff to 0 fold like any other). Verdicts are therefore added in the order the packets
// were received, and a run of plain verdicts with the same kind and mark is
// folded into one batch message only while no packet received before the
// run's end is still undecided (see Defer()). A run holds consecutive ids
// only; a run of one goes out as a single verdict. Non-plain verdicts
// (payload, connmark) go out as single NFQNL_MSG_VERDICT messages in the same
// buffer, in order, so the kernel applies them before later batch messages.
//
// Flushing is the caller's: when Add() says kNeedsFlush, when the receive
// side would block, and when the oldest pending verdict waited long enough.
// The service's worker keeps that deadline itself (the time the oldest
// pending verdict was added, against its latency budget); FlushDue() is the
// batcher's own bound for callers without one. Either way the clock is read
// once per receive batch, not per packet.
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
  std::uint64_t failed_verdicts = 0;   // verdicts discarded with a refused send
  std::uint64_t oversized_replacements = 0;  // replacement > 65531 bytes: sent as drop
  std::uint64_t connmarks_stripped = 0;      // connmark left out (no conntrack support)
};

enum class AddStatus : std::uint8_t { kOk, kNeedsFlush };

class VerdictBatcher {
 public:
  // `buffer_bytes` bounds one send; `max_pending` bounds the verdicts held
  // before Add() asks for a flush; `capacity` is the most set_max_pending()
  // may raise it to later (the tables are sized for it here, once).
  VerdictBatcher(std::uint16_t queue_num, std::size_t buffer_bytes, std::size_t max_pending,
                 std::size_t capacity = 0);
  ~VerdictBatcher();
  VerdictBatcher(const VerdictBatcher&) = delete;
  VerdictBatcher& operator=(const VerdictBatcher&) = delete;

  // Records the verdict of packet `id`. kNeedsFlush: the buffer or the pending
  // limit is full; the verdict was NOT recorded; call Flush() and Add() again.
  AddStatus Add(std::uint32_t id, const Verdict& verdict) noexcept;

  // Records that packet `id` was received but its verdict comes later (by a
  // later Add(id, ...), in any order). Until every deferred id is decided no
  // batch message is formed, so no batch can cover it. kNeedsFlush: the
  // deferred table is full; nothing was recorded.
  AddStatus Defer(std::uint32_t id) noexcept;
  std::size_t deferred() const noexcept;

  // Without conntrack support in the kernel (nf_conntrack_netlink absent),
  // connmarks are left out of the messages (and counted).
  void set_connmark_supported(bool supported) noexcept;

  // The time bound of a pending verdict, in the caller's clock units (ns).
  void set_max_delay_ns(std::uint64_t max_delay_ns) noexcept;
  // True when verdicts are pending and the first FlushDue() call that saw
  // them was at least max_delay_ns before `now_ns`. Call once per receive
  // batch with a clock read once per batch.
  bool FlushDue(std::uint64_t now_ns) noexcept;

  // Sends everything recorded in one sink call. Returns false if the sink
  // failed: on kError the verdicts are counted (failed_verdicts) and
  // discarded, the kernel keeps those packets until a later batch verdict
  // covers them or the queue is unbound; on kWouldBlock they are kept for the
  // next Flush().
  bool Flush(VerdictSink& sink) noexcept;

  // Changes the pending limit (a live reload of the batch size), clamped to
  // 1..capacity; returns the limit now in force. Verdicts already pending
  // above a lowered limit go out with the next flush, which Add() asks for.
  std::size_t set_max_pending(std::size_t max_pending) noexcept;
  std::size_t max_pending() const noexcept;

  std::size_t pending() const noexcept;
  const BatcherStats& stats() const noexcept { return stats_; }

 private:
  struct State;
  std::unique_ptr<State> state_;
  BatcherStats stats_;
};

}  // namespace verdictd::queueio
