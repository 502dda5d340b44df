#include "verdictd/queueio/memory_queue.h"

#include <gtest/gtest.h>

namespace verdictd::queueio {
namespace {

TEST(MemoryQueue, hands_out_batches_and_ends_without_loop) {
  MemoryQueue q({{1}, {2}, {3}}, 2, false);
  ReceiveBatch batch;
  ASSERT_EQ(q.Receive(batch, true, -1), ReceiveStatus::kOk);
  ASSERT_EQ(batch.datagrams.size(), 2u);
  EXPECT_EQ(batch.datagrams[0].bytes[0], 1);
  EXPECT_EQ(batch.datagrams[1].bytes[0], 2);
  ASSERT_EQ(q.Receive(batch, true, -1), ReceiveStatus::kOk);
  ASSERT_EQ(batch.datagrams.size(), 1u);
  EXPECT_EQ(batch.datagrams[0].bytes[0], 3);
  EXPECT_EQ(q.Receive(batch, true, -1), ReceiveStatus::kWouldBlock);
  EXPECT_TRUE(batch.datagrams.empty());
}

TEST(MemoryQueue, cycles_with_loop) {
  MemoryQueue q({{1}, {2}}, 3, true);
  ReceiveBatch batch;
  ASSERT_EQ(q.Receive(batch, false, 0), ReceiveStatus::kOk);
  ASSERT_EQ(batch.datagrams.size(), 3u);
  EXPECT_EQ(batch.datagrams[2].bytes[0], 1);
}

TEST(MemoryQueue, empty_script_would_block) {
  MemoryQueue q({}, 3, true);
  ReceiveBatch batch;
  EXPECT_EQ(q.Receive(batch, false, 0), ReceiveStatus::kWouldBlock);
}

TEST(MemoryQueue, records_sends_unless_told_not_to) {
  MemoryQueue q({}, 1, false);
  const std::uint8_t bytes[] = {1, 2, 3};
  EXPECT_EQ(q.Send(bytes), SendStatus::kOk);
  ASSERT_EQ(q.sent().size(), 1u);
  EXPECT_EQ(q.sent()[0].size(), 3u);
  q.set_record_sends(false);
  EXPECT_EQ(q.Send(bytes), SendStatus::kOk);
  EXPECT_EQ(q.sent().size(), 1u);
  EXPECT_EQ(q.send_calls(), 2u);
  EXPECT_EQ(q.sent_bytes(), 6u);
}

}  // namespace
}  // namespace verdictd::queueio
