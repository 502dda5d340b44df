#include "verdictd/service/worker.h"

#include <linux/netlink.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include "verdictd/queueio/parser.h"
#include "verdictd/service/build_policy.h"

namespace verdictd::service {
namespace {

static_assert(static_cast<std::size_t>(queueio::VerdictKind::kStop) + 1 ==
                  metrics::kVerdictLabels.size(),
              "metrics::kVerdictLabels must follow queueio::VerdictKind");

std::uint64_t ClockNanos(clockid_t clock) noexcept {
  timespec ts{};
  clock_gettime(clock, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

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

}  // namespace

std::uint64_t MonotonicNanos() noexcept { return ClockNanos(CLOCK_MONOTONIC); }

Worker::Worker(const WorkerOptions& options, queueio::PacketSource& source,
               queueio::VerdictSink& sink, PolicyExchange& exchange,
               metrics::WorkerCounters& counters)
    : options_(options),
      source_(source),
      sink_(sink),
      exchange_(exchange),
      counters_(counters),
      batcher_(options.queue_num, options.send_buffer_bytes,
               options.batch_size == 0 ? 1 : options.batch_size, options.batch_capacity),
      // The options were made from the configuration of the current policy;
      // only a later generation brings new batching settings.
      applied_generation_(exchange.generation()) {
  options_.batch_size = batcher_.max_pending();
  batcher_.set_connmark_supported(options.connmark_supported);
  deferred_ = exchange.Peek().deferred.get();
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
}

void Worker::Flush() noexcept {
  const std::size_t flushed = batcher_.pending();
  if (flushed == 0) return;
  const bool ok = batcher_.Flush(sink_);
  const std::uint64_t now = MonotonicNanos();
  if (ok) {
    consecutive_errors_ = 0;
    counters_.verdict_latency.Observe(now - oldest_pending_ns_, flushed);
  } else {
    counters_.send_errors.Add();
    ++consecutive_errors_;
  }
  // Mirror the batcher's own counts into the scrape-visible counters.
  const queueio::BatcherStats& stats = batcher_.stats();
  counters_.batch_messages.Add(stats.batch_messages - reported_batch_messages_);
  counters_.single_messages.Add(stats.single_messages - reported_single_messages_);
  counters_.verdict_sends.Add(stats.sends - reported_sends_);
  reported_batch_messages_ = stats.batch_messages;
  reported_single_messages_ = stats.single_messages;
  reported_sends_ = stats.sends;
  counters_.connmarks_stripped.Add(stats.connmarks_stripped - reported_connmarks_stripped_);
  reported_connmarks_stripped_ = stats.connmarks_stripped;
}

void Worker::AddVerdict(std::uint32_t id, const queueio::Verdict& verdict,
                        std::uint64_t now_ns) noexcept {
  if (batcher_.pending() == 0) oldest_pending_ns_ = now_ns;
  if (batcher_.Add(id, verdict) == queueio::AddStatus::kNeedsFlush) {
    Flush();
    oldest_pending_ns_ = now_ns;
    // An empty batcher takes any verdict whose message fits its buffer.
    if (batcher_.Add(id, verdict) == queueio::AddStatus::kNeedsFlush) {
      counters_.send_errors.Add();
      return;
    }
  }
  counters_.verdicts[static_cast<std::size_t>(verdict.kind)].Add();
}

void Worker::HandleMessage(std::span<const std::uint8_t> message, const Policy& policy,
                           std::uint64_t now_ns) noexcept {
  queueio::PacketView packet;
  const queueio::ParseResult result = queueio::ParsePacketMessage(message, packet);
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
        const auto realtime = static_cast<std::int64_t>(ClockNanos(CLOCK_REALTIME));
        if (realtime > packet.timestamp_ns) {
          counters_.kernel_delay.Observe(static_cast<std::uint64_t>(realtime - packet.timestamp_ns));
        }
      }
      Decider* decider =
          options_.index < policy.deciders.size() ? policy.deciders[options_.index].get() : nullptr;
      if (decider != nullptr && decider->may_defer()) {
        const decider::Decision decision = decider->DecideOrDefer(packet);
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
          decider != nullptr ? decider->Decide(packet)
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
  for (const queueio::Datagram& datagram : batch.datagrams) {
    const std::uint8_t* const begin = datagram.bytes.data();
    std::size_t consumed = 0;
    const bool whole = queueio::ForEachNetlinkMessage(
        datagram.bytes, [&](std::span<const std::uint8_t> message) {
          HandleMessage(message, policy, now_ns);
          consumed = static_cast<std::size_t>(message.data() - begin) + NLMSG_ALIGN(message.size());
        });
    if (!whole || datagram.truncated) {
      // A message cut by the end of the datagram (MSG_TRUNC, a lying length)
      // was not handed to HandleMessage; if its id is readable it still needs
      // a verdict, else the kernel holds the packet until it times out.
      if (consumed < datagram.bytes.size()) {
        HandleMessage(datagram.bytes.subspan(consumed), policy, now_ns);
      } else {
        counters_.malformed.Add();
      }
    }
  }
}

std::uint64_t Worker::CoalesceNanos() const noexcept {
  if (options_.coalesce_min_pps == 0 || options_.busy_poll_us > 0 ||
      rate_pps_ < options_.coalesce_min_pps) {
    return 0;
  }
  const std::uint64_t wanted = std::uint64_t{options_.coalesce_target} * 1'000'000'000 / rate_pps_;
  return std::min<std::uint64_t>(wanted, std::uint64_t{options_.flush_interval_us} * 1000);
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
  if (!allow_block || batcher_.pending() > 0) {
    return source_.Receive(batch_, false, 0);
  }
  if (deferred_ != nullptr && deferred_->pending(options_.index) > 0) {
    // Verdicts may complete on other threads while this one waits: wake up
    // every millisecond to collect them (one SO_RCVTIMEO change while any
    // are pending, none otherwise).
    return source_.Receive(batch_, true, 1);
  }
  if (const std::uint64_t hold = CoalesceNanos(); hold > 0) {
    // A fast queue that just ran dry: let a few packets gather instead of
    // being woken by the next one. The receive after the pause does not block.
    timespec pause{static_cast<time_t>(hold / 1'000'000'000),
                   static_cast<long>(hold % 1'000'000'000)};
    clock_nanosleep(CLOCK_MONOTONIC, 0, &pause, nullptr);
    const queueio::ReceiveStatus status = source_.Receive(batch_, false, 0);
    if (status != queueio::ReceiveStatus::kWouldBlock) return status;
  }
  if (options_.busy_poll_us > 0) {
    // Low-latency mode: waking a sleeping thread costs tens to hundreds of
    // microseconds here, so spin on non-blocking receives for a while first.
    const std::uint64_t until = MonotonicNanos() + std::uint64_t{options_.busy_poll_us} * 1000;
    do {
      const queueio::ReceiveStatus status = source_.Receive(batch_, false, 0);
      if (status != queueio::ReceiveStatus::kWouldBlock) return status;
      if (stop_.load(std::memory_order_relaxed)) return status;
    } while (MonotonicNanos() < until);
  }
  return source_.Receive(batch_, true, options_.stop_check_ms);
}

queueio::ReceiveStatus Worker::RunOnce(bool allow_block) noexcept {
  const queueio::ReceiveStatus status = ReceiveNext(allow_block);
  if (deferred_ != nullptr && deferred_->pending(options_.index) > 0) {
    PollDeferred(MonotonicNanos());
    // Completions found the socket idle: send them now.
    if (status != queueio::ReceiveStatus::kOk) Flush();
  }
  switch (status) {
    case queueio::ReceiveStatus::kOk: {
      consecutive_errors_ = 0;
      const std::uint64_t now = MonotonicNanos();
      HandleBatch(batch_, now);
      window_packets_ += batch_.datagrams.size();
      if (now - window_start_ns_ >= kRateWindowNs) {
        rate_pps_ = window_packets_ * 1'000'000'000 / (now - window_start_ns_);
        window_start_ns_ = now;
        window_packets_ = 0;
      }
      if (batcher_.pending() > 0 &&
          ((options_.receive_batch > 0 && batch_.datagrams.size() < options_.receive_batch) ||
           now - oldest_pending_ns_ >= std::uint64_t{options_.flush_interval_us} * 1000)) {
        // A short batch emptied the socket: send now, no receive to learn it again.
        Flush();
      }
      break;
    }
    case queueio::ReceiveStatus::kWouldBlock:
      // Nothing more to read now: no verdict waits for company that is not coming.
      Flush();
      if (MonotonicNanos() - window_start_ns_ >= kRateWindowNs) {
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
      ++consecutive_errors_;
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
        consecutive_errors_ >= options_.max_consecutive_errors) {
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
    const queueio::ReceiveStatus status = RunOnce(true);
    if (consecutive_errors_ >= options_.max_consecutive_errors) {
      try {
        fatal_reason_ = status == queueio::ReceiveStatus::kError
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
