#include "verdictd/metrics/process_stats.h"

#include <unistd.h>

#include <gtest/gtest.h>

namespace verdictd::metrics {
namespace {

TEST(ProcessStats, parses_a_stat_line_whose_name_holds_spaces_and_parens) {
  // Fields 14/15 utime/stime = 250/150 ticks, 22 starttime = 1000 ticks,
  // 23 vsize = 123456789, 24 rss = 100 pages.
  const char* line =
      "4242 (we ird) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 150 0 0 20 0 3 0 1000 "
      "123456789 100 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
  const ProcStat stat = ParseProcStat(line, 1'700'000'000.0, 100, 4096);
  ASSERT_TRUE(stat.ok);
  EXPECT_DOUBLE_EQ(stat.cpu_seconds, 4.0);
  EXPECT_DOUBLE_EQ(stat.start_time_seconds, 1'700'000'010.0);
  EXPECT_EQ(stat.virtual_bytes, 123456789u);
  EXPECT_EQ(stat.resident_bytes, 409600u);
}

TEST(ProcessStats, rejects_truncated_lines) {
  EXPECT_FALSE(ParseProcStat("4242 (x) S 1 2 3", 0, 100, 4096).ok);
  EXPECT_FALSE(ParseProcStat("", 0, 100, 4096).ok);
}

TEST(ProcessStats, reads_this_process) {
  const ProcStat stat = ReadProcStat();
  ASSERT_TRUE(stat.ok);
  EXPECT_GT(stat.resident_bytes, 0u);
  EXPECT_GT(stat.start_time_seconds, 1'600'000'000.0);
  EXPECT_GE(OpenFileDescriptors(), 3);  // stdin, stdout, stderr at least
  const long before = OpenFileDescriptors();
  const int fd = dup(0);
  EXPECT_EQ(OpenFileDescriptors(), before + 1);
  close(fd);
}

}  // namespace
}  // namespace verdictd::metrics
