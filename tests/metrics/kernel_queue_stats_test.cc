#include "verdictd/metrics/kernel_queue_stats.h"

#include <gtest/gtest.h>

namespace verdictd::metrics {
namespace {

TEST(KernelQueueStats, parses_the_kernels_seq_show_format) {
  // As printed by "%5u %6u %5u %1u %5u %5u %5u %8u %2d\n" in nfnetlink_queue.c.
  const char* text =
      "    0  12345     7 2 65535     3    11     1042  1\n"
      "   65 4294967295 0 1   128     0     0        0  1\n";
  const auto rows = ParseKernelQueueStats(text);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0], (KernelQueueStats{0, 12345, 7, 2, 65535, 3, 11, 1042}));
  EXPECT_EQ(rows[1], (KernelQueueStats{65, 4294967295u, 0, 1, 128, 0, 0, 0}));
}

TEST(KernelQueueStats, skips_short_or_garbled_lines_and_tolerates_extra_columns) {
  const char* text =
      "garbage\n"
      "    1  2  3\n"
      "    2  1  x 2 65535 0 0 5 1\n"
      "70000  1  0 2 65535 0 0 5 1\n"   // not a 16-bit queue number
      "    3  9  4 2 65535 5 6 7 1 99 extra\n"
      "    4  9  4 2 65535 5 6 8";  // no trailing newline, no last column
  const auto rows = ParseKernelQueueStats(text);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0], (KernelQueueStats{3, 9, 4, 2, 65535, 5, 6, 7}));
  EXPECT_EQ(rows[1].queue_num, 4);
  EXPECT_EQ(rows[1].last_id, 8u);
}

TEST(KernelQueueStats, missing_file_is_nullopt_not_an_error) {
  EXPECT_FALSE(ReadKernelQueueStats("/nonexistent/nfnetlink_queue").has_value());
  EXPECT_TRUE(ParseKernelQueueStats("").empty());
}

}  // namespace
}  // namespace verdictd::metrics
