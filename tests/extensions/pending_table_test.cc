// The pending table on a fake clock: Poll() takes "now" from the test.
#include "pending_table.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <thread>
#include <vector>

namespace verdictd::extensions {
namespace {

struct Collect final : decider::ReadyVerdicts {
  void Ready(std::uint32_t id, const queueio::Verdict& verdict) noexcept override {
    got.emplace_back(id, verdict.kind);
    if (verdict.set_mark) marks[id] = verdict.mark;
    if (!verdict.replacement.empty()) replaced[id] = {verdict.replacement.begin(), verdict.replacement.end()};
  }
  std::vector<std::pair<std::uint32_t, queueio::VerdictKind>> got;
  std::map<std::uint32_t, std::vector<std::uint8_t>> replaced;
  std::map<std::uint32_t, std::uint32_t> marks;
};

struct Fixture {
  explicit Fixture(std::uint32_t slots = 4) : table{slots, 64, 0} {}
  PendingTable table;
  ExtensionWorkerCounters counters;
  ResultContext context;
  queueio::Verdict timeout = queueio::Verdict::Drop();
  queueio::Verdict overflow = queueio::Verdict::ToQueue(9);

  // Reserves, arms and begins a slot for `id` with a deadline; returns its token.
  std::uint64_t Pend(std::uint32_t id, std::uint64_t deadline,
                     Continuation* continuation = nullptr, std::uint32_t next_link = 0) {
    const int slot = table.Reserve();
    if (slot < 0) {
      ADD_FAILURE() << "no free slot for packet " << id;
      return 0;  // no token is 0
    }
    const std::uint64_t token = table.Arm(slot);
    table.Begin(slot, id, deadline, context, timeout, overflow, &counters, continuation, next_link);
    return token;
  }
};

// The slot a token names.
std::uint64_t SlotOf(std::uint64_t token) { return token >> 32 & 0xffff; }

TEST(PendingTable, delivers_completions_in_the_order_they_complete) {
  Fixture f;
  const auto t1 = f.Pend(1, 1000);
  const auto t2 = f.Pend(2, 1000);
  const auto t3 = f.Pend(3, 1000);
  EXPECT_TRUE(f.table.Complete(t3, VERDICTD_DROP, nullptr, 0));
  EXPECT_TRUE(f.table.Complete(t1, VERDICTD_ACCEPT, nullptr, 0));
  Collect ready;
  EXPECT_EQ(f.table.Poll(10, ready, false), 2u);
  ASSERT_EQ(ready.got.size(), 2u);
  EXPECT_EQ(ready.got[0], std::make_pair(3u, queueio::VerdictKind::kDrop));
  EXPECT_EQ(ready.got[1], std::make_pair(1u, queueio::VerdictKind::kAccept));
  EXPECT_EQ(f.table.pending(), 1u);
  EXPECT_TRUE(f.table.Complete(t2, VERDICTD_QUEUE, nullptr, 0));
  EXPECT_EQ(f.table.Poll(10, ready, false), 1u);
  EXPECT_EQ(f.table.pending(), 0u);
}

TEST(PendingTable, gives_the_timeout_verdict_at_the_deadline_and_ignores_the_late_answer) {
  Fixture f;
  const auto t1 = f.Pend(1, 100);
  f.Pend(2, 200);
  Collect ready;
  EXPECT_EQ(f.table.Poll(99, ready, false), 0u);
  EXPECT_EQ(f.table.Poll(100, ready, false), 1u);
  ASSERT_EQ(ready.got.size(), 1u);
  EXPECT_EQ(ready.got[0], std::make_pair(1u, queueio::VerdictKind::kDrop));
  EXPECT_EQ(f.counters.timeouts.value(), 1u);
  // The late completion is taken (the slot is freed) but gives no verdict.
  EXPECT_TRUE(f.table.Complete(t1, VERDICTD_ACCEPT, nullptr, 0));
  EXPECT_FALSE(f.table.Complete(t1, VERDICTD_ACCEPT, nullptr, 0));  // once only
  EXPECT_EQ(f.table.Poll(150, ready, false), 0u);
  EXPECT_EQ(f.counters.late.value(), 1u);
  EXPECT_EQ(ready.got.size(), 1u);
}

TEST(PendingTable, a_timed_out_slot_stays_reserved_until_its_work_completes) {
  Fixture f;
  std::vector<std::uint64_t> tokens;
  for (std::uint32_t id = 1; id <= 4; ++id) tokens.push_back(f.Pend(id, 10));
  EXPECT_EQ(f.table.Reserve(), -1);  // full: the chain gives the overflow verdict
  Collect ready;
  EXPECT_EQ(f.table.Poll(10, ready, false), 4u);
  EXPECT_EQ(f.table.pending(), 0u);
  EXPECT_EQ(f.table.Reserve(), -1);  // the work may still read the copies
  EXPECT_TRUE(f.table.Complete(tokens[2], VERDICTD_ACCEPT, nullptr, 0));
  EXPECT_EQ(f.table.Poll(20, ready, false), 0u);  // frees the slot, no verdict
  EXPECT_GE(f.table.Reserve(), 0);
  EXPECT_EQ(f.table.Reserve(), -1);
}

TEST(PendingTable, a_completion_before_begin_is_kept) {
  Fixture f;
  const int slot = f.table.Reserve();
  const std::uint64_t token = f.table.Arm(slot);
  EXPECT_TRUE(f.table.Complete(token, VERDICTD_DROP, nullptr, 0));  // inside process()
  f.table.Begin(slot, 5, 1000, f.context, f.timeout, f.overflow, &f.counters);
  Collect ready;
  EXPECT_EQ(f.table.Poll(1, ready, false), 1u);
  EXPECT_EQ(ready.got[0], std::make_pair(5u, queueio::VerdictKind::kDrop));
}

// Token 0 is what process() sees for a packet that is not pending: an
// extension that completes it anyway completes nothing, even while the
// first slot's first use is pending.
TEST(PendingTable, token_zero_names_no_slot) {
  Fixture f;
  const auto token = f.Pend(1, 1000);
  EXPECT_NE(token, 0u);
  EXPECT_FALSE(f.table.Complete(0, VERDICTD_DROP, nullptr, 0));
  Collect ready;
  EXPECT_EQ(f.table.Poll(1, ready, false), 0u);
  EXPECT_EQ(f.table.pending(), 1u);
  EXPECT_TRUE(f.table.Complete(token, VERDICTD_ACCEPT, nullptr, 0));
  EXPECT_EQ(f.table.Poll(1, ready, false), 1u);
}

TEST(PendingTable, stale_and_foreign_tokens_are_refused) {
  Fixture f;
  const auto t = f.Pend(1, 1000);
  EXPECT_FALSE(f.table.Complete(t + 1, VERDICTD_ACCEPT, nullptr, 0));  // wrong sequence
  EXPECT_FALSE(f.table.Complete(t | (std::uint64_t{77} << 32), VERDICTD_ACCEPT, nullptr, 0));
  EXPECT_TRUE(f.table.Complete(t, VERDICTD_ACCEPT, nullptr, 0));
  Collect ready;
  f.table.Poll(1, ready, false);
  EXPECT_FALSE(f.table.Complete(t, VERDICTD_ACCEPT, nullptr, 0));  // slot reused later: stale
}

TEST(PendingTable, abandon_gives_the_overflow_verdict_and_drops_the_answer) {
  Fixture f;
  const auto t = f.Pend(1, 1000);
  EXPECT_EQ(f.table.AbandonLast().kind, queueio::VerdictKind::kQueue);
  EXPECT_EQ(f.table.pending(), 0u);
  EXPECT_EQ(f.counters.overflows.value(), 1u);
  EXPECT_TRUE(f.table.Complete(t, VERDICTD_DROP, nullptr, 0));
  f.Pend(2, 1000);
  Collect ready;
  EXPECT_EQ(f.table.Poll(1, ready, false), 0u);
  EXPECT_TRUE(ready.got.empty());
}

TEST(PendingTable, final_poll_times_out_everything_still_waiting) {
  Fixture f;
  f.Pend(1, 1'000'000);
  const auto t2 = f.Pend(2, 1'000'000);
  f.table.Complete(t2, VERDICTD_ACCEPT, nullptr, 0);
  Collect ready;
  EXPECT_EQ(f.table.Poll(0, ready, true), 2u);
  EXPECT_EQ(f.table.pending(), 0u);
}

TEST(PendingTable, altered_completions_carry_the_repaired_slot_bytes) {
  Fixture f;
  const int slot = f.table.Reserve();
  PacketContext& ctx = f.table.context(slot);
  std::vector<std::uint8_t> udp(36, 0);
  udp[0] = 0x45;
  udp[9] = 17;
  std::copy(udp.begin(), udp.end(), ctx.scratch);
  const auto token = f.table.Arm(slot);
  f.table.Begin(slot, 8, 1000, f.context, f.timeout, f.overflow, &f.counters);
  ctx.scratch[35] = 0x5a;
  EXPECT_TRUE(f.table.Complete(token, VERDICTD_ALTERED, nullptr, 36));
  Collect ready;
  EXPECT_EQ(f.table.Poll(1, ready, false), 1u);
  ASSERT_EQ(ready.replaced[8].size(), 36u);
  EXPECT_EQ(ready.replaced[8][35], 0x5a);
  EXPECT_EQ(ready.replaced[8][3], 36);  // IPv4 total length repaired
}

// A plain completion travels in the slot's state word; one with a verdict
// also writes the slot. Both kinds, side by side, keep what they said.
TEST(PendingTable, results_with_and_without_a_verdict_both_arrive_intact) {
  Fixture f;
  const auto t1 = f.Pend(1, 1000);
  const auto t2 = f.Pend(2, 1000);
  const auto t3 = f.Pend(3, 1000);
  const verdictd_verdict_t marked{VERDICTD_VERDICT_SET_MARK, 0x2a, 0, 0};
  const verdictd_verdict_t to_queue{0, 0, 7, 0};
  EXPECT_TRUE(f.table.Complete(t1, VERDICTD_DROP, nullptr, 0));
  EXPECT_TRUE(f.table.Complete(t2, VERDICTD_ACCEPT, &marked, 0));
  EXPECT_TRUE(f.table.Complete(t3, VERDICTD_QUEUE, &to_queue, 0));
  Collect ready;
  EXPECT_EQ(f.table.Poll(1, ready, false), 3u);
  ASSERT_EQ(ready.got.size(), 3u);
  EXPECT_EQ(ready.got[0], std::make_pair(1u, queueio::VerdictKind::kDrop));
  EXPECT_EQ(ready.got[1], std::make_pair(2u, queueio::VerdictKind::kAccept));
  EXPECT_EQ(ready.got[2], std::make_pair(3u, queueio::VerdictKind::kQueue));
  EXPECT_EQ(ready.marks.count(1), 0u);
  EXPECT_EQ(ready.marks[2], 0x2au);
  EXPECT_EQ(f.counters.results[VERDICTD_DROP].value(), 1u);
  EXPECT_EQ(f.counters.results[VERDICTD_ACCEPT].value(), 1u);
  EXPECT_EQ(f.counters.errors.value(), 0u);
}

// A result that is not a verdict (an extension's bug: PENDING again, or a
// value past the ABI's) is an error: the packet gets the end verdict, and
// nothing else is miscounted. (A C extension may pass any integer; in C++
// only the enum's own range can be spelled without undefined behaviour.)
TEST(PendingTable, a_completion_with_a_result_outside_the_abi_counts_an_error) {
  Fixture f;
  f.context.end_verdict = PlainVerdict::Of(queueio::Verdict::Drop());
  const auto t1 = f.Pend(1, 1000);
  const auto t2 = f.Pend(2, 1000);
  EXPECT_TRUE(f.table.Complete(t1, static_cast<verdictd_result_t>(7), nullptr, 0));
  EXPECT_TRUE(f.table.Complete(t2, VERDICTD_PENDING, nullptr, 0));
  Collect ready;
  EXPECT_EQ(f.table.Poll(1, ready, false), 2u);
  ASSERT_EQ(ready.got.size(), 2u);
  EXPECT_EQ(ready.got[0], std::make_pair(1u, queueio::VerdictKind::kDrop));
  EXPECT_EQ(ready.got[1], std::make_pair(2u, queueio::VerdictKind::kDrop));
  EXPECT_EQ(f.counters.errors.value(), 2u);
  for (const auto& result : f.counters.results) EXPECT_EQ(result.value(), 0u);
}

// Slots and ring cells are reused many times over, in reverse order each
// round: every use gets exactly its own verdict, and a token of an earlier
// use never completes a later one.
TEST(PendingTable, many_reuses_give_each_packet_exactly_its_verdict) {
  Fixture f;
  std::uint64_t stale = 0;
  for (std::uint32_t round = 0; round < 5000; ++round) {
    std::vector<std::uint64_t> tokens;
    for (std::uint32_t i = 0; i < 4; ++i) tokens.push_back(f.Pend(round * 4 + i, 1'000'000));
    if (stale != 0) {
      EXPECT_FALSE(f.table.Complete(stale, VERDICTD_ACCEPT, nullptr, 0));
    }
    for (std::uint32_t i = 4; i-- > 0;) {
      EXPECT_TRUE(f.table.Complete(tokens[i], i % 2 ? VERDICTD_DROP : VERDICTD_ACCEPT, nullptr, 0));
    }
    Collect ready;
    ASSERT_EQ(f.table.Poll(1, ready, false), 4u);
    for (std::uint32_t i = 0; i < 4; ++i) {
      EXPECT_EQ(ready.got[i].first, round * 4 + (3 - i));
      EXPECT_EQ(ready.got[i].second,
                (3 - i) % 2 ? queueio::VerdictKind::kDrop : queueio::VerdictKind::kAccept);
    }
    stale = tokens[0];
  }
  EXPECT_EQ(f.table.pending(), 0u);
}

// An extension that completes the token inside process() and then returns
// a verdict anyway (not PENDING): the completion is already in the ring
// when the slot is released. The packet keeps process()'s verdict, the
// completion is dropped, and the slot is free exactly once.
TEST(PendingTable, a_slot_completed_inside_process_then_released_is_freed_once) {
  Fixture f;
  const int slot = f.table.Reserve();
  ASSERT_GE(slot, 0);
  const std::uint64_t token = f.table.Arm(slot);
  EXPECT_TRUE(f.table.Complete(token, VERDICTD_DROP, nullptr, 0));
  f.table.Release(slot);  // process() returned ACCEPT after all
  Collect ready;
  EXPECT_EQ(f.table.Poll(1, ready, false), 0u);
  EXPECT_TRUE(ready.got.empty());
  // Every slot once: four distinct ones, then none.
  std::vector<int> taken;
  for (int i = 0; i < 4; ++i) taken.push_back(f.table.Reserve());
  std::sort(taken.begin(), taken.end());
  EXPECT_EQ(taken, (std::vector<int>{0, 1, 2, 3}));
  EXPECT_EQ(f.table.Reserve(), -1);
  EXPECT_FALSE(f.table.Complete(token, VERDICTD_ACCEPT, nullptr, 0));
}

// The worker writes nothing into a slot's state word when it arms it, so a
// token for a free slot's next use (an extension's arithmetic on a real
// one) is taken. Its completion must not reach a later packet: that use of
// the slot is skipped, and the next packet in the slot gets its own token
// and its own verdict.
TEST(PendingTable, a_token_for_a_free_slots_next_use_reaches_no_packet) {
  Fixture f{1};
  const std::uint64_t first = f.Pend(1, 1000);
  EXPECT_EQ(SlotOf(first), 0u);
  ASSERT_TRUE(f.table.Complete(first, VERDICTD_ACCEPT, nullptr, 0));
  Collect ready;
  ASSERT_EQ(f.table.Poll(1, ready, false), 1u);
  const std::uint64_t forged = first + 1;  // the free slot's next sequence
  EXPECT_TRUE(f.table.Complete(forged, VERDICTD_DROP, nullptr, 0));
  EXPECT_EQ(f.table.Poll(1, ready, false), 0u);  // no packet was waiting for it
  const std::uint64_t second = f.Pend(2, 1000);
  EXPECT_EQ(SlotOf(second), 0u);
  EXPECT_NE(second, forged);
  EXPECT_FALSE(f.table.Complete(forged, VERDICTD_DROP, nullptr, 0));
  EXPECT_TRUE(f.table.Complete(second, VERDICTD_QUEUE, nullptr, 0));
  ASSERT_EQ(f.table.Poll(1, ready, false), 1u);
  ASSERT_EQ(ready.got.size(), 2u);
  EXPECT_EQ(ready.got[1], std::make_pair(2u, queueio::VerdictKind::kQueue));
  EXPECT_EQ(f.table.pending(), 0u);
}

// A NEXT from a completion resumes the chain inside Poll(); an extension
// after it may complete inside process(), on the worker itself, into a slot
// freed earlier in the same Poll(). That push must find the cells Poll()
// already read published as read. Published only after the whole Poll(),
// the four cells read looked unread: on a ring as large as the table the
// push waited for this very thread (a hang); on today's ring of twice the
// table, Complete() refuses it (the EXPECT_TRUE below fails).
TEST(PendingTable, a_completion_inside_a_resumed_chain_does_not_wait_for_the_worker) {
  Fixture f{4};
  struct CompleteAtOnce final : Continuation {
    PendingTable* table = nullptr;
    ExtensionWorkerCounters* counters = nullptr;
    decider::Decision Resume(const PacketContext&, std::uint32_t, const ResultContext& result,
                             std::uint32_t id) noexcept override {
      decider::Decision decision;
      const int slot = table->Reserve();
      if (slot < 0) {
        decision.verdict = queueio::Verdict::Drop();  // the overflow verdict, now
        return decision;
      }
      const std::uint64_t token = table->Arm(slot);
      EXPECT_TRUE(table->Complete(token, VERDICTD_ACCEPT, nullptr, 0));  // inside process()
      table->Begin(slot, id + 100, 1000, result, queueio::Verdict::Drop(), queueio::Verdict::Drop(),
                   counters);
      decision.deferred = true;
      return decision;
    }
    void Hold() noexcept override {}
    void Finished() noexcept override {}
  } resume;
  resume.table = &f.table;
  resume.counters = &f.counters;
  std::vector<std::uint64_t> tokens;
  for (std::uint32_t id = 1; id <= 4; ++id) tokens.push_back(f.Pend(id, 1000, &resume, 1));
  for (const std::uint64_t token : tokens) {
    ASSERT_TRUE(f.table.Complete(token, VERDICTD_NEXT, nullptr, 0));
  }
  Collect ready;
  // Packet 1 resumes while every slot is taken (its answer now); 2, 3 and 4
  // resume into the slots freed before them, as 102, 103 and 104.
  EXPECT_EQ(f.table.Poll(1, ready, false), 1u);
  EXPECT_EQ(f.table.Poll(1, ready, false), 3u);
  EXPECT_EQ(ready.got, (std::vector<std::pair<std::uint32_t, queueio::VerdictKind>>{
                           {1, queueio::VerdictKind::kDrop},
                           {102, queueio::VerdictKind::kAccept},
                           {103, queueio::VerdictKind::kAccept},
                           {104, queueio::VerdictKind::kAccept}}));
  EXPECT_EQ(f.table.pending(), 0u);
}

// The ring is never written back by the worker: over many laps (a ring of
// two cells here), each completion is read once and none is taken for the
// next lap's.
TEST(PendingTable, the_completion_ring_keeps_its_order_over_many_laps) {
  Fixture f{1};
  Collect ready;
  for (std::uint32_t id = 0; id < 1000; ++id) {
    const std::uint64_t token = f.Pend(id, 1000);
    ASSERT_EQ(SlotOf(token), 0u);
    ASSERT_EQ(f.table.Poll(1, ready, false), 0u);  // nothing yet: an old cell is not new
    ASSERT_TRUE(f.table.Complete(token, id % 2 ? VERDICTD_DROP : VERDICTD_ACCEPT, nullptr, 0));
    ASSERT_EQ(f.table.Poll(1, ready, false), 1u);
    ASSERT_EQ(ready.got.back(),
              std::make_pair(id, id % 2 ? queueio::VerdictKind::kDrop : queueio::VerdictKind::kAccept));
  }
  EXPECT_EQ(ready.got.size(), 1000u);
}

// Completers on several threads race each other (every token completed
// four times, some with a verdict) and the worker's timeouts: each packet
// gets exactly one verdict, every slot comes back, and the ring's cells are
// handed between the threads without a data race (ThreadSanitizer runs
// this one).
TEST(PendingTableThread, racing_completers_and_timeouts_give_each_packet_one_verdict) {
  constexpr std::uint32_t kSlots = 64;
  Fixture f{kSlots};
  PendingTable& table = f.table;
  Collect ready;
  std::uint32_t next_id = 0;
  for (int round = 0; round < 200; ++round) {
    std::vector<std::uint64_t> tokens;
    for (std::uint32_t i = 0; i < kSlots; ++i) {
      // Odd ids are already past their deadline at the first Poll.
      tokens.push_back(f.Pend(next_id++, i % 2 ? 1 : 1'000'000));
    }
    std::vector<std::thread> completers;
    for (int t = 0; t < 4; ++t) {
      completers.emplace_back([&tokens, &table, t] {
        const verdictd_verdict_t mark{VERDICTD_VERDICT_SET_MARK, 7, 0, 0};
        for (std::size_t i = 0; i < tokens.size(); ++i) {
          const std::uint64_t token = tokens[(i + static_cast<std::size_t>(t) * 16) % tokens.size()];
          table.Complete(token, VERDICTD_ACCEPT, t % 2 ? &mark : nullptr, 0);
        }
      });
    }
    table.Poll(2, ready, false);  // while they run
    for (std::thread& thread : completers) thread.join();
    table.Poll(2, ready, true);
    ASSERT_EQ(table.pending(), 0u);
  }
  ASSERT_EQ(ready.got.size(), next_id);
  std::vector<std::uint32_t> ids;
  for (const auto& [id, kind] : ready.got) ids.push_back(id);
  std::sort(ids.begin(), ids.end());
  for (std::uint32_t i = 0; i < next_id; ++i) ASSERT_EQ(ids[i], i);
  // Every slot is free again (late answers of timed-out ones freed theirs).
  for (std::uint32_t i = 0; i < kSlots; ++i) EXPECT_GE(table.Reserve(), 0);
  EXPECT_EQ(table.Reserve(), -1);
}

}  // namespace
}  // namespace verdictd::extensions
