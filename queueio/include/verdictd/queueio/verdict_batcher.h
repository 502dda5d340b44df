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
// Flushing: when Add() says kNeedsFlush (the pending limit, or the buffer:
// one flush is one send, so the buffer is never larger than the sink's
// max_send_bytes()), when the receive side would block, and when FlushDue()
// says the oldest pending verdict waited max_delay_ns (the caller reads its
// clock once per receive batch, not per packet, and passes the receipt time
// to Add()).
//
// One instance per worker; not thread-safe, except that stats() may be read
// from any thread (single-writer relaxed atomics: the metrics scrape reads
// them where the batcher writes them). Never allocates after construction;
// Add() and Flush() are noexcept.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "verdictd/queueio/verdict.h"
#include "verdictd/queueio/verdict_encoder.h"
#include "verdictd/queueio/verdict_sink.h"

namespace verdictd::queueio {

// What the batcher counts. The batcher is the only writer (a relaxed load and
// store, no locked instruction); readers on other threads load relaxed.
struct BatcherStats {
  std::atomic<std::uint64_t> verdicts{0};          // packets given a verdict
  std::atomic<std::uint64_t> batch_messages{0};    // NFQNL_MSG_VERDICT_BATCH messages sent
  std::atomic<std::uint64_t> single_messages{0};   // NFQNL_MSG_VERDICT messages sent
  std::atomic<std::uint64_t> sends{0};             // calls to the sink (system calls)
  std::atomic<std::uint64_t> send_failures{0};     // sends the sink refused
  std::atomic<std::uint64_t> failed_verdicts{0};   // verdicts discarded with a refused send
  std::atomic<std::uint64_t> oversized_replacements{0};  // replacement > 65531 bytes: sent as drop
  std::atomic<std::uint64_t> connmarks_stripped{0};      // connmark left out (no conntrack support)
};

enum class AddStatus : std::uint8_t { kOk, kNeedsFlush };

class VerdictBatcher {
 public:
  // The smallest buffer: the largest single verdict (a 65531-byte payload)
  // next to a closing run, so any verdict fits an empty batcher. A sink's
  // max_send_bytes() must be at least this (QueueSocket keeps its send
  // buffer far above it).
  static constexpr std::size_t kMinBufferBytes = MaxVerdictMessageSize(0xffff - 4) + 2 * 40;

  // `buffer_bytes` bounds one send (raised to kMinBufferBytes); `max_pending`
  // bounds the verdicts held before Add() asks for a flush; `capacity` is the
  // most set_max_pending() may raise it to later (the tables are sized for
  // it here, once). `stats` (optional) is where the counters are kept, e.g.
  // inside the worker's metrics::WorkerCounters so that the scrape reads
  // them there; it must outlive the batcher. Without it the batcher keeps
  // its own.
  VerdictBatcher(std::uint16_t queue_num, std::size_t buffer_bytes, std::size_t max_pending,
                 std::size_t capacity = 0, BatcherStats* stats = nullptr);
  // The same, with the buffer capped at what one send to `sink` may carry
  // (sink.max_send_bytes()): a large max_pending with mark or payload
  // verdicts then flushes early instead of failing with EMSGSIZE.
  VerdictBatcher(std::uint16_t queue_num, const VerdictSink& sink, std::size_t buffer_bytes,
                 std::size_t max_pending, std::size_t capacity = 0, BatcherStats* stats = nullptr);
  ~VerdictBatcher();
  VerdictBatcher(const VerdictBatcher&) = delete;
  VerdictBatcher& operator=(const VerdictBatcher&) = delete;

  // Records the verdict of packet `id`. kNeedsFlush: the buffer or the pending
  // limit is full; the verdict was NOT recorded; call Flush() and Add() again.
  // `waiting_since_ns`: when the packet started to wait (its receipt, on the
  // caller's clock); the first verdict of a flush sets the flush deadline
  // from it (FlushDue). Without it the deadline counts from the first
  // FlushDue() call that sees the verdict pending.
  AddStatus Add(std::uint32_t id, const Verdict& verdict) noexcept;
  AddStatus Add(std::uint32_t id, const Verdict& verdict, std::uint64_t waiting_since_ns) noexcept;

  // Records that packet `id` was received but its verdict comes later (by a
  // later Add(id, ...), in any order). Until every deferred id is decided no
  // batch message is formed, so no batch can cover it. kNeedsFlush: the
  // deferred table is full; nothing was recorded.
  AddStatus Defer(std::uint32_t id) noexcept;
  std::size_t deferred() const noexcept;

  // Without conntrack support in the kernel (nf_conntrack_netlink absent),
  // connmarks are left out of the messages (and counted).
  void set_connmark_supported(bool supported) noexcept;

  // The time bound of a pending verdict, in the caller's clock units (ns);
  // 0: every FlushDue() with verdicts pending says yes.
  void set_max_delay_ns(std::uint64_t max_delay_ns) noexcept;
  std::uint64_t max_delay_ns() const noexcept;
  // True when verdicts are pending and the oldest of them has waited at
  // least max_delay_ns at `now_ns` (since the waiting_since_ns given to
  // Add(), or else since the first FlushDue() call that saw it pending).
  // Call once per receive batch with a clock read once per batch.
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
  const BatcherStats& stats() const noexcept { return *stats_; }

 private:
  struct State;
  std::unique_ptr<State> state_;
  BatcherStats own_stats_;
  BatcherStats* stats_;
};

}  // namespace verdictd::queueio
