// A fixed-bucket latency histogram with one writer.
//
// Bucket k (k = 0..19) counts observations <= 2^k microseconds (1 us ..
// 524 ms), bucket 20 those <= 1 s, and bucket kBuckets (+Inf) the rest, so
// the exposition's bounds run from 1 us to exactly 1 s. Observe() is a few
// compares, a division by a constant, a bit_width and two relaxed adds: no
// lock, no allocation, no atomic read-modify-write (prometheus-cpp's
// Histogram takes a mutex per observation, so it is never used per packet).
//
// Thread-safety: one writer (the owning worker) calls Observe(); any thread
// may read bucket() and sum_nanoseconds() (a scrape may see a bucket one
// observation ahead of the sum; the count is derived from the buckets).
#pragma once

#include <array>
#include <bit>
#include <cstdint>

#include "verdictd/metrics/relaxed_counter.h"

namespace verdictd::metrics {

class LatencyHistogram {
 public:
  static constexpr int kBuckets = 21;  // finite buckets; index kBuckets is +Inf
  static constexpr std::uint64_t kOneSecondNs = 1'000'000'000;
  // Observations above this still land in +Inf but add only this much to the
  // sum: a bogus value (a clock step, a negative difference cast to unsigned)
  // must not wrap the sum and look like a counter reset.
  static constexpr std::uint64_t kMaxSumNanoseconds = 3'600 * kOneSecondNs;

  // Upper bound of finite bucket k in seconds, for the exposition.
  static constexpr double UpperBoundSeconds(int k) noexcept {
    return k < kBuckets - 1 ? static_cast<double>(std::uint64_t{1} << k) * 1e-6 : 1.0;
  }

  static constexpr int BucketIndex(std::uint64_t nanoseconds) noexcept {
    if (nanoseconds <= 1000) return 0;
    if (nanoseconds > kOneSecondNs) return kBuckets;  // +Inf
    // No overflow: nanoseconds <= 1e9 here. ceil(us) - 1 < 1e6 < 2^20, so the
    // index is at most 20, and bucket 20 is the (524288 us, 1 s] bucket.
    const std::uint64_t micros_ceil = (nanoseconds + 999) / 1000;
    return std::bit_width(micros_ceil - 1);
  }

  // Records `count` observations of the same value (a whole batch at once).
  void Observe(std::uint64_t nanoseconds, std::uint64_t count = 1) noexcept {
    buckets_[BucketIndex(nanoseconds)].Add(count);
    const std::uint64_t clamped = nanoseconds < kMaxSumNanoseconds ? nanoseconds : kMaxSumNanoseconds;
    sum_ns_.Add(clamped * count);
  }

  // Non-cumulative count of bucket k (k == kBuckets is +Inf).
  std::uint64_t bucket(int k) const noexcept { return buckets_[k].value(); }
  std::uint64_t sum_nanoseconds() const noexcept { return sum_ns_.value(); }
  // Observations so far (sum of all buckets, +Inf included).
  std::uint64_t count() const noexcept {
    std::uint64_t total = 0;
    for (const auto& b : buckets_) total += b.value();
    return total;
  }

 private:
  std::array<RelaxedCounter, kBuckets + 1> buckets_{};
  RelaxedCounter sum_ns_;
};

}  // namespace verdictd::metrics
