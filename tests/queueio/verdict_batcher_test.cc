#include "verdictd/queueio/verdict_batcher.h"

#include <gtest/gtest.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink_queue.h>

#include <algorithm>
#include <vector>

#include "verdictd/queueio/memory_queue.h"
#include "verdictd/test_fixtures/netlink_messages.h"

namespace verdictd::queueio {
namespace {

using test_fixtures::DecodedVerdict;
using test_fixtures::DecodeVerdicts;

std::vector<DecodedVerdict> FlushAndDecode(VerdictBatcher& batcher, MemoryQueue& sink) {
  const std::size_t before = sink.sent().size();
  EXPECT_TRUE(batcher.Flush(sink));
  EXPECT_EQ(sink.sent().size(), before + 1);
  auto decoded = DecodeVerdicts(sink.sent().back());
  EXPECT_TRUE(decoded);
  return decoded.value_or(std::vector<DecodedVerdict>{});
}

TEST(VerdictBatcher, folds_consecutive_plain_verdicts_into_one_batch) {
  VerdictBatcher batcher(4, 4096, 64);
  MemoryQueue sink({}, 1, false);
  for (std::uint32_t id = 10; id < 20; ++id) {
    ASSERT_EQ(batcher.Add(id, Verdict::Accept()), AddStatus::kOk);
  }
  EXPECT_EQ(batcher.pending(), 10u);
  auto msgs = FlushAndDecode(batcher, sink);
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0].type, NFQNL_MSG_VERDICT_BATCH);
  EXPECT_EQ(msgs[0].id, 19u);
  EXPECT_EQ(msgs[0].queue_num, 4);
  EXPECT_EQ(batcher.stats().verdicts, 10u);
  EXPECT_EQ(batcher.stats().batch_messages, 1u);
  EXPECT_EQ(batcher.stats().sends, 1u);
  EXPECT_EQ(batcher.pending(), 0u);
}

TEST(VerdictBatcher, splits_runs_on_kind_change_and_keeps_order) {
  VerdictBatcher batcher(0, 4096, 64);
  MemoryQueue sink({}, 1, false);
  ASSERT_EQ(batcher.Add(1, Verdict::Accept()), AddStatus::kOk);
  ASSERT_EQ(batcher.Add(2, Verdict::Accept()), AddStatus::kOk);
  ASSERT_EQ(batcher.Add(3, Verdict::Drop()), AddStatus::kOk);
  ASSERT_EQ(batcher.Add(4, Verdict::Drop()), AddStatus::kOk);
  Verdict marked = Verdict::Accept();
  marked.set_mark = true;
  marked.mark = 1;
  ASSERT_EQ(batcher.Add(5, marked), AddStatus::kOk);
  auto msgs = FlushAndDecode(batcher, sink);
  ASSERT_EQ(msgs.size(), 3u);
  EXPECT_EQ(msgs[0].type, NFQNL_MSG_VERDICT_BATCH);
  EXPECT_EQ(msgs[0].id, 2u);
  EXPECT_EQ(msgs[0].verdict, unsigned{NF_ACCEPT});
  EXPECT_EQ(msgs[1].type, NFQNL_MSG_VERDICT_BATCH);
  EXPECT_EQ(msgs[1].id, 4u);
  EXPECT_EQ(msgs[1].verdict, unsigned{NF_DROP});
  EXPECT_EQ(msgs[2].type, NFQNL_MSG_VERDICT);  // a run of one names its packet
  EXPECT_EQ(msgs[2].id, 5u);
  EXPECT_EQ(msgs[2].mark, 1u);
}

TEST(VerdictBatcher, sends_payload_verdict_single_before_later_batch) {
  VerdictBatcher batcher(0, 1 << 17, 64);
  MemoryQueue sink({}, 1, false);
  const std::vector<std::uint8_t> replacement = {0x45, 0, 0, 20};
  Verdict mangled = Verdict::Accept();
  mangled.replacement = replacement;
  ASSERT_EQ(batcher.Add(1, Verdict::Accept()), AddStatus::kOk);
  ASSERT_EQ(batcher.Add(2, Verdict::Accept()), AddStatus::kOk);
  ASSERT_EQ(batcher.Add(3, mangled), AddStatus::kOk);
  ASSERT_EQ(batcher.Add(4, Verdict::Accept()), AddStatus::kOk);
  ASSERT_EQ(batcher.Add(5, Verdict::Accept()), AddStatus::kOk);
  auto msgs = FlushAndDecode(batcher, sink);
  ASSERT_EQ(msgs.size(), 3u);
  EXPECT_EQ(msgs[0].id, 2u);
  EXPECT_EQ(msgs[1].type, NFQNL_MSG_VERDICT);
  EXPECT_EQ(msgs[1].id, 3u);
  EXPECT_EQ(msgs[1].payload, replacement);
  EXPECT_EQ(msgs[2].type, NFQNL_MSG_VERDICT_BATCH);
  EXPECT_EQ(msgs[2].id, 5u);
}

TEST(VerdictBatcher, never_batches_past_a_deferred_packet) {
  VerdictBatcher batcher(0, 4096, 64);
  MemoryQueue sink({}, 1, false);
  ASSERT_EQ(batcher.Add(1, Verdict::Accept()), AddStatus::kOk);
  ASSERT_EQ(batcher.Add(2, Verdict::Accept()), AddStatus::kOk);
  ASSERT_EQ(batcher.Defer(3), AddStatus::kOk);
  ASSERT_EQ(batcher.Add(4, Verdict::Accept()), AddStatus::kOk);
  ASSERT_EQ(batcher.Add(5, Verdict::Accept()), AddStatus::kOk);
  auto msgs = FlushAndDecode(batcher, sink);
  // 1..2 may be a batch; 4 and 5 must be singles: a batch up to 5 would cover 3.
  ASSERT_EQ(msgs.size(), 3u);
  EXPECT_EQ(msgs[0].type, NFQNL_MSG_VERDICT_BATCH);
  EXPECT_EQ(msgs[0].id, 2u);
  EXPECT_EQ(msgs[1].type, NFQNL_MSG_VERDICT);
  EXPECT_EQ(msgs[1].id, 4u);
  EXPECT_EQ(msgs[2].type, NFQNL_MSG_VERDICT);
  EXPECT_EQ(msgs[2].id, 5u);
  EXPECT_EQ(batcher.deferred(), 1u);
  ASSERT_EQ(batcher.Add(3, Verdict::Drop()), AddStatus::kOk);
  EXPECT_EQ(batcher.deferred(), 0u);
  ASSERT_EQ(batcher.Add(6, Verdict::Accept()), AddStatus::kOk);
  ASSERT_EQ(batcher.Add(7, Verdict::Accept()), AddStatus::kOk);
  msgs = FlushAndDecode(batcher, sink);
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(msgs[0].type, NFQNL_MSG_VERDICT);
  EXPECT_EQ(msgs[0].id, 3u);
  EXPECT_EQ(msgs[0].verdict, unsigned{NF_DROP});
  EXPECT_EQ(msgs[1].type, NFQNL_MSG_VERDICT_BATCH);
  EXPECT_EQ(msgs[1].id, 7u);
}

TEST(VerdictBatcher, batches_completions_up_to_the_lowest_pending_id_and_the_rest_singly) {
  VerdictBatcher batcher(0, 4096, 64);
  MemoryQueue sink({}, 1, false);
  for (std::uint32_t id = 1; id <= 6; ++id) ASSERT_EQ(batcher.Defer(id), AddStatus::kOk);
  // In completion order: 1, 2, 3 while 4..6 pend, then 6 before 5.
  ASSERT_EQ(batcher.Add(1, Verdict::Accept()), AddStatus::kOk);
  ASSERT_EQ(batcher.Add(2, Verdict::Accept()), AddStatus::kOk);
  ASSERT_EQ(batcher.Add(3, Verdict::Accept()), AddStatus::kOk);
  ASSERT_EQ(batcher.Add(6, Verdict::Accept()), AddStatus::kOk);
  ASSERT_EQ(batcher.Add(7, Verdict::Accept()), AddStatus::kOk);  // received after 6, decided inline
  EXPECT_EQ(batcher.deferred(), 2u);
  auto msgs = FlushAndDecode(batcher, sink);
  // One batch up to 3 (below the lowest pending id, 4), then 6 and 7 singly.
  ASSERT_EQ(msgs.size(), 3u);
  EXPECT_EQ(msgs[0].type, NFQNL_MSG_VERDICT_BATCH);
  EXPECT_EQ(msgs[0].id, 3u);
  EXPECT_EQ(msgs[1].type, NFQNL_MSG_VERDICT);
  EXPECT_EQ(msgs[1].id, 6u);
  EXPECT_EQ(msgs[2].type, NFQNL_MSG_VERDICT);
  EXPECT_EQ(msgs[2].id, 7u);
  // 5 pends while 4 completes: 4 alone (a batch up to 4 covers nothing pending).
  ASSERT_EQ(batcher.Add(4, Verdict::Drop()), AddStatus::kOk);
  ASSERT_EQ(batcher.Add(5, Verdict::Drop()), AddStatus::kOk);
  EXPECT_EQ(batcher.deferred(), 0u);
  msgs = FlushAndDecode(batcher, sink);
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0].type, NFQNL_MSG_VERDICT_BATCH);
  EXPECT_EQ(msgs[0].id, 5u);
  EXPECT_EQ(msgs[0].verdict, unsigned{NF_DROP});
}

TEST(VerdictBatcher, a_pending_id_across_the_wrap_still_bounds_the_batch) {
  VerdictBatcher batcher(0, 4096, 64);
  MemoryQueue sink({}, 1, false);
  ASSERT_EQ(batcher.Defer(0xfffffffeu), AddStatus::kOk);
  ASSERT_EQ(batcher.Defer(0xffffffffu), AddStatus::kOk);
  ASSERT_EQ(batcher.Defer(0u), AddStatus::kOk);
  ASSERT_EQ(batcher.Add(0xfffffffeu, Verdict::Accept()), AddStatus::kOk);
  ASSERT_EQ(batcher.Add(0u, Verdict::Accept()), AddStatus::kOk);  // after the pending 0xffffffff
  auto msgs = FlushAndDecode(batcher, sink);
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(msgs[0].type, NFQNL_MSG_VERDICT);
  EXPECT_EQ(msgs[0].id, 0xfffffffeu);
  EXPECT_EQ(msgs[1].type, NFQNL_MSG_VERDICT);
  EXPECT_EQ(msgs[1].id, 0u);
  EXPECT_EQ(batcher.deferred(), 1u);
}

TEST(VerdictBatcher, many_holes_behind_a_slow_pending_id_never_exhaust_the_table) {
  VerdictBatcher batcher(0, 1 << 16, 8);
  MemoryQueue sink({}, 1, false);
  ASSERT_EQ(batcher.Defer(1), AddStatus::kOk);  // never decided in this test
  for (std::uint32_t id = 2; id < 200; ++id) {
    ASSERT_EQ(batcher.Defer(id), AddStatus::kOk) << id;
    ASSERT_EQ(batcher.Add(id, Verdict::Accept()), AddStatus::kOk) << id;
    EXPECT_EQ(batcher.deferred(), 1u);
    if (batcher.pending() >= 7) FlushAndDecode(batcher, sink);
  }
}

TEST(VerdictBatcher, breaks_run_on_id_gap) {
  VerdictBatcher batcher(0, 4096, 64);
  MemoryQueue sink({}, 1, false);
  ASSERT_EQ(batcher.Add(1, Verdict::Accept()), AddStatus::kOk);
  ASSERT_EQ(batcher.Add(2, Verdict::Accept()), AddStatus::kOk);
  ASSERT_EQ(batcher.Add(4, Verdict::Accept()), AddStatus::kOk);
  auto msgs = FlushAndDecode(batcher, sink);
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(msgs[0].id, 2u);
  EXPECT_EQ(msgs[1].type, NFQNL_MSG_VERDICT);
  EXPECT_EQ(msgs[1].id, 4u);
}

// Packet ids are the kernel's 32-bit counter; after 0xffffffff comes 0. The
// kernel's batch walk compares ids in serial order (nfq_id_after), so a run
// across the wrap is one batch naming its last id.
TEST(VerdictBatcher, folds_a_run_across_the_32_bit_wrap) {
  VerdictBatcher batcher(0, 4096, 64);
  MemoryQueue sink({}, 1, false);
  for (std::uint32_t id : {0xfffffffdu, 0xfffffffeu, 0xffffffffu, 0u, 1u, 2u}) {
    ASSERT_EQ(batcher.Add(id, Verdict::Accept()), AddStatus::kOk);
  }
  auto msgs = FlushAndDecode(batcher, sink);
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0].type, NFQNL_MSG_VERDICT_BATCH);
  EXPECT_EQ(msgs[0].id, 2u);
  EXPECT_EQ(batcher.stats().verdicts, 6u);
}

TEST(VerdictBatcher, splits_at_the_wrap_only_where_the_verdict_changes) {
  VerdictBatcher batcher(0, 4096, 64);
  MemoryQueue sink({}, 1, false);
  ASSERT_EQ(batcher.Add(0xfffffffeu, Verdict::Accept()), AddStatus::kOk);
  ASSERT_EQ(batcher.Add(0xffffffffu, Verdict::Accept()), AddStatus::kOk);
  ASSERT_EQ(batcher.Add(0u, Verdict::Drop()), AddStatus::kOk);
  ASSERT_EQ(batcher.Add(1u, Verdict::Drop()), AddStatus::kOk);
  ASSERT_EQ(batcher.Add(3u, Verdict::Drop()), AddStatus::kOk);  // a gap: its own message
  auto msgs = FlushAndDecode(batcher, sink);
  ASSERT_EQ(msgs.size(), 3u);
  EXPECT_EQ(msgs[0].type, NFQNL_MSG_VERDICT_BATCH);
  EXPECT_EQ(msgs[0].id, 0xffffffffu);
  EXPECT_EQ(msgs[0].verdict, unsigned{NF_ACCEPT});
  EXPECT_EQ(msgs[1].type, NFQNL_MSG_VERDICT_BATCH);
  EXPECT_EQ(msgs[1].id, 1u);
  EXPECT_EQ(msgs[1].verdict, unsigned{NF_DROP});
  EXPECT_EQ(msgs[2].type, NFQNL_MSG_VERDICT);
  EXPECT_EQ(msgs[2].id, 3u);
}

TEST(VerdictBatcher, asks_for_flush_when_pending_limit_reached) {
  VerdictBatcher batcher(0, 4096, 3);
  MemoryQueue sink({}, 1, false);
  for (std::uint32_t id = 1; id <= 3; ++id) ASSERT_EQ(batcher.Add(id, Verdict::Drop()), AddStatus::kOk);
  EXPECT_EQ(batcher.Add(4, Verdict::Drop()), AddStatus::kNeedsFlush);
  EXPECT_EQ(batcher.pending(), 3u);
  ASSERT_TRUE(batcher.Flush(sink));
  EXPECT_EQ(batcher.Add(4, Verdict::Drop()), AddStatus::kOk);
}

TEST(VerdictBatcher, asks_for_flush_when_buffer_full) {
  VerdictBatcher batcher(0, 0, 1 << 20);  // the minimum buffer
  MemoryQueue sink({}, 1, false);
  const std::vector<std::uint8_t> replacement(60000, 1);
  Verdict mangled = Verdict::Accept();
  mangled.replacement = replacement;
  ASSERT_EQ(batcher.Add(1, mangled), AddStatus::kOk);
  EXPECT_EQ(batcher.Add(2, mangled), AddStatus::kNeedsFlush);
  ASSERT_TRUE(batcher.Flush(sink));
  EXPECT_EQ(batcher.Add(2, mangled), AddStatus::kOk);
}

TEST(VerdictBatcher, strips_connmark_without_conntrack_support) {
  VerdictBatcher batcher(0, 4096, 64);
  MemoryQueue sink({}, 1, false);
  batcher.set_connmark_supported(false);
  Verdict v = Verdict::Accept();
  v.set_connmark = true;
  v.connmark = 9;
  ASSERT_EQ(batcher.Add(1, v), AddStatus::kOk);
  ASSERT_EQ(batcher.Add(2, v), AddStatus::kOk);
  auto msgs = FlushAndDecode(batcher, sink);
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_FALSE(msgs[0].connmark);
  EXPECT_EQ(batcher.stats().connmarks_stripped, 2u);
}

TEST(VerdictBatcher, flush_due_after_time_bound) {
  VerdictBatcher batcher(0, 4096, 64);
  batcher.set_max_delay_ns(1000);
  EXPECT_FALSE(batcher.FlushDue(0));
  ASSERT_EQ(batcher.Add(1, Verdict::Accept()), AddStatus::kOk);
  EXPECT_FALSE(batcher.FlushDue(5000));
  EXPECT_FALSE(batcher.FlushDue(5999));
  EXPECT_TRUE(batcher.FlushDue(6000));
}

class FailingSink : public VerdictSink {
 public:
  SendStatus Send(std::span<const std::uint8_t>) noexcept override { return SendStatus::kError; }
};

TEST(VerdictBatcher, counts_failed_sends) {
  VerdictBatcher batcher(0, 4096, 64);
  FailingSink sink;
  ASSERT_EQ(batcher.Add(1, Verdict::Accept()), AddStatus::kOk);
  ASSERT_EQ(batcher.Add(2, Verdict::Accept()), AddStatus::kOk);
  EXPECT_FALSE(batcher.Flush(sink));
  EXPECT_EQ(batcher.stats().send_failures, 1u);
  EXPECT_EQ(batcher.stats().failed_verdicts, 2u);
  EXPECT_EQ(batcher.stats().verdicts, 0u);
  EXPECT_EQ(batcher.pending(), 0u);
}

TEST(VerdictBatcher, flush_deadline_counts_from_the_receipt_given_to_add) {
  VerdictBatcher batcher(0, 4096, 64);
  MemoryQueue sink({}, 1, false);
  batcher.set_max_delay_ns(1000);
  EXPECT_EQ(batcher.max_delay_ns(), 1000u);
  ASSERT_EQ(batcher.Add(1, Verdict::Accept(), 5000), AddStatus::kOk);
  // A later verdict does not move the deadline of the oldest.
  ASSERT_EQ(batcher.Add(2, Verdict::Accept(), 5900), AddStatus::kOk);
  EXPECT_FALSE(batcher.FlushDue(5999));
  EXPECT_TRUE(batcher.FlushDue(6000));
  ASSERT_TRUE(batcher.Flush(sink));
  EXPECT_FALSE(batcher.FlushDue(1'000'000));  // nothing pending
  // The next flush's deadline starts with its own first verdict.
  ASSERT_EQ(batcher.Add(3, Verdict::Accept(), 7000), AddStatus::kOk);
  EXPECT_FALSE(batcher.FlushDue(7999));
  EXPECT_TRUE(batcher.FlushDue(8000));
  // Without a bound every pending verdict is due at once.
  batcher.set_max_delay_ns(0);
  EXPECT_TRUE(batcher.FlushDue(7000));
}

// A sink with the netlink socket's limit: a send larger than max_send_bytes()
// fails as the kernel fails it (EMSGSIZE), and the verdicts in it are lost.
class SendBufferSink : public VerdictSink {
 public:
  explicit SendBufferSink(std::size_t limit) : limit_(limit) {}
  SendStatus Send(std::span<const std::uint8_t> messages) noexcept override {
    ++sends;
    largest = std::max(largest, messages.size());
    if (messages.size() > limit_) {
      ++too_large;
      return SendStatus::kError;
    }
    return SendStatus::kOk;
  }
  std::size_t max_send_bytes() const noexcept override { return limit_; }

  std::size_t sends = 0;
  std::size_t largest = 0;
  std::size_t too_large = 0;

 private:
  std::size_t limit_;
};

TEST(VerdictBatcher, caps_its_buffer_at_what_one_send_carries_and_flushes_early) {
  // A batch of 65536 verdicts with marks, sized as the daemon sizes it (64
  // bytes a verdict, 4 MiB), against a socket with the kernel's default
  // 256 KiB send buffer (what QueueSocket::max_send_bytes() then reports).
  constexpr std::size_t kBatch = 65536;
  SendBufferSink sink(256 * 1024 - 64);
  VerdictBatcher batcher(0, sink, kBatch * 64, kBatch);
  std::size_t flushes_asked = 0;
  for (std::uint32_t id = 1; id <= kBatch; ++id) {
    Verdict marked = Verdict::Accept();
    marked.set_mark = true;
    marked.mark = id;  // a different mark each: no two fold into one message
    if (batcher.Add(id, marked) == AddStatus::kNeedsFlush) {
      ++flushes_asked;
      ASSERT_TRUE(batcher.Flush(sink)) << "send of " << sink.largest << " bytes failed";
      ASSERT_EQ(batcher.Add(id, marked), AddStatus::kOk);
    }
  }
  ASSERT_TRUE(batcher.Flush(sink));
  EXPECT_EQ(sink.too_large, 0u);
  EXPECT_LE(sink.largest, 256u * 1024 - 64);
  // 65536 single messages of 40 bytes do not fit one send: the buffer, not
  // the pending limit, asked for the flushes.
  EXPECT_GE(flushes_asked, 9u);
  EXPECT_EQ(sink.sends, flushes_asked + 1);
  EXPECT_EQ(batcher.stats().verdicts, kBatch);
  EXPECT_EQ(batcher.stats().single_messages, kBatch);
  EXPECT_EQ(batcher.stats().failed_verdicts, 0u);
}

TEST(VerdictBatcher, without_the_cap_the_same_batch_exceeds_the_send_buffer) {
  // The control for the test above: the sink does fail a send that is too large.
  constexpr std::size_t kBatch = 65536;
  SendBufferSink sink(256 * 1024 - 64);
  VerdictBatcher batcher(0, kBatch * 64, kBatch);
  for (std::uint32_t id = 1; id <= kBatch; ++id) {
    Verdict marked = Verdict::Accept();
    marked.set_mark = true;
    marked.mark = id;
    ASSERT_EQ(batcher.Add(id, marked), AddStatus::kOk);
  }
  EXPECT_FALSE(batcher.Flush(sink));
  EXPECT_EQ(sink.too_large, 1u);
  EXPECT_EQ(batcher.stats().failed_verdicts, kBatch);
}

TEST(VerdictBatcher, keeps_its_counters_where_it_is_told) {
  BatcherStats stats;
  VerdictBatcher batcher(0, 4096, 64, 0, &stats);
  MemoryQueue sink({}, 1, false);
  ASSERT_EQ(batcher.Add(1, Verdict::Accept()), AddStatus::kOk);
  ASSERT_TRUE(batcher.Flush(sink));
  EXPECT_EQ(&batcher.stats(), &stats);
  EXPECT_EQ(stats.verdicts.load(), 1u);
  EXPECT_EQ(stats.sends.load(), 1u);
}

TEST(VerdictBatcher, flush_of_nothing_sends_nothing) {
  VerdictBatcher batcher(0, 4096, 64);
  MemoryQueue sink({}, 1, false);
  EXPECT_TRUE(batcher.Flush(sink));
  EXPECT_EQ(sink.send_calls(), 0u);
}

}  // namespace
}  // namespace verdictd::queueio
