// One worker: the receive -> parse -> decide -> verdict loop of one queue.
//
// A Worker owns no thread; Run() is the thread body (Service starts one thread
// per queue and pins it). The loop is the hot path: after construction it
// does not allocate, lock or throw, and its only system calls are the batched
// receive and send of its PacketSource / VerdictSink (plus vDSO clock reads).
//
// Loop, per iteration:
//  1. receive a batch: blocking when no verdict is pending (or, in low-latency
//     mode, spinning on non-blocking receives for busy_poll_us first), else
//     non-blocking;
//  2. fetch the current Policy from the PolicyExchange (after the receive
//     returned, so a reload applies to the very next packet); a policy of a
//     new generation also brings the batching settings of its [verdict]
//     section (batch size, flush interval, busy poll), applied from this batch on,
//     and its decider takes over the previous decider's state (rate limits,
//     bypassed flows) before it sees a packet;
//  3. parse every message; decide; add the verdict to the batcher;
//  4. flush when the batcher is full, when the receive would block, or when
//     the oldest pending verdict has waited the latency budget (the
//     batcher's FlushDue(), with the clock read once per receive batch).
// The latency budget (the smaller of latency_budget_us and
// flush_interval_us) bounds how long a verdict waits in userspace, for
// company in the batcher or in a coalescing pause. The worker picks the
// cheapest way to stay within it from the arrival rate it measures: block
// (slow queues: every packet wakes it and is answered at once), pause (fast
// queues: sleep so that packets gather, for at most the budget less the
// sleep overshoot it measures), spin (a budget too small for a sleep on a
// queue whose next packet is due within it) or, with a budget of 0, send
// every receive's verdicts at once. Each packet's own receipt-to-send time
// goes into WorkerCounters::verdict_latency (one observation per receive
// batch and flush, with the batch's count).
// RequestStop() (any thread) ends the loop at the next batch boundary; the
// worker then drains: calls the drain hook (the kernel stops queueing to it),
// gives every packet still readable its verdict, flushes, and returns.
//
// Counters go to the worker's own metrics::WorkerCounters (single writer).
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "verdictd/base/clock.h"
#include "verdictd/metrics/worker_counters.h"
#include "verdictd/queueio/packet_source.h"
#include "verdictd/queueio/verdict_batcher.h"
#include "verdictd/queueio/verdict_sink.h"
#include "verdictd/service/policy_exchange.h"

namespace verdictd::service {

// The worker's time: the monotonic clock and sleeps. Tests substitute a fake
// one to check the latency bound without timing thresholds.
class WorkerClock {
 public:
  virtual ~WorkerClock() = default;
  virtual std::uint64_t Now() noexcept = 0;             // monotonic nanoseconds
  virtual void Sleep(std::uint64_t nanoseconds) noexcept = 0;  // relative
};

struct WorkerOptions {
  std::size_t index = 0;         // slot in the PolicyExchange and Policy::deciders
  std::uint16_t queue_num = 0;   // for verdict messages
  std::size_t batch_size = 256;  // verdicts held before a flush
  // The largest batch_size a reload may set later; the verdict tables are
  // sized for it at construction (0: batch_size). Larger reloaded values are
  // clamped to it (config/changes.h refuses them as restart-only first).
  std::size_t batch_capacity = 0;
  std::uint32_t flush_interval_us = 1000;  // longest a verdict waits in the batcher
  std::uint32_t busy_poll_us = 0;  // > 0: spin this long on non-blocking receives before sleeping
  // Longest a verdict waits in userspace (with flush_interval_us: the
  // smaller holds). 0: every receive's verdicts are sent at once.
  std::uint32_t latency_budget_us = 100;
  // nullptr: the system's monotonic clock and clock_nanosleep.
  WorkerClock* clock = nullptr;
  // Datagrams one receive asks for (the source's batch size). A receive that
  // returns fewer found the socket empty, so the verdicts go out at once
  // instead of after one more receive that would only say "would block".
  // 0: unknown (always ask again).
  std::size_t receive_batch = 0;
  // Receive coalescing: while packets arrive at >= coalesce_min_pps, the
  // worker that found its queue empty sleeps before it receives again,
  // about long enough for coalesce_target packets to gather (within the
  // latency budget), instead of waking for every packet: waking a thread
  // costs more than handling a packet here. Slower queues (and the
  // low-latency mode) wake per packet as before. 0 turns it off.
  std::uint32_t coalesce_min_pps = 4000;
  std::uint32_t coalesce_target = 32;
  // How long one blocking receive waits before the loop checks for a stop.
  // RequestStop() is also noticed after any received batch.
  int stop_check_ms = 100;
  // The source's descriptor (the queue socket), readable when a receive
  // would find packets. With packets waiting for asynchronous verdicts the
  // worker polls it together with the deferred source's wake-up instead of
  // a 1 ms receive timeout. -1: unknown (in-memory sources).
  int wait_fd = -1;
  // Verdict buffer size: enough for batch_capacity verdicts with marks (a
  // full buffer only flushes early). Capped at the sink's max_send_bytes().
  std::size_t send_buffer_bytes = 64 * 1024;
  // False when the kernel lacks nf_conntrack_netlink (BindReport): connmarks
  // are left out of verdicts and counted (BatcherStats::connmarks_stripped).
  bool connmark_supported = true;
  // Receive errors in a row, or send errors in a row (counted apart), after
  // which the worker gives up.
  std::uint32_t max_consecutive_errors = 1000;
};

// Why Run() returned.
enum class WorkerExit : std::uint8_t { kStopped, kFatalError };

class Worker final : private decider::ReadyVerdicts {
 public:
  // Startup (may allocate, throws std::bad_alloc only). The references must
  // outlive the worker.
  Worker(const WorkerOptions& options, queueio::PacketSource& source, queueio::VerdictSink& sink,
         PolicyExchange& exchange, metrics::WorkerCounters& counters);
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Called once when a stop was requested, before the final drain: makes the
  // kernel stop queueing new packets to this worker (see Service). Optional.
  void set_drain_hook(std::function<void()> hook) { drain_hook_ = std::move(hook); }

  // The thread body: loops until RequestStop() or a fatal error, then drains.
  WorkerExit Run() noexcept;
  // Ends Run() at the next batch boundary. Any thread, any time, idempotent.
  void RequestStop() noexcept { stop_.store(true, std::memory_order_release); }
  // Hand-over (an upgrade): like RequestStop(), but the drain reads nothing
  // more; it only gives the packets already read their verdicts. What is
  // still in the socket is the next process's to read.
  void RequestHandOver() noexcept {
    hand_over_.store(true, std::memory_order_relaxed);
    stop_.store(true, std::memory_order_release);
  }

  // One loop iteration (for tests and benchmarks): receives one batch and
  // handles it; flushes by the same rules as Run(). Returns the receive status.
  queueio::ReceiveStatus RunOnce(bool allow_block) noexcept;
  // Sends every pending verdict now.
  void Flush() noexcept;

  // Test seam for the watchdog: the loop pauses `ms` once, at its next
  // iteration, without receiving (as a worker stuck in a decider would).
  // Only the test build's control command (`debug stall`, main.cc with
  // VERDICTD_TEST_HOOKS) calls it; the release binary has no way to.
  void RequestTestStall(std::uint32_t ms) noexcept {
    test_stall_ms_.store(ms, std::memory_order_relaxed);
  }

  const queueio::BatcherStats& batcher_stats() const noexcept { return batcher_.stats(); }
  // The batching settings in force (they change with a new policy generation).
  std::size_t batch_size() const noexcept { return options_.batch_size; }
  std::uint32_t flush_interval_us() const noexcept { return options_.flush_interval_us; }
  std::uint32_t busy_poll_us() const noexcept { return options_.busy_poll_us; }
  std::uint32_t latency_budget_us() const noexcept { return options_.latency_budget_us; }
  // The bound in force, in nanoseconds: min(latency budget, flush interval).
  std::uint64_t budget_ns() const noexcept {
    const std::uint32_t us = options_.latency_budget_us < options_.flush_interval_us
                                 ? options_.latency_budget_us
                                 : options_.flush_interval_us;
    return std::uint64_t{us} * 1000;
  }
  // The sleep overshoot the pause allows for (decaying maximum of the measured ones).
  std::uint64_t sleep_overshoot_ns() const noexcept { return overshoot_ns_; }
  std::size_t pending() const noexcept { return batcher_.pending(); }
  // Packets whose verdict comes later (asynchronous extensions).
  std::size_t deferred() const noexcept {
    return deferred_ != nullptr ? deferred_->pending(options_.index) : 0;
  }
  // Why the worker gave up (empty unless Run() returned kFatalError).
  const std::string& fatal_reason() const noexcept { return fatal_reason_; }

 private:
  void HandleBatch(const queueio::ReceiveBatch& batch, std::uint64_t now_ns) noexcept;
  void HandlePacket(const queueio::ParseResult& result, const queueio::PacketView& packet,
                    const Policy& policy, std::uint64_t now_ns) noexcept;
  void AddVerdict(std::uint32_t id, const queueio::Verdict& verdict, std::uint64_t now_ns) noexcept;
  queueio::ReceiveStatus ReceiveNext(bool allow_block) noexcept;
  void ApplyBatchingSettings(const Policy& policy) noexcept;
  // A reload's decider takes over the per-worker state of the previous one.
  void HandOverState(const Policy& from, const Policy& to) noexcept;
  std::uint64_t CoalesceNanos() const noexcept;
  // Waits for packets on an empty queue the way the budget allows (pause or
  // spin); returns kWouldBlock when the caller should block.
  queueio::ReceiveStatus WaitWithinBudget() noexcept;
  std::uint64_t Now() noexcept;
  void Drain() noexcept;
  // Deferred verdicts (asynchronous extensions): the ready ones go to the batcher.
  void PollDeferred(std::uint64_t now_ns) noexcept;
  void Ready(std::uint32_t id, const queueio::Verdict& verdict) noexcept override;
  void TestStall(std::uint32_t ms) noexcept;

  WorkerOptions options_;
  queueio::PacketSource& source_;
  queueio::VerdictSink& sink_;
  PolicyExchange& exchange_;
  metrics::WorkerCounters& counters_;
  queueio::VerdictBatcher batcher_;
  queueio::ReceiveBatch batch_;
  std::function<void()> drain_hook_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> hand_over_{false};
  std::atomic<std::uint32_t> test_stall_ms_{0};

  std::uint64_t applied_generation_;  // the policy whose batching settings are in options_
  const Policy* last_policy_ = nullptr;  // the policy of the last batch (reported to the exchange)
  // The process's source of deferred verdicts (the first policy that had one).
  decider::DeferredVerdicts* deferred_ = nullptr;
  std::uint64_t ready_now_ns_ = 0;  // the clock of the current PollDeferred()
  bool drained_ = true;  // the last receive found the socket empty (may wait next)
  std::uint64_t pause_start_ns_ = 0;  // != 0: the current batch was received after a pause
  // Pending verdicts grouped by receipt time (one group per receive batch):
  // the exact histogram at per-batch cost. Sized for batch_capacity groups.
  struct ReceiptGroup {
    std::uint64_t receipt_ns;
    std::uint32_t count;
  };
  std::vector<ReceiptGroup> groups_;
  std::size_t group_count_ = 0;
  // Sleep overshoot: 50 us assumed (the default timer slack) until measured.
  static constexpr std::uint64_t kAssumedOvershootNs = 50'000;
  std::uint64_t overshoot_ns_ = kAssumedOvershootNs;
  // The last measured overshoots (the assumed one until then): the pause
  // comes back once their smallest fits the budget again.
  std::array<std::uint64_t, 8> overshoots_{kAssumedOvershootNs, kAssumedOvershootNs,
                                           kAssumedOvershootNs, kAssumedOvershootNs,
                                           kAssumedOvershootNs, kAssumedOvershootNs,
                                           kAssumedOvershootNs, kAssumedOvershootNs};
  std::size_t next_overshoot_ = 0;
  std::uint64_t last_pause_ns_ = 0;  // start of the last pause
  std::uint64_t realtime_ns_ = 0;        // CLOCK_REALTIME of the current batch (0: not read)
  // Arrival rate, measured over windows of >= kRateWindowNs (coalescing).
  std::uint64_t window_start_ns_ = 0;
  std::uint64_t window_packets_ = 0;
  std::uint64_t rate_pps_ = 0;
  // Failed receives and failed sends in a row, apart: a steady stream of
  // packets must not hide a socket that refuses every verdict.
  std::uint32_t receive_errors_in_a_row_ = 0;
  std::uint32_t send_errors_in_a_row_ = 0;
  std::string fatal_reason_;
};

// The worker's clock (CLOCK_MONOTONIC nanoseconds), as the rest of the
// service names it.
using base::MonotonicNanos;

}  // namespace verdictd::service
