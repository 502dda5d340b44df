#include "suggest.h"

#include <gtest/gtest.h>

#include <array>

namespace verdictd::config {
namespace {

TEST(EditDistance, counts_edits_and_neighbour_swaps) {
  EXPECT_EQ(EditDistance("", ""), 0u);
  EXPECT_EQ(EditDistance("abc", ""), 3u);
  EXPECT_EQ(EditDistance("default", "default"), 0u);
  EXPECT_EQ(EditDistance("defualt", "default"), 1u);  // swap
  EXPECT_EQ(EditDistance("batchsize", "batch_size"), 1u);
  EXPECT_EQ(EditDistance("Level", "level"), 0u);  // case is ignored
  EXPECT_EQ(EditDistance("kitten", "sitting"), 3u);
}

TEST(NearestName, suggests_only_plausible_typos) {
  constexpr std::array<std::string_view, 3> kKeys{"enabled", "listen", "socket"};
  EXPECT_EQ(NearestName("enabeld", kKeys), "enabled");
  EXPECT_EQ(NearestName("listn", kKeys), "listen");
  EXPECT_EQ(NearestName("colour", kKeys), "");
  EXPECT_EQ(NearestName("x", kKeys), "");
}

}  // namespace
}  // namespace verdictd::config
