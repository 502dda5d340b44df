#include "verdictd/base/verdict_kind.h"

#include <gtest/gtest.h>
#include <linux/netfilter.h>

#include <set>
#include <string>

namespace verdictd::base {
namespace {

TEST(VerdictKind, kernel_codes_are_the_kernels) {
  EXPECT_EQ(VerdictKindInfoOf(VerdictKind::kAccept).kernel_code, unsigned{NF_ACCEPT});
  EXPECT_EQ(VerdictKindInfoOf(VerdictKind::kDrop).kernel_code, unsigned{NF_DROP});
  EXPECT_EQ(VerdictKindInfoOf(VerdictKind::kRepeat).kernel_code, unsigned{NF_REPEAT});
  EXPECT_EQ(VerdictKindInfoOf(VerdictKind::kQueue).kernel_code, unsigned{NF_QUEUE});
  EXPECT_EQ(VerdictKindInfoOf(VerdictKind::kStop).kernel_code, unsigned{NF_STOP});
}

TEST(VerdictKind, names_parse_back_to_their_kind) {
  std::set<std::string> names;
  for (const VerdictKindInfo& row : kVerdictKinds) {
    names.insert(row.name);
    EXPECT_EQ(ParseVerdictKind(row.name), row.kind) << row.name;
    EXPECT_STREQ(VerdictKindName(row.kind), row.name);
    EXPECT_EQ(VerdictKindOfKernelCode(row.kernel_code), row.kind) << row.name;
  }
  EXPECT_EQ(names.size(), kVerdictKindCount) << "two kinds share a name";
  EXPECT_EQ(ParseVerdictKind("Accept"), std::nullopt);
  EXPECT_EQ(ParseVerdictKind(""), std::nullopt);
  EXPECT_EQ(ParseVerdictKind("queue:1"), std::nullopt);
}

TEST(VerdictKind, kernel_code_keeps_the_target_queue_out_of_the_kind) {
  EXPECT_EQ(VerdictKindOfKernelCode(NF_QUEUE | (7u << NF_VERDICT_QBITS)), VerdictKind::kQueue);
  EXPECT_EQ(VerdictKindOfKernelCode(NF_ACCEPT), VerdictKind::kAccept);
  EXPECT_EQ(VerdictKindOfKernelCode(NF_STOLEN), std::nullopt);
  EXPECT_EQ(VerdictKindOfKernelCode(99), std::nullopt);
}

TEST(VerdictKind, names_are_indexed_by_kind) {
  constexpr auto kNames = VerdictKindNames();
  EXPECT_STREQ(kNames[static_cast<std::size_t>(VerdictKind::kAccept)], "accept");
  EXPECT_STREQ(kNames[static_cast<std::size_t>(VerdictKind::kDrop)], "drop");
  EXPECT_STREQ(kNames[static_cast<std::size_t>(VerdictKind::kRepeat)], "repeat");
  EXPECT_STREQ(kNames[static_cast<std::size_t>(VerdictKind::kQueue)], "queue");
  EXPECT_STREQ(kNames[static_cast<std::size_t>(VerdictKind::kStop)], "stop");
}

TEST(VerdictKind, setting_words_list_plain_kinds_before_targeted_ones) {
  constexpr auto kWords = VerdictSettingWords();
  ASSERT_EQ(kWords.size(), 5u);
  EXPECT_EQ(kWords[0], "accept");
  EXPECT_EQ(kWords[1], "drop");
  EXPECT_EQ(kWords[2], "repeat");
  EXPECT_EQ(kWords[3], "stop");
  EXPECT_EQ(kWords[4], "queue:N");
}

}  // namespace
}  // namespace verdictd::base
