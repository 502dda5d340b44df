// The packets of one worker that wait for an asynchronous verdict.
//
// Fixed size, allocated once: `slots` records, each with room for a copy of
// the packet (the receive buffer is reused by the next receive, so the
// extension works on the copy). Slot life: the worker reserves a free slot
// and copies the packet in; after process() returned PENDING it Begin()s the
// slot (deadline, list of slots in start order); any thread Complete()s it
// by token (a CAS on the slot's state word, then a push of the slot and its
// result on a bounded lock-free MPSC ring); the worker's Poll() takes the
// ring, turns the results into verdicts, and gives the timeout verdict to
// the oldest slots past their deadline. A timed-out slot stays reserved until its
// late completion comes (the work may still be reading the copy), then is
// freed silently. Tokens carry a sequence number, so a completion for a
// slot's earlier use is ignored.
//
// Who writes which line: in the common path (armed, completed, delivered,
// freed) the worker writes no line that a completer writes. Arming stores
// nothing in the state word, the completion's result rides in its ring
// cell, the worker reads the cells without writing them back and publishes
// how far it read once per run of up to 32 cells. Each such store into a
// line the other core had just written waited for that line to cross: in
// the asynchronous benchmark they filled the worker's store buffer and
// stalled the next packet's parse (0.34x of the inline path's throughput
// before, 0.46x after).
//
// Thread-safety: Complete() any thread; everything else on the owning
// worker's thread (or the control thread before the worker starts).
// noexcept and allocation-free after construction.
//
// Waking the worker: the table owns an eventfd. A worker about to block
// with packets pending calls Wait() (poll on its queue socket and the
// eventfd); a completion writes the eventfd only when the worker said it is
// going to sleep (one flag, checked after the ring push), so the busy path
// costs no system call on either side.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "verdictd/base/false_sharing.h"
#include "verdictd/decider/decider.h"
#include "verdictd/extension.h"
#include "verdictd/extensions/counters.h"
#include "verdictd/queueio/verdict.h"

namespace verdictd::extensions {

// A packet handed to process(): the ABI view plus what edit() needs. The
// view comes first, so edit() finds its context from the pointer it gets.
struct PacketContext {
  verdictd_packet_t packet;
  std::uint8_t* scratch = nullptr;  // writable bytes edit() hands out
  std::uint32_t capacity = 0;       // their size
  bool edited = false;              // packet.data points into scratch
  bool in_place = false;            // scratch already holds the packet (a pending slot)
};
static_assert(offsetof(PacketContext, packet) == 0);

struct ResultContext;

// What a NEXT from a completion continues with: the rest of the chain the
// packet pended in (ChainLinks). Resume() runs on the table's worker thread
// from Poll(); Hold()/Finished() bracket every begun slot that refers to it.
class Continuation {
 public:
  virtual ~Continuation() = default;
  virtual decider::Decision Resume(const PacketContext& from, std::uint32_t next_link,
                                   const ResultContext& result, std::uint32_t id) noexcept = 0;
  virtual void Hold() noexcept = 0;
  virtual void Finished() noexcept = 0;
};

// A verdict without mark or bytes (the configured end, timeout and
// overflow verdicts) in 4 bytes: a slot holds three, written for every
// pending packet.
struct PlainVerdict {
  queueio::VerdictKind kind = queueio::VerdictKind::kAccept;
  std::uint16_t target_queue = 0;
  static PlainVerdict Of(const queueio::Verdict& v) noexcept { return {v.kind, v.target_queue}; }
  queueio::Verdict verdict() const noexcept { return queueio::Verdict::Of(kind, target_queue); }
};

// How a chain result becomes a verdict (shared by the inline and async paths).
// Built for every packet that reaches an extension: small, so that costs
// a few stores (the end verdict is the configured one, so plain).
struct ResultContext {
  PlainVerdict end_verdict;
  std::uint32_t mark = 0;
  bool mark_changed = false;  // an earlier NEXT set a new mark
  bool checksum_not_ready = false;
  bool gso_or_truncated = false;
};
// Returns the verdict of `result`; ALTERED uses `bytes` (repaired unless the
// extension did and the packet was not CHECKSUM_NOT_READY). Sets `error`
// for a result that could not be honoured (counted by the caller).
queueio::Verdict MakeVerdict(verdictd_result_t result, const verdictd_verdict_t& out,
                             const ResultContext& context, std::uint8_t* bytes,
                             std::uint32_t length, bool edited, bool& error) noexcept;

// The slot this thread armed last, as worker << 16 | (slot + 1), 0 before
// any: a job that process() submits carries it to the arena, whose thread
// fetches the slot's line before the job completes it
// (ExtensionHost::RunJobs). It only steers a prefetch, so a stale one costs
// nothing.
inline thread_local std::uint32_t t_armed_slot = 0;
inline std::uint32_t ArmedSlotHint() noexcept { return t_armed_slot; }
// The worker whose table a non-zero hint names (PendingTable::Prefetch
// takes the hint itself).
inline std::size_t HintWorker(std::uint32_t hint) noexcept { return hint >> 16; }

class PendingTable {
 public:
  static constexpr std::uint32_t kMaxSlots = 65535;
  PendingTable(std::uint32_t slots, std::uint32_t slot_bytes, std::uint16_t worker);
  ~PendingTable();
  PendingTable(const PendingTable&) = delete;
  PendingTable& operator=(const PendingTable&) = delete;

  // Worker: a free slot with its packet context (scratch = the slot's bytes),
  // or -1 when every slot is in use.
  int Reserve() noexcept;
  PacketContext& context(int slot) noexcept { return slots_[static_cast<std::size_t>(slot)].context; }
  // Worker, before process(): the slot may be completed from now on (the
  // extension may hand the work off and see it finish before process()
  // returns). Returns the slot's token, for complete().
  std::uint64_t Arm(int slot) noexcept;
  // Worker: the extension returned something else; the slot is free again.
  void Release(int slot) noexcept;
  // Worker: process() returned PENDING (a completion may already be in).
  // `continuation` (may be null): where a NEXT result goes on, from link
  // `next_link`; otherwise NEXT means the end verdict.
  // The timeout and overflow verdicts are the configured settings: plain,
  // so only their kind and queue number are kept.
  void Begin(int slot, std::uint32_t id, std::uint64_t deadline_ns, const ResultContext& result,
             const queueio::Verdict& timeout_verdict, const queueio::Verdict& overflow_verdict,
             ExtensionWorkerCounters* counters, Continuation* continuation = nullptr,
             std::uint32_t next_link = 0) noexcept;
  // Worker: the batcher could not defer the packet just begun: it gets the
  // overflow verdict now, its completion is discarded.
  queueio::Verdict AbandonLast() noexcept;

  // Any thread: asks for the line that Complete() writes, of the slot a
  // hint from ArmedSlotHint() names (one out of range does nothing).
  void Prefetch(std::uint32_t hint) noexcept {
    const std::uint32_t slot = (hint & 0xffff) - 1;
    if (slot < slots_.size()) __builtin_prefetch(&state(slot), 1);
  }

  // Any thread: false when the token is stale, unknown or already completed.
  bool Complete(std::uint64_t token, verdictd_result_t result, const verdictd_verdict_t* verdict,
                std::uint32_t new_len) noexcept;

  // Worker: delivers completed verdicts and those past their deadline.
  // `final`: stop is under way; every pending packet gets its verdict now
  // (completing ones are waited for, the rest time out).
  std::size_t Poll(std::uint64_t now_ns, decider::ReadyVerdicts& ready, bool final) noexcept;

  std::size_t pending() const noexcept { return pending_; }
  std::uint16_t worker() const noexcept { return worker_; }

  // Worker, in its blocking path with packets pending: waits until a
  // completion is in the ring, `fd` is readable, the oldest pending
  // deadline passes, or `timeout_ms`. False when the table has no eventfd
  // (the caller then waits its old way). No system call when a completion
  // is already in.
  bool Wait(int fd, int timeout_ms, std::uint64_t now_ns) noexcept;
  // Figures of Wait() (single writer, the worker; any thread reads): waits
  // that went to sleep, eventfd wake-ups taken, and waits whose time ran out.
  std::uint64_t waits() const noexcept { return waits_.value(); }
  std::uint64_t wakeups() const noexcept { return wakeups_.value(); }
  std::uint64_t wait_timeouts() const noexcept { return wait_timeouts_.value(); }

 private:
  enum State : std::uint8_t { kFree, kCompleting, kDone, kTimedOut, kLateDone };
  // A slot's state word, seq << 32 | State: the arbiter between its
  // completers and the worker's timeout (a CAS each), written by the worker
  // only off the common path. `seq` is the last use of the slot that was
  // decided (completed, timed out or released); an armed slot's current use
  // is the next sequence, so arming writes nothing here and a completion is
  // one CAS from (PrevSeq(use), idle) to (use, kDone). What the worker
  // needs of it travels in the completion's ring cell, so in the common path
  // the worker never touches these words: a line that the completers write
  // crosses back to the worker's core only for a timeout or a release.
  // The words are kept apart from the slots, 16 to a false-sharing range.
  static constexpr std::size_t kWordsPerLine = base::kFalseSharingRange / 8;
  struct alignas(base::kFalseSharingRange) StateLine {
    std::array<std::atomic<std::uint64_t>, kWordsPerLine> words{};
  };
  // The worker's own view of a slot's use.
  enum class Use : std::uint8_t {
    kIdle,       // free, or reserved (and armed: process() is running)
    kBegun,      // pending: in the list of begun slots
    kAbandoned,  // its completion is in the ring (or coming); discarded there
    kTimedOut,   // had its timeout or overflow verdict; freed by the late completion
  };
  // Laid out by who writes what: the completer writes only the first cache
  // line, and only for a completion that carries a verdict or a length, so
  // the worker's own fields and the packet context stay in the worker's
  // cache between a completion and the slot's next use.
  struct alignas(base::kFalseSharingRange) Slot {
    // Written by the completer between kCompleting and its push of a
    // kCellExtra cell (release), read by the worker after it took the cell.
    verdictd_verdict_t verdict{};
    std::uint32_t new_len = 0;
    alignas(base::kFalseSharingRange) PacketContext context;
    // Worker only.
    // Of the slot's current (or next) use: 1 to 2^32 - 1, never 0, so no
    // token is 0, the token of a packet that is not pending (an
    // extension's complete(0) completes nothing).
    std::uint32_t seq = 1;
    Use use = Use::kIdle;
    std::uint32_t id = 0;
    std::uint64_t deadline_ns = 0;
    // The ResultContext, kept field by field: the caller builds it on its
    // stack with narrow stores just before Begin(), and copying it whole
    // read those back with wide loads that could not be forwarded (a stall
    // per packet). Its end verdict is the configured one, so plain.
    PlainVerdict end_verdict;
    std::uint32_t mark = 0;
    bool mark_changed = false;
    bool checksum_not_ready = false;
    bool gso_or_truncated = false;
    PlainVerdict timeout_verdict;
    PlainVerdict overflow_verdict;
    ExtensionWorkerCounters* counters = nullptr;
    Continuation* continuation = nullptr;
    std::uint32_t next_link = 0;
    int prev = -1;  // list of begun slots, oldest first
    int next = -1;
  };
  // A completion in the ring, one 64-bit word (eight to a line):
  // tag << 32 | flags << 24 | result << 16 | slot. The tag is the low 32 bits
  // of the cell's position plus one, so a cell of an earlier lap never reads
  // as filled. The worker only reads the cells (it never writes one back):
  // it publishes how far it has read in consumed_, once per run of cells.
  static constexpr std::uint64_t kCellLate = 1;   // the slot had timed out
  static constexpr std::uint64_t kCellExtra = 2;  // Slot::verdict, new_len are set
  static constexpr std::size_t kCellsPerLine = 64 / sizeof(std::uint64_t);
  static constexpr std::size_t kPollRun = 32;  // completions fetched together by Poll()
  // The result code of a completion that gave none of the ABI's results
  // (one past VERDICTD_PENDING: still a value of verdictd_result_t in C++).
  static constexpr std::uint64_t kInvalidResult = VERDICTD_PENDING + 1;

  static std::uint64_t Word(std::uint64_t seq, State state) noexcept { return seq << 32 | state; }
  static std::uint32_t SeqOf(std::uint64_t word) noexcept { return static_cast<std::uint32_t>(word >> 32); }
  static std::uint32_t NextSeq(std::uint32_t seq) noexcept { return seq == 0xffffffffu ? 1 : seq + 1; }
  static std::uint32_t PrevSeq(std::uint32_t seq) noexcept { return seq == 1 ? 0xffffffffu : seq - 1; }
  static State StateOf(std::uint64_t word) noexcept { return static_cast<State>(word & 0xff); }
  // No use of the slot is being decided: the next one may be.
  static bool Idle(std::uint64_t word) noexcept {
    const State state = StateOf(word);
    return state == kFree || state == kDone || state == kLateDone;
  }
  static std::uint32_t TagOf(std::uint64_t pos) noexcept { return static_cast<std::uint32_t>(pos + 1); }
  std::atomic<std::uint64_t>& state(std::size_t slot) noexcept {
    return state_lines_[slot / kWordsPerLine].words[slot % kWordsPerLine];
  }
  // Worker: decides the slot's current use itself (released or timed out):
  // false when a completion got there first (its cell is in the ring or
  // coming).
  bool Claim(std::uint32_t slot, State to) noexcept;
  void Push(std::uint32_t slot, std::uint64_t result, std::uint64_t flags) noexcept;
  bool Pop(std::uint64_t& cell) noexcept;
  void Unlink(int slot) noexcept;
  void Free(int slot) noexcept;
  // The verdict of a completed slot (1), or 0 when a NEXT resumed the
  // chain and a later extension keeps the packet pending.
  std::size_t Deliver(int slot, verdictd_result_t result, bool extra,
                      decider::ReadyVerdicts& ready) noexcept;
  // A completion taken from the ring: its verdict (1) or a discarded one (0).
  std::size_t TakeCompletion(std::uint64_t cell, decider::ReadyVerdicts& ready) noexcept;
  void Finish(Slot& slot) noexcept;  // the slot's packet has its verdict
  static ResultContext ResultOf(const Slot& slot) noexcept;
  bool HasCompletion() const noexcept;

  // Laid out by who writes what. The completers (arena threads) read the
  // first range on every Complete(): written only at construction, it stays
  // shared in every core's cache. The worker's own bookkeeping, which it
  // writes for every packet, has a range of its own: in the same range as
  // ring_ and slots_, each Reserve() and Free() took the line back from the
  // completer's core (a third of the worker's time per pending packet in the
  // async benchmark).
  std::uint16_t worker_;
  int wake_fd_ = -1;
  std::vector<Slot> slots_;
  std::vector<StateLine> state_lines_;
  std::unique_ptr<std::uint8_t[]> bytes_;
  // MPSC ring of completions, capacity a power of two >= 2 x slots: never
  // full, since a slot is in it at most once (its CAS won) and is reused
  // only after the worker took it out (Complete() refuses one that finds
  // `slots` cells unread, which only made-up tokens reach).
  std::unique_ptr<std::atomic<std::uint64_t>[]> ring_;
  std::uint64_t ring_mask_ = 0;

  // Worker only (the figures of Wait() are read at scrape time).
  alignas(base::kFalseSharingRange) std::vector<int> free_;  // reserved for every slot
  int head_ = -1;                                            // oldest begun slot
  int tail_ = -1;
  int last_begun_ = -1;
  std::size_t pending_ = 0;
  std::uint64_t dequeue_pos_ = 0;
  metrics::RelaxedCounter waits_;
  metrics::RelaxedCounter wakeups_;
  metrics::RelaxedCounter wait_timeouts_;

  // Completers claim ring positions; the worker publishes how far it read
  // (once per run of cells), which a completer waits past before it
  // overwrites a cell of the lap before; the worker sets the flag before it
  // sleeps, and the completion that finds it set takes it (and then writes
  // the eventfd).
  alignas(base::kFalseSharingRange) std::atomic<std::uint64_t> enqueue_pos_{0};
  alignas(base::kFalseSharingRange) std::atomic<std::uint64_t> consumed_{0};
  alignas(base::kFalseSharingRange) std::atomic<bool> sleeping_{false};
};

}  // namespace verdictd::extensions
