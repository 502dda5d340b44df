#include "verdictd/queueio/verdict_encoder.h"

#include <gtest/gtest.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink_queue.h>

#include <array>
#include <vector>

#include "verdictd/test_fixtures/netlink_messages.h"

namespace verdictd::queueio {
namespace {

using test_fixtures::DecodeVerdicts;

TEST(Encoder, encodes_accept_as_single_verdict) {
  std::array<std::uint8_t, 256> buf{};
  const std::size_t n = EncodeVerdict(buf, 7, 42, Verdict::Accept(), 1);
  ASSERT_EQ(n, 32u);  // 16 nlmsghdr + 4 nfgenmsg + 12 verdict header
  auto decoded = DecodeVerdicts(std::span(buf).first(n));
  ASSERT_TRUE(decoded);
  ASSERT_EQ(decoded->size(), 1u);
  EXPECT_EQ((*decoded)[0].type, NFQNL_MSG_VERDICT);
  EXPECT_EQ((*decoded)[0].queue_num, 7);
  EXPECT_EQ((*decoded)[0].verdict, unsigned{NF_ACCEPT});
  EXPECT_EQ((*decoded)[0].id, 42u);
  EXPECT_FALSE((*decoded)[0].mark);
}

TEST(Encoder, encodes_every_verdict_kind) {
  struct Case {
    Verdict verdict;
    std::uint32_t code;
  };
  Verdict repeat;
  repeat.kind = VerdictKind::kRepeat;
  Verdict stop;
  stop.kind = VerdictKind::kStop;
  const std::vector<Case> cases = {
      {Verdict::Accept(), NF_ACCEPT},
      {Verdict::Drop(), NF_DROP},
      {repeat, NF_REPEAT},
      {stop, NF_STOP},
      {Verdict::ToQueue(5), NF_QUEUE | (5u << 16)},
      {Verdict::ToQueue(65535), NF_QUEUE | (65535u << 16)},
  };
  for (const auto& c : cases) {
    std::array<std::uint8_t, 256> buf{};
    const std::size_t n = EncodeVerdict(buf, 1, 9, c.verdict, 3);
    ASSERT_GT(n, 0u);
    auto decoded = DecodeVerdicts(std::span(buf).first(n));
    ASSERT_TRUE(decoded);
    EXPECT_EQ((*decoded)[0].verdict, c.code) << VerdictKindName(c.verdict.kind);
  }
}

TEST(Encoder, adds_mark_connmark_and_payload) {
  const std::vector<std::uint8_t> replacement = {1, 2, 3, 4, 5};
  Verdict v = Verdict::Accept();
  v.set_mark = true;
  v.mark = 0xdeadbeef;
  v.set_connmark = true;
  v.connmark = 0x1234;
  v.replacement = replacement;
  std::vector<std::uint8_t> buf(MaxVerdictMessageSize(replacement.size()));
  const std::size_t n = EncodeVerdict(buf, 2, 100, v, 1);
  ASSERT_GT(n, 0u);
  EXPECT_EQ(n % 4, 0u);
  auto decoded = DecodeVerdicts(std::span(buf).first(n));
  ASSERT_TRUE(decoded);
  const auto& d = (*decoded)[0];
  EXPECT_EQ(d.mark, 0xdeadbeefu);
  EXPECT_EQ(d.connmark, 0x1234u);
  EXPECT_EQ(d.payload, replacement);
}

TEST(Encoder, returns_zero_when_buffer_too_small) {
  std::array<std::uint8_t, 31> buf{};
  EXPECT_EQ(EncodeVerdict(buf, 0, 1, Verdict::Accept(), 1), 0u);
  EXPECT_EQ(EncodeBatchVerdict(buf, 0, 1, Verdict::Accept(), 1), 0u);
}

TEST(Encoder, batch_refuses_payload_and_connmark) {
  std::array<std::uint8_t, 256> buf{};
  const std::vector<std::uint8_t> replacement = {1};
  Verdict v = Verdict::Accept();
  v.replacement = replacement;
  EXPECT_EQ(EncodeBatchVerdict(buf, 0, 1, v, 1), 0u);
  Verdict c = Verdict::Accept();
  c.set_connmark = true;
  EXPECT_EQ(EncodeBatchVerdict(buf, 0, 1, c, 1), 0u);
}

TEST(Encoder, encodes_batch_with_mark) {
  std::array<std::uint8_t, 256> buf{};
  Verdict v = Verdict::Drop();
  v.set_mark = true;
  v.mark = 7;
  const std::size_t n = EncodeBatchVerdict(buf, 3, 1000, v, 1);
  ASSERT_EQ(n, 40u);
  auto decoded = DecodeVerdicts(std::span(buf).first(n));
  ASSERT_TRUE(decoded);
  EXPECT_EQ((*decoded)[0].type, NFQNL_MSG_VERDICT_BATCH);
  EXPECT_EQ((*decoded)[0].id, 1000u);
  EXPECT_EQ((*decoded)[0].verdict, unsigned{NF_DROP});
  EXPECT_EQ((*decoded)[0].mark, 7u);
}

TEST(Encoder, refuses_replacement_longer_than_an_attribute) {
  std::vector<std::uint8_t> replacement(70000, 0);
  std::vector<std::uint8_t> buf(MaxVerdictMessageSize(replacement.size()));
  Verdict v = Verdict::Accept();
  v.replacement = replacement;
  EXPECT_EQ(EncodeVerdict(buf, 0, 1, v, 1), 0u);
}

}  // namespace
}  // namespace verdictd::queueio
