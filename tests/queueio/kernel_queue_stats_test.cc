#include "verdictd/queueio/kernel_queue_stats.h"

#include <gtest/gtest.h>

namespace verdictd::queueio {
namespace {

TEST(KernelQueueStats, parses_the_line_of_one_queue) {
  const char* text =
      "    0  12345     3 2 65535     0     7       42  1\n"
      "    5   4000     0 1  1500    11     0   100000  1\n";
  auto q0 = ParseKernelQueueStats(text, 0);
  ASSERT_TRUE(q0);
  EXPECT_EQ(q0->peer_portid, 12345u);
  EXPECT_EQ(q0->queue_total, 3u);
  EXPECT_EQ(q0->copy_mode, 2u);
  EXPECT_EQ(q0->copy_range, 65535u);
  EXPECT_EQ(q0->user_dropped, 7u);
  EXPECT_EQ(q0->id_sequence, 42u);
  auto q5 = ParseKernelQueueStats(text, 5);
  ASSERT_TRUE(q5);
  EXPECT_EQ(q5->queue_dropped, 11u);
  EXPECT_EQ(q5->copy_range, 1500u);
  EXPECT_FALSE(ParseKernelQueueStats(text, 1));
  EXPECT_FALSE(ParseKernelQueueStats("", 0));
}

TEST(KernelQueueStats, unreadable_file_gives_nothing) {
  EXPECT_FALSE(ReadKernelQueueStats(0, "/nonexistent/nfnetlink_queue"));
}

}  // namespace
}  // namespace verdictd::queueio
