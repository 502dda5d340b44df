#include "verdictd/base/clock.h"

#include <gtest/gtest.h>
#include <time.h>

namespace verdictd::base {
namespace {

std::uint64_t DirectNanos(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

// Each reading is of its own clock: it lies between two direct reads of
// that clock (and not of the other, whose epoch differs by decades).
TEST(Clock, each_reading_lies_between_two_direct_reads_of_its_clock) {
  const std::uint64_t mono_before = DirectNanos(CLOCK_MONOTONIC);
  const std::uint64_t mono = MonotonicNanos();
  const std::uint64_t mono_after = DirectNanos(CLOCK_MONOTONIC);
  EXPECT_LE(mono_before, mono);
  EXPECT_LE(mono, mono_after);

  const std::uint64_t real_before = DirectNanos(CLOCK_REALTIME);
  const std::uint64_t real = RealtimeNanos();
  const std::uint64_t real_after = DirectNanos(CLOCK_REALTIME);
  EXPECT_LE(real_before, real);
  EXPECT_LE(real, real_after);
}

}  // namespace
}  // namespace verdictd::base
