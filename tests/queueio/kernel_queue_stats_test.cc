#include "verdictd/queueio/kernel_queue_stats.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace verdictd::queueio {
namespace {

TEST(KernelQueueStats, parses_the_kernels_seq_show_format) {
  // As printed by "%5u %6u %5u %1u %5u %5u %5u %8u %2d\n" in nfnetlink_queue.c.
  const char* text =
      "    0  12345     7 2 65535     3    11     1042  1\n"
      "   65 4294967295 0 1   128     0     0        0  1\n";
  const auto rows = ParseKernelQueueTable(text);
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
      "    5  4294967296 0 2 65535 0 0 5 1\n"  // not a 32-bit port id
      "    3  9  4 2 65535 5 6 7 1 99 extra\n"
      "    4  9  4 2 65535 5 6 8";  // no trailing newline, no last column
  const auto rows = ParseKernelQueueTable(text);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0], (KernelQueueStats{3, 9, 4, 2, 65535, 5, 6, 7}));
  EXPECT_EQ(rows[1].queue_num, 4);
  EXPECT_EQ(rows[1].id_sequence, 8u);
}

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

TEST(KernelQueueStats, one_queue_lookup_skips_lines_the_table_parser_rejects) {
  // A garbled line that starts with the queue number does not count as that
  // queue being bound; the well-formed line after it does.
  const char* text =
      "    7  1  x 2 65535 0 0 5 1\n"
      "    7  99 0 2 65535 0 0 6 1 extra\n";
  auto q7 = ParseKernelQueueStats(text, 7);
  ASSERT_TRUE(q7);
  EXPECT_EQ(q7->peer_portid, 99u);
  EXPECT_FALSE(ParseKernelQueueStats("    7  1  x 2 65535 0 0 5 1\n", 7));
}

TEST(KernelQueueStats, reads_the_table_and_one_queue_from_a_file) {
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("verdictd_nfqueue_" + std::to_string(getpid())))
                               .string();
  std::ofstream(path) << "    2  77  1 2 65535 0 0 9  1\n"
                         "    8  78  0 2  1500 4 5 10 1\n";
  const auto table = ReadKernelQueueTable(path);
  const auto q8 = ReadKernelQueueStats(8, path);
  const auto q3 = ReadKernelQueueStats(3, path);
  std::filesystem::remove(path);
  ASSERT_TRUE(table);
  ASSERT_EQ(table->size(), 2u);
  EXPECT_EQ((*table)[0], (KernelQueueStats{2, 77, 1, 2, 65535, 0, 0, 9}));
  ASSERT_TRUE(q8);
  EXPECT_EQ(*q8, (KernelQueueStats{8, 78, 0, 2, 1500, 4, 5, 10}));
  EXPECT_FALSE(q3);
}

TEST(KernelQueueStats, missing_file_is_nullopt_not_an_error) {
  EXPECT_FALSE(ReadKernelQueueTable("/nonexistent/nfnetlink_queue").has_value());
  EXPECT_FALSE(ReadKernelQueueStats(0, "/nonexistent/nfnetlink_queue"));
  EXPECT_TRUE(ParseKernelQueueTable("").empty());
}

}  // namespace
}  // namespace verdictd::queueio
