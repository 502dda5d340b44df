#include "verdictd/metrics/latency_histogram.h"

#include <cstdint>
#include <limits>

#include <gtest/gtest.h>

namespace verdictd::metrics {
namespace {

constexpr int kInf = LatencyHistogram::kBuckets;

TEST(LatencyHistogram, bounds_run_from_one_microsecond_to_one_second) {
  EXPECT_DOUBLE_EQ(LatencyHistogram::UpperBoundSeconds(0), 1e-6);
  EXPECT_DOUBLE_EQ(LatencyHistogram::UpperBoundSeconds(1), 2e-6);
  EXPECT_DOUBLE_EQ(LatencyHistogram::UpperBoundSeconds(10), 1.024e-3);
  EXPECT_DOUBLE_EQ(LatencyHistogram::UpperBoundSeconds(19), 0.524288);
  EXPECT_DOUBLE_EQ(LatencyHistogram::UpperBoundSeconds(kInf - 1), 1.0);
  for (int k = 1; k < kInf; ++k) {
    EXPECT_LT(LatencyHistogram::UpperBoundSeconds(k - 1), LatencyHistogram::UpperBoundSeconds(k)) << k;
  }
}

TEST(LatencyHistogram, bucket_index_is_le_at_each_boundary) {
  EXPECT_EQ(LatencyHistogram::BucketIndex(0), 0);
  EXPECT_EQ(LatencyHistogram::BucketIndex(1), 0);
  EXPECT_EQ(LatencyHistogram::BucketIndex(1000), 0);     // 1 us <= 1 us
  EXPECT_EQ(LatencyHistogram::BucketIndex(1001), 1);
  EXPECT_EQ(LatencyHistogram::BucketIndex(2000), 1);
  EXPECT_EQ(LatencyHistogram::BucketIndex(2001), 2);
  EXPECT_EQ(LatencyHistogram::BucketIndex(4000), 2);
  EXPECT_EQ(LatencyHistogram::BucketIndex(150'000), 8);  // 150 us <= 256 us
  EXPECT_EQ(LatencyHistogram::BucketIndex(524'288'000), 19);
  EXPECT_EQ(LatencyHistogram::BucketIndex(524'288'001), 20);
  EXPECT_EQ(LatencyHistogram::BucketIndex(1'000'000'000), 20);  // exactly 1 s
  EXPECT_EQ(LatencyHistogram::BucketIndex(1'000'000'001), kInf);
  EXPECT_EQ(LatencyHistogram::BucketIndex(std::numeric_limits<std::uint64_t>::max()), kInf);
  EXPECT_EQ(LatencyHistogram::BucketIndex(std::numeric_limits<std::uint64_t>::max() - 500), kInf);
}

TEST(LatencyHistogram, every_value_lands_in_the_first_bucket_whose_bound_holds_it) {
  // Exhaustive over the boundaries (+-1 ns): the bucket's bound holds the
  // value and the previous bucket's does not.
  for (int k = 0; k < kInf; ++k) {
    const auto bound_ns = static_cast<std::uint64_t>(LatencyHistogram::UpperBoundSeconds(k) * 1e9 + 0.5);
    for (std::uint64_t ns : {bound_ns - 1, bound_ns, bound_ns + 1}) {
      const int index = LatencyHistogram::BucketIndex(ns);
      if (index < kInf) {
        EXPECT_LE(static_cast<double>(ns), LatencyHistogram::UpperBoundSeconds(index) * 1e9) << ns;
      }
      if (index > 0) {
        EXPECT_GT(static_cast<double>(ns), LatencyHistogram::UpperBoundSeconds(index - 1) * 1e9) << ns;
      }
    }
  }
}

TEST(LatencyHistogram, observe_counts_batches_and_sums_nanoseconds) {
  LatencyHistogram h;
  h.Observe(1500);      // bucket 1
  h.Observe(3000, 10);  // bucket 2, ten packets
  h.Observe(2'000'000'000);  // +Inf
  EXPECT_EQ(h.bucket(1), 1u);
  EXPECT_EQ(h.bucket(2), 10u);
  EXPECT_EQ(h.bucket(kInf), 1u);
  EXPECT_EQ(h.count(), 12u);
  EXPECT_EQ(h.sum_nanoseconds(), 1500u + 30000u + 2'000'000'000u);
}

TEST(LatencyHistogram, bogus_huge_value_goes_to_inf_without_wrapping_the_sum) {
  LatencyHistogram h;
  h.Observe(1000);
  h.Observe(std::numeric_limits<std::uint64_t>::max(), 3);  // e.g. a negative difference
  EXPECT_EQ(h.bucket(kInf), 3u);
  EXPECT_EQ(h.sum_nanoseconds(), 1000u + 3 * LatencyHistogram::kMaxSumNanoseconds);
}

}  // namespace
}  // namespace verdictd::metrics
