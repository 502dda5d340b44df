// Clock readings in nanoseconds since the clock's epoch: CLOCK_MONOTONIC for
// deadlines, rates and latencies (never jumps), CLOCK_REALTIME only for
// timestamps shown to people (the rule log). One vDSO call each, no
// syscall, no allocation; usable on the hot path, but callers there read
// the clock once per batch, not per packet.
#pragma once

#include <time.h>

#include <cstdint>

namespace verdictd::base {

inline std::uint64_t ClockNanos(clockid_t clock) noexcept {
  timespec ts{};
  clock_gettime(clock, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

inline std::uint64_t MonotonicNanos() noexcept { return ClockNanos(CLOCK_MONOTONIC); }

inline std::uint64_t RealtimeNanos() noexcept { return ClockNanos(CLOCK_REALTIME); }

}  // namespace verdictd::base
