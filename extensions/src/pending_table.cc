#include "pending_table.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <thread>
#include <type_traits>

#include "verdictd/extensions/checksum.h"

namespace verdictd::extensions {

queueio::Verdict MakeVerdict(verdictd_result_t result, const verdictd_verdict_t& out,
                             const ResultContext& context, std::uint8_t* bytes,
                             std::uint32_t length, bool edited, bool& error) noexcept {
  queueio::Verdict verdict;
  switch (result) {
    case VERDICTD_ACCEPT:
      break;
    case VERDICTD_DROP:
      verdict.kind = queueio::VerdictKind::kDrop;
      break;
    case VERDICTD_REPEAT:
      verdict.kind = queueio::VerdictKind::kRepeat;
      break;
    case VERDICTD_QUEUE:
      verdict = queueio::Verdict::ToQueue(out.target_queue);
      break;
    case VERDICTD_ALTERED:
      // A GSO super-packet would reach segmentation marked CHECKSUM_NONE,
      // and a cut packet cannot be replaced whole: both pass unchanged.
      if (!edited || context.gso_or_truncated || bytes == nullptr) {
        error = true;
        break;
      }
      if ((out.flags & VERDICTD_VERDICT_CHECKSUMS_DONE) == 0 || context.checksum_not_ready) {
        RepairChecksums(std::span<std::uint8_t>(bytes, length));
      }
      verdict.replacement = std::span<const std::uint8_t>(bytes, length);
      break;
    case VERDICTD_NEXT:
    default:
      if (result != VERDICTD_NEXT) error = true;
      verdict = context.end_verdict.verdict();
      break;
  }
  if ((out.flags & VERDICTD_VERDICT_SET_MARK) != 0) {
    verdict.set_mark = true;
    verdict.mark = out.mark;
  } else if (context.mark_changed) {
    verdict.set_mark = true;
    verdict.mark = context.mark;
  }
  return verdict;
}

PendingTable::PendingTable(std::uint32_t slots, std::uint32_t slot_bytes, std::uint16_t worker)
    : worker_(worker),
      slots_(std::max<std::uint32_t>(1, std::min(slots, kMaxSlots))),
      state_lines_((slots_.size() + kWordsPerLine - 1) / kWordsPerLine) {
  bytes_ = std::make_unique<std::uint8_t[]>(slots_.size() * slot_bytes);
  free_.reserve(slots_.size());
  for (std::size_t i = slots_.size(); i-- > 0;) {
    slots_[i].context.scratch = bytes_.get() + i * slot_bytes;
    slots_[i].context.capacity = slot_bytes;
    slots_[i].context.in_place = true;
    state(i).store(Word(PrevSeq(slots_[i].seq), kFree), std::memory_order_relaxed);
    free_.push_back(static_cast<int>(i));
  }
  // Twice the slots: a completion that finds more than `slots` cells
  // unread (only tokens an extension made up can get there) is refused, so
  // completers racing past that check still find room.
  const std::size_t cells = std::bit_ceil(2 * slots_.size());
  ring_ = std::make_unique<std::atomic<std::uint64_t>[]>(cells);
  ring_mask_ = cells - 1;
  // Tag 0 is no position's of the first lap (and by the lap that could
  // reach it, every cell was written).
  for (std::size_t i = 0; i < cells; ++i) ring_[i].store(0, std::memory_order_relaxed);
  // Without an eventfd (descriptors exhausted) the worker falls back to a
  // timed receive; nothing else depends on it.
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
}

PendingTable::~PendingTable() {
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

int PendingTable::Reserve() noexcept {
  if (free_.empty()) return -1;
  const int slot = free_.back();
  free_.pop_back();
  return slot;
}

std::uint64_t PendingTable::Arm(int index) noexcept {
  Slot& slot = slots_[static_cast<std::size_t>(index)];
  const std::uint64_t seq = slot.seq;
  // Nothing stored, here or in the state word: the word says
  // (PrevSeq(seq), idle) since the slot's last use, which lets the token's
  // completion in (the job hand-off orders this before it).
  t_armed_slot = std::uint32_t{worker_} << 16 | static_cast<std::uint32_t>(index + 1);
  return std::uint64_t{worker_} << 48 | std::uint64_t(static_cast<std::uint32_t>(index)) << 32 |
         seq;
}

bool PendingTable::Claim(std::uint32_t index, State to) noexcept {
  const std::uint32_t seq = slots_[index].seq;
  std::atomic<std::uint64_t>& state_word = state(index);
  std::uint64_t word = state_word.load(std::memory_order_acquire);
  // A completion for this use has set (seq, ...) already otherwise.
  return SeqOf(word) == PrevSeq(seq) && Idle(word) &&
         state_word.compare_exchange_strong(word, Word(seq, to), std::memory_order_acq_rel);
}

void PendingTable::Release(int index) noexcept {
  Slot& slot = slots_[static_cast<std::size_t>(index)];
  // Only a use no completion decided is freed here.
  if (Claim(static_cast<std::uint32_t>(index), kFree)) {
    slot.seq = NextSeq(slot.seq);
    slot.use = Use::kIdle;
    free_.push_back(index);
    return;
  }
  // Completed although process() did not return PENDING: the completion is
  // in the ring (or about to be); Poll() discards it and frees the slot
  // (freeing it here too would hand it out twice).
  slot.use = Use::kAbandoned;
}

void PendingTable::Begin(int index, std::uint32_t id, std::uint64_t deadline_ns,
                         const ResultContext& result, const queueio::Verdict& timeout_verdict,
                         const queueio::Verdict& overflow_verdict,
                         ExtensionWorkerCounters* counters, Continuation* continuation,
                         std::uint32_t next_link) noexcept {
  Slot& slot = slots_[static_cast<std::size_t>(index)];
  slot.id = id;
  slot.continuation = continuation;
  slot.next_link = next_link;
  if (continuation != nullptr) continuation->Hold();
  slot.deadline_ns = deadline_ns;
  slot.end_verdict = result.end_verdict;
  slot.mark = result.mark;
  slot.mark_changed = result.mark_changed;
  slot.checksum_not_ready = result.checksum_not_ready;
  slot.gso_or_truncated = result.gso_or_truncated;
  slot.timeout_verdict = PlainVerdict::Of(timeout_verdict);
  slot.overflow_verdict = PlainVerdict::Of(overflow_verdict);
  slot.counters = counters;
  slot.use = Use::kBegun;
  slot.prev = tail_;
  slot.next = -1;
  if (tail_ >= 0) {
    slots_[static_cast<std::size_t>(tail_)].next = index;
  } else {
    head_ = index;
  }
  tail_ = index;
  last_begun_ = index;
  ++pending_;
  counters->pending_started.Add();
}

queueio::Verdict PendingTable::AbandonLast() noexcept {
  Slot& slot = slots_[static_cast<std::size_t>(last_begun_)];
  const queueio::Verdict verdict = slot.overflow_verdict.verdict();
  // Timed out: freed when the late completion arrives; otherwise it is
  // completing or done, and the delivery is discarded.
  slot.use = Claim(static_cast<std::uint32_t>(last_begun_), kTimedOut) ? Use::kTimedOut
                                                                       : Use::kAbandoned;
  Unlink(last_begun_);
  slot.counters->overflows.Add();
  Finish(slot);
  return verdict;
}

bool PendingTable::Complete(std::uint64_t token, verdictd_result_t result,
                            const verdictd_verdict_t* verdict, std::uint32_t new_len) noexcept {
  const std::uint32_t index = static_cast<std::uint32_t>(token >> 32) & 0xffff;
  if (index >= slots_.size()) return false;
  const auto seq = static_cast<std::uint32_t>(token);
  if (seq == 0) return false;
  std::atomic<std::uint64_t>& state_word = state(index);
  // The CAS below needs the line for writing: fetch it so at once, rather
  // than shared for the load and then again.
  __builtin_prefetch(&state_word, 1);
  std::uint64_t word = state_word.load(std::memory_order_acquire);
  // Real tokens never find more than `slots` cells unread: each slot is in
  // the ring at most once. Refused before the CAS, so the packet keeps its
  // deadline (and gets its timeout verdict) instead of a verdict that could
  // not be queued.
  if (enqueue_pos_.load(std::memory_order_relaxed) - consumed_.load(std::memory_order_acquire) >=
      slots_.size()) {
    return false;
  }
  std::uint64_t flags = 0;
  std::uint64_t code = 0;
  if (SeqOf(word) == seq) {
    // Decided already: only the late answer of a timed-out use is taken
    // (the slot is freed when Poll() takes it from the ring).
    if (StateOf(word) != kTimedOut ||
        !state_word.compare_exchange_strong(word, Word(seq, kLateDone), std::memory_order_acq_rel)) {
      return false;
    }
    flags = kCellLate;
  } else {
    if (SeqOf(word) != PrevSeq(seq) || !Idle(word)) return false;  // stale or unknown
    // A result outside the ABI's range travels as kInvalidResult (an error
    // for Deliver); compared as the underlying integer, which is what a C
    // extension may have passed.
    const auto raw = static_cast<std::int64_t>(
        static_cast<std::underlying_type_t<verdictd_result_t>>(result));
    code = raw >= VERDICTD_ACCEPT && raw <= VERDICTD_PENDING ? static_cast<std::uint64_t>(raw)
                                                             : kInvalidResult;
    const bool extra = verdict != nullptr || new_len != 0;
    if (!extra) {
      if (!state_word.compare_exchange_strong(word, Word(seq, kDone), std::memory_order_acq_rel)) {
        return false;  // a timeout, a release or another completion won
      }
    } else {
      // The verdict and length go in the slot: claim it first.
      if (!state_word.compare_exchange_strong(word, Word(seq, kCompleting),
                                              std::memory_order_acq_rel)) {
        return false;
      }
      Slot& slot = slots_[index];
      slot.verdict = verdict != nullptr ? *verdict : verdictd_verdict_t{};
      slot.new_len = new_len;
      state_word.store(Word(seq, kDone), std::memory_order_release);
      flags = kCellExtra;
    }
  }
  Push(index, code, flags);
  // Push() published the cell with a seq_cst store and Wait() sets the
  // flag with one before it looks at the ring (seq_cst loads both): either
  // the worker sees the cell before it sleeps, or this sees its flag and
  // wakes it. (No standalone fences: ThreadSanitizer does not model them.)
  if (sleeping_.load(std::memory_order_seq_cst) &&
      sleeping_.exchange(false, std::memory_order_acq_rel) && wake_fd_ >= 0) {
    const std::uint64_t one = 1;
    [[maybe_unused]] const ssize_t n = ::write(wake_fd_, &one, sizeof one);
  }
  return true;
}

bool PendingTable::HasCompletion() const noexcept {
  const std::uint64_t cell = ring_[dequeue_pos_ & ring_mask_].load(std::memory_order_seq_cst);
  return (cell >> 32) == TagOf(dequeue_pos_);
}

bool PendingTable::Wait(int fd, int timeout_ms, std::uint64_t now_ns) noexcept {
  if (wake_fd_ < 0) return false;
  // The oldest deadline bounds the wait: its timeout verdict is due then.
  int ms = timeout_ms;
  if (head_ >= 0) {
    const std::uint64_t deadline = slots_[static_cast<std::size_t>(head_)].deadline_ns;
    const std::uint64_t left = deadline > now_ns ? deadline - now_ns : 0;
    const std::uint64_t left_ms = std::min<std::uint64_t>((left + 999'999) / 1'000'000, 1u << 30);
    if (ms < 0 || left_ms < static_cast<std::uint64_t>(ms)) ms = static_cast<int>(left_ms);
  }
  sleeping_.store(true, std::memory_order_seq_cst);
  if (HasCompletion() || ms == 0) {
    sleeping_.store(false, std::memory_order_relaxed);
    return true;
  }
  waits_.Add();
  pollfd fds[2] = {{fd, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
  const int ready = ::poll(fds, 2, ms);
  sleeping_.store(false, std::memory_order_relaxed);
  if (ready == 0) wait_timeouts_.Add();
  if (ready > 0 && (fds[1].revents & POLLIN) != 0) {
    std::uint64_t count = 0;
    [[maybe_unused]] const ssize_t n = ::read(wake_fd_, &count, sizeof count);
    wakeups_.Add();
  }
  return true;
}

void PendingTable::Push(std::uint32_t slot, std::uint64_t result, std::uint64_t flags) noexcept {
  const std::uint64_t pos = enqueue_pos_.fetch_add(1, std::memory_order_relaxed);
  // The cell's last lap was read before its slot could be reused, so this
  // wait never spins (Complete() refused a completion that would find the
  // ring short); the load is what orders that read before this store.
  while (pos - consumed_.load(std::memory_order_acquire) > ring_mask_) std::this_thread::yield();
  const std::uint64_t cell = std::uint64_t{TagOf(pos)} << 32 | flags << 24 | result << 16 | slot;
  ring_[pos & ring_mask_].store(cell, std::memory_order_seq_cst);  // see Complete()
}

bool PendingTable::Pop(std::uint64_t& cell) noexcept {
  cell = ring_[dequeue_pos_ & ring_mask_].load(std::memory_order_acquire);
  if ((cell >> 32) != TagOf(dequeue_pos_)) return false;
  ++dequeue_pos_;
  // The completers write the cells ahead: fetch the next line while this
  // one is taken.
  if ((dequeue_pos_ & (kCellsPerLine - 1)) == 0) {
    __builtin_prefetch(&ring_[(dequeue_pos_ + kCellsPerLine) & ring_mask_]);
  }
  return true;
}

void PendingTable::Unlink(int index) noexcept {
  Slot& slot = slots_[static_cast<std::size_t>(index)];
  if (slot.prev >= 0) {
    slots_[static_cast<std::size_t>(slot.prev)].next = slot.next;
  } else if (head_ == index) {
    head_ = slot.next;
  }
  if (slot.next >= 0) {
    slots_[static_cast<std::size_t>(slot.next)].prev = slot.prev;
  } else if (tail_ == index) {
    tail_ = slot.prev;
  }
  slot.prev = slot.next = -1;
}

void PendingTable::Free(int index) noexcept {
  Slot& slot = slots_[static_cast<std::size_t>(index)];
  // The state word already says (seq, idle): the next use may begin.
  slot.seq = NextSeq(slot.seq);
  slot.use = Use::kIdle;
  free_.push_back(index);
}

std::size_t PendingTable::Deliver(int index, verdictd_result_t result, bool extra,
                                  decider::ReadyVerdicts& ready) noexcept {
  Slot& slot = slots_[static_cast<std::size_t>(index)];
  PacketContext& context = slot.context;
  const verdictd_verdict_t said = extra ? slot.verdict : verdictd_verdict_t{};
  bool error = false;
  std::uint32_t length = extra ? slot.new_len : 0;
  bool edited = result == VERDICTD_ALTERED;
  if (edited && (length == 0 || length > context.capacity)) {
    edited = false;  // a length the slot cannot hold
  }
  const queueio::Verdict verdict =
      MakeVerdict(result, said, ResultOf(slot), context.scratch, length, edited, error);
  if (error) slot.counters->errors.Add();
  if (result >= VERDICTD_ACCEPT && result < VERDICTD_PENDING) {
    slot.counters->results[static_cast<std::size_t>(result)].Add();
  }
  if (result == VERDICTD_NEXT && slot.continuation != nullptr) {
    // The extensions after the pending one decide (from the slot's bytes,
    // which stay until Free() after this returns); the completion's mark
    // steers them as an inline NEXT's would.
    ResultContext next = ResultOf(slot);
    if ((said.flags & VERDICTD_VERDICT_SET_MARK) != 0) {
      next.mark = said.mark;
      next.mark_changed = true;
    }
    const decider::Decision decision =
        slot.continuation->Resume(context, slot.next_link, next, slot.id);
    Finish(slot);
    if (decision.deferred) return 0;  // pending again, in another slot
    ready.Ready(slot.id, decision.verdict);
    return 1;
  }
  Finish(slot);
  ready.Ready(slot.id, verdict);
  return 1;
}

ResultContext PendingTable::ResultOf(const Slot& slot) noexcept {
  ResultContext result;
  result.end_verdict = slot.end_verdict;
  result.mark = slot.mark;
  result.mark_changed = slot.mark_changed;
  result.checksum_not_ready = slot.checksum_not_ready;
  result.gso_or_truncated = slot.gso_or_truncated;
  return result;
}

void PendingTable::Finish(Slot& slot) noexcept {
  slot.counters->pending_finished.Add();
  --pending_;
  if (slot.continuation != nullptr) {
    slot.continuation->Finished();
    slot.continuation = nullptr;
  }
}

std::size_t PendingTable::TakeCompletion(std::uint64_t cell, decider::ReadyVerdicts& ready) noexcept {
  const auto index = static_cast<std::uint32_t>(cell & 0xffff);
  const std::uint64_t flags = cell >> 24 & 0xff;
  Slot& slot = slots_[index];
  switch (slot.use) {
    case Use::kBegun: {
      Unlink(static_cast<int>(index));
      const std::size_t delivered =
          Deliver(static_cast<int>(index), static_cast<verdictd_result_t>(cell >> 16 & 0xff),
                  (flags & kCellExtra) != 0, ready);
      Free(static_cast<int>(index));
      return delivered;
    }
    case Use::kTimedOut:
      if ((flags & kCellLate) != 0) slot.counters->late.Add();
      Free(static_cast<int>(index));
      return 0;
    case Use::kAbandoned:
      Free(static_cast<int>(index));
      return 0;
    case Use::kIdle:
      // A token no packet was given yet (an extension's arithmetic on one):
      // it decided the slot's next use, so that use is skipped. (An armed
      // slot is never seen here: Poll() does not run inside process().)
      slot.seq = NextSeq(slot.seq);
      return 0;
  }
  return 0;
}

std::size_t PendingTable::Poll(std::uint64_t now_ns, decider::ReadyVerdicts& ready,
                               bool final) noexcept {
  std::size_t delivered = 0;
  for (;;) {
    // The completed slots' first lines were last written on the completing
    // thread's core: take the ring a run at a time and fetch them together,
    // so the misses overlap instead of coming one per packet.
    std::array<std::uint64_t, kPollRun> run;
    std::size_t taken = 0;
    do {
      taken = 0;
      while (taken < kPollRun && Pop(run[taken])) {
        __builtin_prefetch(&slots_[run[taken] & 0xffff].seq, 1);
        ++taken;
      }
      // Completers may overwrite what was read (a store per run, not per
      // cell). Before the run is taken: a NEXT resumes the chain from here,
      // and an extension after it may complete inside process(), on this
      // thread, into a slot freed earlier in the run; its push must not
      // wait for a read that only this thread can publish.
      if (taken > 0) consumed_.store(dequeue_pos_, std::memory_order_release);
      for (std::size_t i = 0; i < taken; ++i) {
        delivered += TakeCompletion(run[i], ready);
      }
    } while (taken == kPollRun);
    bool waiting = false;
    while (head_ >= 0) {
      const int oldest = head_;
      Slot& slot = slots_[static_cast<std::size_t>(oldest)];
      if (!final && slot.deadline_ns > now_ns) break;
      if (Claim(static_cast<std::uint32_t>(oldest), kTimedOut)) {
        slot.use = Use::kTimedOut;
        Unlink(oldest);
        slot.counters->timeouts.Add();
        Finish(slot);
        ready.Ready(slot.id, slot.timeout_verdict.verdict());
        ++delivered;
        continue;
      }
      // Being completed right now: the ring brings it.
      waiting = true;
      break;
    }
    if (!final || !waiting) return delivered;
    std::this_thread::yield();
  }
}

}  // namespace verdictd::extensions
