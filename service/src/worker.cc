#include "verdictd/service/worker.h"

#include <sys/prctl.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>

#include "verdictd/service/build_policy.h"

namespace verdictd::service {
namespace {

// Drain bounds: with fail-open the drain hook stops new arrivals, so the
// drain ends at the first empty receive; these only bound a drain that keeps
// being fed (a queue without fail-open under load).
constexpr int kMaxDrainBatches = 100000;
constexpr std::uint64_t kMaxDrainNanos = 2'000'000'000;
// Deferred packets end at their deadlines (at most the largest
// pending_timeout_ms); this only bounds a clock gone wrong.
constexpr std::uint64_t kMaxDeferredDrainNanos = 700'000'000'000;
// Long enough to hold several round trips of a low-rate flow, so a request
// and its reply do not look like a fast queue.
constexpr std::uint64_t kRateWindowNs = 20'000'000;
// A pause shorter than this gathers too little to pay for the sleep: the
// worker spins instead (when the next packet is due within the budget).
constexpr std::uint64_t kMinPauseNs = 10'000;
// A spin lasts at most this many expected inter-arrival gaps.
constexpr std::uint64_t kSpinGaps = 2;
// How long a sleep overshoot estimate that rules out every pause stands.
constexpr std::uint64_t kOvershootExpiryNs = 1'000'000'000;

class SystemClock final : public WorkerClock {
 public:
  std::uint64_t Now() noexcept override { return base::MonotonicNanos(); }
  void Sleep(std::uint64_t ns) noexcept override {
    timespec pause{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
    clock_nanosleep(CLOCK_MONOTONIC, 0, &pause, nullptr);
  }
};

SystemClock g_system_clock;

}  // namespace

Worker::Worker(const WorkerOptions& options, queueio::PacketSource& source,
               queueio::VerdictSink& sink, PolicyExchange& exchange,
               metrics::WorkerCounters& counters)
    : options_(options),
      source_(source),
      sink_(sink),
      exchange_(exchange),
      counters_(counters),
      // One flush is one send: the buffer stays within what the sink takes.
      batcher_(options.queue_num, sink, options.send_buffer_bytes,
               options.batch_size == 0 ? 1 : options.batch_size, options.batch_capacity,
               &counters.batcher),
      // The options were made from the configuration of the current policy;
      // only a later generation brings new batching settings.
      applied_generation_(exchange.generation()) {
  options_.batch_size = batcher_.max_pending();
  if (options_.clock == nullptr) options_.clock = &g_system_clock;
  // One group per receive batch at most, and a batch holds >= 1 verdict.
  groups_.resize(std::max(options.batch_capacity, batcher_.max_pending()) + 1);
  deferred_ = exchange.Peek().deferred.get();
  batcher_.set_connmark_supported(options.connmark_supported);
  batcher_.set_max_delay_ns(budget_ns());
}

void Worker::HandOverState(const Policy& from, const Policy& to) noexcept {
  const std::size_t i = options_.index;
  if (i >= from.deciders.size() || i >= to.deciders.size()) return;
  Decider* previous = from.deciders[i].get();
  Decider* next = to.deciders[i].get();
  if (previous != nullptr && next != nullptr && previous != next) next->TakeStateFrom(*previous);
}

void Worker::ApplyBatchingSettings(const Policy& policy) noexcept {
  applied_generation_ = policy.generation;
  const config::VerdictSection& verdict = policy.config.verdict;
  // Pending verdicts above a lowered limit go out at the next Add().
  options_.batch_size = batcher_.set_max_pending(verdict.batch_size);
  options_.flush_interval_us = verdict.flush_interval_us;
  options_.busy_poll_us = verdict.busy_poll_us;
  options_.latency_budget_us = verdict.latency_budget_us;
  batcher_.set_max_delay_ns(budget_ns());
}

std::uint64_t Worker::Now() noexcept { return options_.clock->Now(); }

void Worker::Flush() noexcept {
  const std::size_t flushed = batcher_.pending();
  if (flushed == 0) return;
  const bool ok = batcher_.Flush(sink_);
  const std::uint64_t now = Now();
  const std::size_t groups = group_count_;
  group_count_ = 0;
  if (ok) {
    send_errors_in_a_row_ = 0;
    // Exact per packet: every verdict of a group was received at the same time.
    for (std::size_t i = 0; i < groups; ++i) {
      counters_.verdict_latency.Observe(now - groups_[i].receipt_ns, groups_[i].count);
    }
  } else {
    counters_.send_errors.Add();
    ++send_errors_in_a_row_;
  }
}

void Worker::AddVerdict(std::uint32_t id, const queueio::Verdict& verdict,
                        std::uint64_t now_ns) noexcept {
  const std::uint64_t waiting_since =
      pause_start_ns_ != 0 && pause_start_ns_ < now_ns ? pause_start_ns_ : now_ns;
  // The first verdict of a flush starts the batcher's deadline (FlushDue).
  if (batcher_.Add(id, verdict, waiting_since) == queueio::AddStatus::kNeedsFlush) {
    Flush();
    // An empty batcher takes any verdict whose message fits its buffer.
    if (batcher_.Add(id, verdict, waiting_since) == queueio::AddStatus::kNeedsFlush) {
      counters_.send_errors.Add();
      return;
    }
  }
  if (group_count_ == 0 || groups_[group_count_ - 1].receipt_ns != now_ns) {
    if (group_count_ < groups_.size()) groups_[group_count_++] = {now_ns, 0};
  }
  ++groups_[group_count_ - 1].count;
  counters_.verdicts[static_cast<std::size_t>(verdict.kind)].Add();
}

void Worker::HandlePacket(const queueio::ParseResult& result, const queueio::PacketView& packet,
                          const Policy& policy, std::uint64_t now_ns) noexcept {
  switch (result.status) {
    case queueio::ParseStatus::kOk: {
      counters_.packets.Add();
      counters_.bytes.Add(packet.original_length);
      const std::uint32_t length =
          packet.original_length > packet.payload.size()
              ? packet.original_length
              : static_cast<std::uint32_t>(packet.payload.size());
      counters_.max_packet_length.Max(length);
      if (packet.is_gso()) counters_.gso_packets.Add();
      if (packet.has_timestamp) {
        // One clock read per receive batch, not per packet.
        if (realtime_ns_ == 0) realtime_ns_ = base::RealtimeNanos();
        const auto realtime = static_cast<std::int64_t>(realtime_ns_);
        if (realtime > packet.timestamp_ns) {
          counters_.kernel_delay.Observe(static_cast<std::uint64_t>(realtime - packet.timestamp_ns));
        }
      }
      Decider* decider =
          options_.index < policy.deciders.size() ? policy.deciders[options_.index].get() : nullptr;
      if (decider != nullptr && decider->may_defer()) {
        const decider::Decision decision = decider->DecideOrDefer(packet, now_ns);
        if (!decision.deferred) {
          AddVerdict(packet.id, decision.verdict, now_ns);
        } else if (batcher_.Defer(packet.id) != queueio::AddStatus::kOk) {
          // The batcher's table of undecided ids is full: the packet gets
          // the overflow verdict now, its late answer is discarded.
          AddVerdict(packet.id, deferred_ != nullptr ? deferred_->Abandon(options_.index, packet.id)
                                                     : queueio::Verdict::Accept(),
                     now_ns);
        }
        return;
      }
      const queueio::Verdict verdict =
          decider != nullptr ? decider->Decide(packet, now_ns)
                             : ToQueueVerdict(policy.config.verdict.default_verdict);
      AddVerdict(packet.id, verdict, now_ns);
      return;
    }
    case queueio::ParseStatus::kTruncated:
    case queueio::ParseStatus::kBadLength:
      counters_.malformed.Add();
      if (result.has_id) {
        counters_.unparseable_verdicts.Add();
        AddVerdict(result.id, ToQueueVerdict(policy.config.verdict.unparseable_verdict), now_ns);
      }
      return;
    case queueio::ParseStatus::kMissingPacketHdr:
      counters_.malformed.Add();
      return;
    case queueio::ParseStatus::kNetlinkError:
      if (result.error_code != 0) counters_.kernel_errors.Add();
      return;
    case queueio::ParseStatus::kNotPacket:
    case queueio::ParseStatus::kDone:
      return;
  }
}

void Worker::HandleBatch(const queueio::ReceiveBatch& batch, std::uint64_t now_ns) noexcept {
  // After the receive returned, not before it blocked: a policy published
  // while the worker slept applies to the packets that woke it.
  const Policy& policy = exchange_.Peek();
  if (policy.generation != applied_generation_) {
    // The last policy is still alive: it is the generation this worker
    // reported, which the exchange never frees before the next Report().
    if (last_policy_ != nullptr) HandOverState(*last_policy_, policy);
    ApplyBatchingSettings(policy);
    if (deferred_ == nullptr) deferred_ = policy.deferred.get();
  }
  exchange_.Report(options_.index, policy.generation);
  last_policy_ = &policy;
  realtime_ns_ = 0;
  // A message cut by the end of its datagram (MSG_TRUNC, a lying length)
  // comes as kTruncated/kBadLength: if its id is readable it still gets a
  // verdict, else the kernel would hold the packet until it times out.
  batch.ForEachPacket([&](const queueio::ParseResult& result, const queueio::PacketView& packet) {
    HandlePacket(result, packet, policy, now_ns);
  });
  if (deferred_ != nullptr) deferred_->Dispatch(options_.index);
}

std::uint64_t Worker::CoalesceNanos() const noexcept {
  if (options_.coalesce_min_pps == 0 || options_.busy_poll_us > 0 ||
      rate_pps_ < options_.coalesce_min_pps) {
    return 0;
  }
  // The packets that arrive during the pause wait in the kernel for all of
  // it and the sleep's overshoot: both come out of the budget.
  const std::uint64_t budget = budget_ns();
  if (budget <= overshoot_ns_) return 0;
  const std::uint64_t wanted = std::uint64_t{options_.coalesce_target} * 1'000'000'000 / rate_pps_;
  return std::min<std::uint64_t>(wanted, budget - overshoot_ns_);
}

queueio::ReceiveStatus Worker::WaitWithinBudget() noexcept {
  const std::uint64_t hold = CoalesceNanos();
  if (hold >= kMinPauseNs) {
    // A fast queue that just ran dry: let a few packets gather instead of
    // being woken by the next one. The receive after the pause does not block.
    const std::uint64_t start = Now();
    options_.clock->Sleep(hold);
    const std::uint64_t slept = Now() - start;
    // One late wake (preemption) at most doubles the estimate; a lasting
    // rise still takes over within a few pauses.
    const std::uint64_t over = std::min(slept > hold ? slept - hold : 0, 2 * overshoot_ns_ + 1000);
    // A decaying maximum: the tail of the overshoot is what breaks a budget.
    overshoot_ns_ = std::max(over, overshoot_ns_ - overshoot_ns_ / 16);
    overshoots_[next_overshoot_++ % overshoots_.size()] = over;
    last_pause_ns_ = start;
    pause_start_ns_ = start;
    return source_.Receive(batch_, false, 0);
  }
  const std::uint64_t budget = budget_ns();
  if (budget > 0 && budget < overshoot_ns_ + kMinPauseNs) {
    // The estimate alone rules the pause out, and no pause measures it
    // again: let it decay towards the smallest of the last measured
    // overshoots, so a few late wakes do not rule out pausing for good (a
    // budget below the real overshoot still never pauses). Once every one
    // of those was late, the worker would never pause again: after
    // kOvershootExpiryNs without a pause the estimate goes back to the
    // assumed one, which the next pause then measures.
    const std::uint64_t now = Now();
    if (now - last_pause_ns_ >= kOvershootExpiryNs) {
      overshoots_.fill(kAssumedOvershootNs);
      overshoot_ns_ = kAssumedOvershootNs;
      last_pause_ns_ = now;
    } else {
      const std::uint64_t floor = *std::min_element(overshoots_.begin(), overshoots_.end());
      if (overshoot_ns_ > floor) {
        overshoot_ns_ = std::max(floor, overshoot_ns_ - overshoot_ns_ / 16);
      }
    }
  }
  if (budget == 0 || options_.busy_poll_us > 0 || options_.coalesce_min_pps == 0 ||
      rate_pps_ < options_.coalesce_min_pps) {
    return queueio::ReceiveStatus::kWouldBlock;
  }
  // The budget is too small for a sleep but the next packet is due within
  // it: spin for it (cheaper than a wake-up, and it does not wait for one).
  const std::uint64_t gap = 1'000'000'000 / rate_pps_;
  if (gap >= budget) return queueio::ReceiveStatus::kWouldBlock;
  const std::uint64_t until = Now() + std::min(budget, kSpinGaps * gap);
  do {
    const queueio::ReceiveStatus status = source_.Receive(batch_, false, 0);
    if (status != queueio::ReceiveStatus::kWouldBlock) return status;
    if (stop_.load(std::memory_order_relaxed)) return status;
  } while (Now() < until);
  return queueio::ReceiveStatus::kWouldBlock;
}

void Worker::Ready(std::uint32_t id, const queueio::Verdict& verdict) noexcept {
  AddVerdict(id, verdict, ready_now_ns_);
}

void Worker::PollDeferred(std::uint64_t now_ns) noexcept {
  if (deferred_ == nullptr || deferred_->pending(options_.index) == 0) return;
  ready_now_ns_ = now_ns;
  deferred_->Poll(options_.index, now_ns, *this);
}

queueio::ReceiveStatus Worker::ReceiveNext(bool allow_block) noexcept {
  // After a full batch the socket may hold more: look before any wait (a
  // flush for the budget does not mean the queue ran dry).
  if (!allow_block || batcher_.pending() > 0 || !drained_) {
    return source_.Receive(batch_, false, 0);
  }
  if (deferred_ != nullptr && deferred_->pending(options_.index) > 0) {
    // Verdicts complete on other threads while this one waits: wait on the
    // socket and the deferred source's wake-up together (a completion wakes
    // this thread only when it is asleep). Without a descriptor to wait on,
    // wake up every millisecond to collect them (one SO_RCVTIMEO change
    // while any are pending, none otherwise).
    if (options_.wait_fd >= 0 &&
        deferred_->Wait(options_.index, options_.wait_fd, options_.stop_check_ms, Now())) {
      return source_.Receive(batch_, false, 0);
    }
    return source_.Receive(batch_, true, 1);
  }
  if (const queueio::ReceiveStatus status = WaitWithinBudget();
      status != queueio::ReceiveStatus::kWouldBlock) {
    return status;
  }
  if (options_.busy_poll_us > 0) {
    // Low-latency mode: waking a sleeping thread costs tens to hundreds of
    // microseconds here, so spin on non-blocking receives for a while first.
    const std::uint64_t until = Now() + std::uint64_t{options_.busy_poll_us} * 1000;
    do {
      const queueio::ReceiveStatus status = source_.Receive(batch_, false, 0);
      if (status != queueio::ReceiveStatus::kWouldBlock) return status;
      if (stop_.load(std::memory_order_relaxed)) return status;
    } while (Now() < until);
  }
  return source_.Receive(batch_, true, options_.stop_check_ms);
}

queueio::ReceiveStatus Worker::RunOnce(bool allow_block) noexcept {
  pause_start_ns_ = 0;
  const queueio::ReceiveStatus status = ReceiveNext(allow_block);
  if (deferred_ != nullptr && deferred_->pending(options_.index) > 0) {
    PollDeferred(Now());
    // Completions found the socket idle: send them now.
    if (status != queueio::ReceiveStatus::kOk) Flush();
  }
  switch (status) {
    case queueio::ReceiveStatus::kOk: {
      // Only the receive streak: packets arriving say nothing about sends.
      receive_errors_in_a_row_ = 0;
      const std::uint64_t now = Now();
      drained_ = options_.receive_batch > 0 && batch_.datagrams.size() < options_.receive_batch;
      HandleBatch(batch_, now);
      window_packets_ += batch_.datagrams.size();
      if (now - window_start_ns_ >= kRateWindowNs) {
        rate_pps_ = window_packets_ * 1'000'000'000 / (now - window_start_ns_);
        window_start_ns_ = now;
        window_packets_ = 0;
      }
      if (batcher_.pending() > 0) {
        // A short batch emptied the socket: send now, no receive to learn it
        // again. Else the verdicts wait for the next receive's company unless
        // that would take the oldest past its budget (the batcher's deadline,
        // checked after this batch's work: a verdict waits at most the budget
        // plus one batch).
        if ((options_.receive_batch > 0 && batch_.datagrams.size() < options_.receive_batch) ||
            batcher_.FlushDue(Now())) {
          Flush();
        }
      }
      break;
    }
    case queueio::ReceiveStatus::kWouldBlock:
      // Nothing more to read now: no verdict waits for company that is not coming.
      drained_ = true;
      Flush();
      if (Now() - window_start_ns_ >= kRateWindowNs) {
        // Idle: the rate of the last window no longer describes the queue.
        rate_pps_ = 0;
      }
      break;
    case queueio::ReceiveStatus::kInterrupted:
      break;
    case queueio::ReceiveStatus::kOverrun:
      counters_.enobufs.Add();
      break;
    case queueio::ReceiveStatus::kError:
      counters_.receive_errors.Add();
      ++receive_errors_in_a_row_;
      drained_ = true;  // a failing socket is not polled in a tight loop
      Flush();
      break;
  }
  return status;
}

void Worker::TestStall(std::uint32_t ms) noexcept {
  test_stall_ms_.store(0, std::memory_order_relaxed);
  timespec pause{static_cast<time_t>(ms / 1000), static_cast<long>(ms % 1000) * 1'000'000};
  while (clock_nanosleep(CLOCK_MONOTONIC, 0, &pause, &pause) == EINTR) {
  }
}

void Worker::Drain() noexcept {
  const bool hand_over = hand_over_.load(std::memory_order_relaxed);
  if (drain_hook_ && !hand_over) drain_hook_();
  const std::uint64_t deadline = MonotonicNanos() + kMaxDrainNanos;
  for (int i = 0; i < kMaxDrainBatches && !hand_over && MonotonicNanos() < deadline; ++i) {
    const queueio::ReceiveStatus status = RunOnce(false);
    if (status == queueio::ReceiveStatus::kWouldBlock) break;
    if (status == queueio::ReceiveStatus::kError &&
        receive_errors_in_a_row_ >= options_.max_consecutive_errors) {
      break;
    }
  }
  // Packets waiting for asynchronous verdicts: each completes or reaches its
  // own deadline (the timeout verdict), so this ends by itself; none is left
  // to the kernel.
  const std::uint64_t deferred_deadline = MonotonicNanos() + kMaxDeferredDrainNanos;
  while (deferred_ != nullptr && deferred_->pending(options_.index) > 0 &&
         MonotonicNanos() < deferred_deadline) {
    PollDeferred(MonotonicNanos());
    Flush();
    if (deferred_->pending(options_.index) > 0) {
      timespec pause{0, 200'000};
      clock_nanosleep(CLOCK_MONOTONIC, 0, &pause, nullptr);
    }
  }
  if (deferred_ != nullptr && deferred_->pending(options_.index) > 0) {
    ready_now_ns_ = MonotonicNanos();
    deferred_->ExpireAll(options_.index, *this);
  }
  Flush();
}

WorkerExit Worker::Run() noexcept {
  WorkerExit exit = WorkerExit::kStopped;
  // The coalescing pause is short (tens of microseconds): the default 50 us
  // timer slack would be most of it. Failure only leaves the default slack,
  // which the measured overshoot then accounts for.
  prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
  std::uint64_t heartbeat = 0;
  while (!stop_.load(std::memory_order_acquire)) {
    // Progress for readiness and the watchdog: one relaxed store each per
    // loop iteration (single writer), none per packet.
    counters_.heartbeat.store(++heartbeat, std::memory_order_relaxed);
    counters_.pending.store(static_cast<std::uint32_t>(batcher_.pending()),
                            std::memory_order_relaxed);
    if (const std::uint32_t ms = test_stall_ms_.load(std::memory_order_relaxed); ms != 0)
        [[unlikely]] {
      TestStall(ms);
    }
    RunOnce(true);
    const bool receive_failing = receive_errors_in_a_row_ >= options_.max_consecutive_errors;
    if (receive_failing || send_errors_in_a_row_ >= options_.max_consecutive_errors) {
      try {
        fatal_reason_ = receive_failing
                            ? std::string("receive failed: ") + std::strerror(batch_.last_errno)
                            : std::string("sending verdicts keeps failing");
      } catch (...) {
      }
      exit = WorkerExit::kFatalError;
      break;
    }
  }
  Drain();
  exchange_.Retire(options_.index);
  return exit;
}

}  // namespace verdictd::service
