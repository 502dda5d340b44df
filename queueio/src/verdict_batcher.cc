#include "verdictd/queueio/verdict_batcher.h"

#include <algorithm>
#include <vector>

#include "verdictd/base/verdict_kind.h"
#include "verdictd/queueio/verdict_encoder.h"

namespace verdictd::queueio {
namespace {

// A plain verdict message (single or batch, with a mark): 16 nlmsghdr +
// 4 nfgenmsg + 12 verdict header + 8 mark.
constexpr std::size_t kPlainMessageMax = 40;
// NFQA_PAYLOAD carries its length in 16 bits.
constexpr std::size_t kMaxReplacement = 0xffff - 4;

// 32-bit serial order (the kernel's ids wrap).
bool Before(std::uint32_t a, std::uint32_t b) noexcept {
  return static_cast<std::int32_t>(a - b) < 0;
}

// The ids received but not decided yet, in the order they were received
// (so the first is the lowest, in serial order). Removal leaves a hole that
// the front skips; the holes are squeezed out only when the end reaches the
// capacity. Fixed size, no allocation after Reserve().
class DeferredIds {
 public:
  void Reserve(std::size_t capacity) {
    ids_.resize(capacity);
    live_.resize(capacity);
  }
  std::size_t size() const noexcept { return count_; }
  bool empty() const noexcept { return count_ == 0; }
  std::uint32_t lowest() const noexcept { return ids_[head_]; }  // !empty()
  bool Push(std::uint32_t id) noexcept {
    if (end_ == ids_.size()) Compact();
    if (end_ == ids_.size()) return false;
    ids_[end_] = id;
    live_[end_] = 1;
    ++end_;
    ++count_;
    return true;
  }
  // Completions usually come in receive order: the search starts at the front.
  bool Remove(std::uint32_t id) noexcept {
    for (std::size_t i = head_; i < end_; ++i) {
      if (live_[i] == 0 || ids_[i] != id) continue;
      live_[i] = 0;
      --count_;
      while (head_ < end_ && live_[head_] == 0) ++head_;
      if (head_ == end_) head_ = end_ = 0;
      return true;
    }
    return false;
  }

 private:
  void Compact() noexcept {
    std::size_t to = 0;
    for (std::size_t i = head_; i < end_; ++i) {
      if (live_[i] == 0) continue;
      ids_[to] = ids_[i];
      live_[to] = 1;
      ++to;
    }
    for (std::size_t i = to; i < end_; ++i) live_[i] = 0;
    head_ = 0;
    end_ = to;
  }
  std::vector<std::uint32_t> ids_;
  std::vector<std::uint8_t> live_;
  std::size_t head_ = 0;
  std::size_t end_ = 0;
  std::size_t count_ = 0;
};

// Single writer: a relaxed load and store, no locked read-modify-write.
void Bump(std::atomic<std::uint64_t>& counter, std::uint64_t n = 1) noexcept {
  counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

bool SameRunVerdict(const Verdict& a, const Verdict& b) noexcept {
  return a.kind == b.kind &&
         (!base::VerdictKindInfoOf(a.kind).has_target_queue || a.target_queue == b.target_queue) &&
         a.set_mark == b.set_mark && (!a.set_mark || a.mark == b.mark);
}

}  // namespace

struct VerdictBatcher::State {
  std::uint16_t queue_num;
  std::vector<std::uint8_t> buffer;
  std::size_t used = 0;
  std::size_t max_pending;
  std::size_t capacity;  // the most max_pending may grow to (deferred's reserve)
  std::size_t pending = 0;
  std::uint32_t seq = 0;

  bool run_open = false;
  Verdict run_verdict;
  std::uint32_t run_first = 0;
  std::uint32_t run_last = 0;

  DeferredIds deferred;  // sized for `capacity`, never grows past it

  bool connmark_supported = true;
  std::uint64_t max_delay_ns = 1'000'000;
  bool stamped = false;
  std::uint64_t first_seen_ns = 0;

  // Messages encoded since the last flush, counted into the stats on success.
  std::uint64_t staged_batch = 0;
  std::uint64_t staged_single = 0;

  std::span<std::uint8_t> Free() noexcept {
    return std::span<std::uint8_t>(buffer).subspan(used);
  }

  // Encodes the open run: a batch message for two or more ids, a single
  // verdict for one (it names exactly that packet).
  void CloseRun() noexcept {
    if (!run_open) return;
    run_open = false;
    std::size_t n;
    if (run_first == run_last) {
      n = EncodeVerdict(Free(), queue_num, run_last, run_verdict, ++seq);
      ++staged_single;
    } else {
      n = EncodeBatchVerdict(Free(), queue_num, run_last, run_verdict, ++seq);
      ++staged_batch;
    }
    used += n;  // space was reserved in Add()
  }
};

static_assert(VerdictBatcher::kMinBufferBytes ==
                  MaxVerdictMessageSize(kMaxReplacement) + 2 * kPlainMessageMax,
              "kMinBufferBytes: one maximal payload verdict next to a closing run");

VerdictBatcher::VerdictBatcher(std::uint16_t queue_num, const VerdictSink& sink,
                               std::size_t buffer_bytes, std::size_t max_pending,
                               std::size_t capacity, BatcherStats* stats)
    : VerdictBatcher(queue_num, std::min(buffer_bytes, sink.max_send_bytes()), max_pending,
                     capacity, stats) {}

VerdictBatcher::VerdictBatcher(std::uint16_t queue_num, std::size_t buffer_bytes,
                               std::size_t max_pending, std::size_t capacity, BatcherStats* stats)
    : state_(std::make_unique<State>()), stats_(stats != nullptr ? stats : &own_stats_) {
  state_->queue_num = queue_num;
  // Always room for the largest single verdict next to a closing run, so a
  // verdict fits an empty batcher.
  state_->buffer.resize(std::max(buffer_bytes, kMinBufferBytes));
  state_->capacity = std::max<std::size_t>({max_pending, capacity, 1});
  state_->max_pending = std::max<std::size_t>(max_pending, 1);
  state_->deferred.Reserve(state_->capacity);
}

VerdictBatcher::~VerdictBatcher() = default;

AddStatus VerdictBatcher::Add(std::uint32_t id, const Verdict& verdict,
                              std::uint64_t waiting_since_ns) noexcept {
  State& s = *state_;
  const bool first = s.pending == 0;
  const AddStatus status = Add(id, verdict);
  if (first && status == AddStatus::kOk) {
    s.stamped = true;
    s.first_seen_ns = waiting_since_ns;
  }
  return status;
}

AddStatus VerdictBatcher::Add(std::uint32_t id, const Verdict& verdict_in) noexcept {
  State& s = *state_;
  if (s.pending >= s.max_pending) return AddStatus::kNeedsFlush;

  Verdict verdict = verdict_in;
  bool stripped = false;
  if (verdict.set_connmark && !s.connmark_supported) {
    verdict.set_connmark = false;
    stripped = true;
  }
  bool oversized = false;
  if (verdict.replacement.size() > kMaxReplacement) {
    // Cannot be expressed in one netlink attribute; passing the packet
    // unmodified would ignore the rule, so it is dropped.
    verdict = Verdict::Drop();
    oversized = true;
  }
  const bool plain = verdict.plain();
  const std::size_t need =
      2 * kPlainMessageMax + (plain ? 0 : MaxVerdictMessageSize(verdict.replacement.size()));
  if (s.buffer.size() - s.used < need) return AddStatus::kNeedsFlush;

  s.deferred.Remove(id);
  if (stripped) Bump(stats_->connmarks_stripped);
  if (oversized) Bump(stats_->oversized_replacements);

  // A batch message covers every queued id up to its last one, so a run may
  // only grow while every id still undecided comes after it: up to the
  // lowest pending id, never over it (the decided ones after it go out
  // singly, in the same send).
  const bool may_batch = plain && (s.deferred.empty() || Before(id, s.deferred.lowest()));
  if (may_batch && s.run_open && id == s.run_last + 1 && SameRunVerdict(verdict, s.run_verdict)) {
    s.run_last = id;
  } else {
    s.CloseRun();
    if (may_batch) {
      s.run_open = true;
      s.run_verdict = verdict;
      s.run_first = s.run_last = id;
    } else {
      s.used += EncodeVerdict(s.Free(), s.queue_num, id, verdict, ++s.seq);
      ++s.staged_single;
    }
  }
  ++s.pending;
  return AddStatus::kOk;
}

std::size_t VerdictBatcher::set_max_pending(std::size_t max_pending) noexcept {
  State& s = *state_;
  s.max_pending = std::clamp<std::size_t>(max_pending, 1, s.capacity);
  return s.max_pending;
}

std::size_t VerdictBatcher::max_pending() const noexcept { return state_->max_pending; }

AddStatus VerdictBatcher::Defer(std::uint32_t id) noexcept {
  State& s = *state_;
  if (s.deferred.size() >= s.max_pending) return AddStatus::kNeedsFlush;
  // Everything in the open run was received before `id`: it may still go
  // out as a batch, but must not grow past `id`.
  s.CloseRun();
  if (!s.deferred.Push(id)) return AddStatus::kNeedsFlush;
  return AddStatus::kOk;
}

std::size_t VerdictBatcher::deferred() const noexcept { return state_->deferred.size(); }

void VerdictBatcher::set_connmark_supported(bool supported) noexcept {
  state_->connmark_supported = supported;
}

void VerdictBatcher::set_max_delay_ns(std::uint64_t max_delay_ns) noexcept {
  state_->max_delay_ns = max_delay_ns;
}

std::uint64_t VerdictBatcher::max_delay_ns() const noexcept { return state_->max_delay_ns; }

bool VerdictBatcher::FlushDue(std::uint64_t now_ns) noexcept {
  State& s = *state_;
  if (s.pending == 0) return false;
  if (!s.stamped) {
    s.stamped = true;
    s.first_seen_ns = now_ns;
  }
  return now_ns - s.first_seen_ns >= s.max_delay_ns;
}

bool VerdictBatcher::Flush(VerdictSink& sink) noexcept {
  State& s = *state_;
  s.CloseRun();
  if (s.used == 0) return true;
  const SendStatus status = sink.Send(std::span<const std::uint8_t>(s.buffer.data(), s.used));
  if (status == SendStatus::kWouldBlock) return false;
  Bump(stats_->sends);
  if (status == SendStatus::kOk) {
    Bump(stats_->verdicts, s.pending);
    Bump(stats_->batch_messages, s.staged_batch);
    Bump(stats_->single_messages, s.staged_single);
  } else {
    Bump(stats_->send_failures);
    Bump(stats_->failed_verdicts, s.pending);
  }
  s.used = 0;
  s.pending = 0;
  s.staged_batch = 0;
  s.staged_single = 0;
  s.stamped = false;
  return status == SendStatus::kOk;
}

std::size_t VerdictBatcher::pending() const noexcept { return state_->pending; }

}  // namespace verdictd::queueio
