#include "verdictd/base/relaxed_counter.h"

#include <gtest/gtest.h>

namespace verdictd::base {
namespace {

TEST(RelaxedCounter, adds_one_by_default_and_n_when_given) {
  RelaxedCounter counter;
  EXPECT_EQ(counter.value(), 0u);
  counter.Add();
  counter.Add(41);
  EXPECT_EQ(counter.value(), 42u);
}

TEST(RelaxedMax, keeps_the_largest_value_seen) {
  RelaxedMax max;
  max.Max(7);
  max.Max(3);
  EXPECT_EQ(max.value(), 7u);
  max.Max(9);
  EXPECT_EQ(max.value(), 9u);
}

}  // namespace
}  // namespace verdictd::base
