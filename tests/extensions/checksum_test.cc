#include "verdictd/extensions/checksum.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

namespace verdictd::extensions {
namespace {

// An independent checksum: byte pairs summed one at a time into 32 bits,
// folded at the end (RFC 1071's reference loop).
std::uint16_t Reference(const std::vector<std::uint8_t>& bytes) {
  std::uint32_t sum = 0;
  for (std::size_t i = 0; i < bytes.size(); i += 2) {
    std::uint32_t word = static_cast<std::uint32_t>(bytes[i]) << 8;
    if (i + 1 < bytes.size()) word |= bytes[i + 1];
    sum += word;
  }
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<std::uint16_t>(~sum);
}

std::vector<std::uint8_t> Slice(const std::vector<std::uint8_t>& p, std::size_t from,
                                std::size_t to) {
  return {p.begin() + static_cast<std::ptrdiff_t>(from), p.begin() + static_cast<std::ptrdiff_t>(to)};
}

// True when the L4 checksum (field included) verifies over pseudo-header + segment.
bool L4Verifies(const std::vector<std::uint8_t>& p, bool v6, std::size_t l4, std::uint8_t proto) {
  std::vector<std::uint8_t> buf;
  const std::size_t len = p.size() - l4;
  if (v6) {
    buf = Slice(p, 8, 40);
    buf.insert(buf.end(), {static_cast<std::uint8_t>(len >> 24), static_cast<std::uint8_t>(len >> 16),
                           static_cast<std::uint8_t>(len >> 8), static_cast<std::uint8_t>(len), 0, 0,
                           0, proto});
  } else if (proto != 1) {
    buf = Slice(p, 12, 20);
    buf.insert(buf.end(), {0, proto, static_cast<std::uint8_t>(len >> 8), static_cast<std::uint8_t>(len)});
  }
  const auto seg = Slice(p, l4, p.size());
  buf.insert(buf.end(), seg.begin(), seg.end());
  return Reference(buf) == 0;
}

std::vector<std::uint8_t> V4(std::uint8_t proto, std::size_t l4_len) {
  std::vector<std::uint8_t> bytes(20 + l4_len, 0);
  std::uint8_t* const p = bytes.data();
  if (p == nullptr) return bytes;
  const std::size_t size = bytes.size();
  p[0] = 0x45;
  p[8] = 64;
  p[9] = proto;
  const std::uint8_t src[4] = {10, 0, 1, 2}, dst[4] = {192, 168, 7, 9};
  for (int i = 0; i < 4; ++i) {
    p[12 + i] = src[i];
    p[16 + i] = dst[i];
  }
  for (std::size_t i = 20; i < size; ++i) p[i] = static_cast<std::uint8_t>(i * 7 + 3);
  if (proto == 6) p[20 + 12] = 0x50;
  // Wrong lengths and checksums on purpose.
  p[2] = 0xde;
  p[10] = 0x12;
  return bytes;
}

std::vector<std::uint8_t> V6(std::uint8_t proto, std::size_t l4_len) {
  std::vector<std::uint8_t> bytes(40 + l4_len, 0);
  std::uint8_t* const p = bytes.data();
  if (p == nullptr) return bytes;
  const std::size_t size = bytes.size();
  p[0] = 0x60;
  p[6] = proto;
  p[7] = 64;
  for (int i = 0; i < 16; ++i) {
    p[8 + i] = static_cast<std::uint8_t>(0x20 + i);
    p[24 + i] = static_cast<std::uint8_t>(0xfd - i);
  }
  for (std::size_t i = 40; i < size; ++i) p[i] = static_cast<std::uint8_t>(i * 13 + 1);
  if (proto == 6) p[40 + 12] = 0x50;
  return bytes;
}

TEST(Checksum, repairs_ipv4_header_and_l4_for_tcp_udp_icmp) {
  for (std::uint8_t proto : {std::uint8_t{6}, std::uint8_t{17}, std::uint8_t{1}}) {
    for (std::size_t len : {std::size_t{20}, std::size_t{33}, std::size_t{1400}}) {
      auto p = V4(proto, len);
      ASSERT_EQ(RepairChecksums(p), RepairStatus::kRepaired);
      EXPECT_EQ((p[2] << 8 | p[3]), static_cast<int>(p.size()));
      EXPECT_EQ(Reference(Slice(p, 0, 20)), 0) << "IPv4 header, proto " << int(proto);
      EXPECT_TRUE(L4Verifies(p, false, 20, proto)) << "proto " << int(proto) << " len " << len;
      if (proto == 17) {
        EXPECT_EQ((p[24] << 8 | p[25]), static_cast<int>(len));
      }
    }
  }
}

TEST(Checksum, repairs_ipv6_tcp_udp_icmpv6) {
  for (std::uint8_t proto : {std::uint8_t{6}, std::uint8_t{17}, std::uint8_t{58}}) {
    for (std::size_t len : {std::size_t{20}, std::size_t{57}, std::size_t{1200}}) {
      auto p = V6(proto, len);
      ASSERT_EQ(RepairChecksums(p), RepairStatus::kRepaired);
      EXPECT_EQ((p[4] << 8 | p[5]), static_cast<int>(len));
      EXPECT_TRUE(L4Verifies(p, true, 40, proto)) << "proto " << int(proto) << " len " << len;
    }
  }
}

TEST(Checksum, replaces_a_partial_pseudo_header_sum_by_the_full_checksum) {
  // CHECKSUM_NOT_READY: the kernel left the pseudo-header sum in the field.
  auto p = V4(17, 40);
  p[2] = 0;
  p[3] = 60;
  const std::uint32_t pseudo = (10 << 8 | 0) + (1 << 8 | 2) + (192 << 8 | 168) + (7 << 8 | 9) + 17 + 40;
  std::uint32_t folded = pseudo;
  while (folded > 0xffff) folded = (folded & 0xffff) + (folded >> 16);
  p[26] = static_cast<std::uint8_t>(folded >> 8);
  p[27] = static_cast<std::uint8_t>(folded);
  ASSERT_EQ(RepairChecksums(p), RepairStatus::kRepaired);
  EXPECT_TRUE(L4Verifies(p, false, 20, 17));
}

TEST(Checksum, fixes_only_the_header_of_a_fragment) {
  auto fragment = V4(17, 40);
  fragment[6] = 0x20;  // more fragments
  const std::uint8_t before = fragment[26];
  EXPECT_EQ(RepairChecksums(fragment), RepairStatus::kHeaderOnly);
  EXPECT_EQ(fragment[26], before);
  EXPECT_EQ(Reference(Slice(fragment, 0, 20)), 0);
}

TEST(Checksum, walks_ipv6_extension_headers_and_stops_at_fragments) {
  auto p = V6(0, 8 + 30);  // hop-by-hop options, then UDP
  p[40] = 17;
  p[41] = 0;
  ASSERT_EQ(RepairChecksums(p), RepairStatus::kRepaired);
  EXPECT_TRUE(L4Verifies(p, true, 48, 17));
  auto f = V6(44, 8 + 30);
  EXPECT_EQ(RepairChecksums(f), RepairStatus::kHeaderOnly);
}

TEST(Checksum, leaves_what_it_cannot_parse_unchanged) {
  std::vector<std::uint8_t> junk = {0x10, 1, 2, 3};
  EXPECT_EQ(RepairChecksums(junk), RepairStatus::kUnsupported);
  EXPECT_EQ(junk, (std::vector<std::uint8_t>{0x10, 1, 2, 3}));
  std::vector<std::uint8_t> short_v4 = {0x45, 0, 0};
  EXPECT_EQ(RepairChecksums(short_v4), RepairStatus::kUnsupported);
  std::vector<std::uint8_t> empty;
  EXPECT_EQ(RepairChecksums(empty), RepairStatus::kUnsupported);
}

}  // namespace
}  // namespace verdictd::extensions
