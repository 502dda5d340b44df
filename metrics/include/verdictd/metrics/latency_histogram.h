// A fixed-bucket latency histogram with one writer.
//
// Bucket k counts observations <= 2^k microseconds (k = 0..kBuckets-1, so
// 1 us .. ~1.05 s), plus +Inf. Observe() is a division by a constant, a
// bit_width and one relaxed add: no lock, no allocation (prometheus-cpp's
// Histogram takes a mutex per observation, so it is only used at scrape time).
#pragma once

#include <array>
#include <bit>
#include <cstdint>

#include "verdictd/metrics/relaxed_counter.h"

namespace verdictd::metrics {

class LatencyHistogram {
 public:
  static constexpr int kBuckets = 21;

  // Upper bound of bucket k in seconds, for the exposition.
  static constexpr double UpperBoundSeconds(int k) noexcept {
    return static_cast<double>(std::uint64_t{1} << k) * 1e-6;
  }

  static constexpr int BucketIndex(std::uint64_t nanoseconds) noexcept {
    const std::uint64_t micros_ceil = (nanoseconds + 999) / 1000;
    if (micros_ceil <= 1) return 0;
    const int index = std::bit_width(micros_ceil - 1);
    return index < kBuckets ? index : kBuckets;  // kBuckets is +Inf
  }

  // Records `count` observations of the same value (a whole batch at once).
  void Observe(std::uint64_t nanoseconds, std::uint64_t count = 1) noexcept {
    buckets_[BucketIndex(nanoseconds)].Add(count);
    sum_ns_.Add(nanoseconds * count);
  }

  // Non-cumulative count of bucket k (k == kBuckets is +Inf).
  std::uint64_t bucket(int k) const noexcept { return buckets_[k].value(); }
  std::uint64_t sum_nanoseconds() const noexcept { return sum_ns_.value(); }

 private:
  std::array<RelaxedCounter, kBuckets + 1> buckets_{};
  RelaxedCounter sum_ns_;
};

}  // namespace verdictd::metrics
