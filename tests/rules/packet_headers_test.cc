#include "verdictd/rules/packet_headers.h"

#include <gtest/gtest.h>

#include "verdictd/rules/testing/packet_builder.h"

namespace verdictd::rules {
namespace {

using testing::BuildPacket;
using testing::PacketSpec;

TEST(PacketHeaders, reads_ipv4_tcp) {
  auto bytes = BuildPacket({.src = "192.0.2.1", .dst = "198.51.100.7", .protocol = 6, .src_port = 1234,
                            .dst_port = 443, .tcp_flags = 0x12, .payload = "hello"});
  PacketFields f;
  ASSERT_EQ(ParseHeaders(bytes, f), HeaderStatus::kOk);
  EXPECT_EQ(f.family, 4);
  EXPECT_EQ(f.protocol, 6);
  EXPECT_TRUE(f.has_ports);
  EXPECT_EQ(f.src_port, 1234);
  EXPECT_EQ(f.dst_port, 443);
  EXPECT_TRUE(f.has_tcp_flags);
  EXPECT_EQ(f.tcp_flags, 0x12);
  EXPECT_EQ(f.src[0], 192);
  EXPECT_EQ(f.dst[3], 7);
  EXPECT_EQ(f.payload_offset, 40u);
  EXPECT_EQ(f.payload_length, 5u);
}

TEST(PacketHeaders, reads_ipv6_udp_and_icmpv6) {
  auto udp = BuildPacket({.src = "2001:db8::1", .dst = "2001:db8::2", .protocol = 17, .src_port = 53,
                          .dst_port = 5353, .payload = "x"});
  PacketFields f;
  ASSERT_EQ(ParseHeaders(udp, f), HeaderStatus::kOk);
  EXPECT_EQ(f.family, 6);
  EXPECT_EQ(f.protocol, 17);
  EXPECT_EQ(f.src_port, 53);
  EXPECT_EQ(f.dst_port, 5353);
  EXPECT_EQ(f.payload_offset, 48u);
  EXPECT_EQ(f.payload_length, 1u);
  auto icmp = BuildPacket({.src = "2001:db8::1", .dst = "2001:db8::2", .protocol = 58, .icmp_type = 128,
                           .icmp_code = 0});
  ASSERT_EQ(ParseHeaders(icmp, f), HeaderStatus::kOk);
  EXPECT_TRUE(f.has_icmp);
  EXPECT_FALSE(f.has_ports);
  EXPECT_EQ(f.icmp_type, 128);
}

TEST(PacketHeaders, first_fragment_has_ports_later_fragments_do_not) {
  PacketFields f;
  auto first = BuildPacket({.protocol = 17, .payload = "abc", .more_fragments = true});
  EXPECT_EQ(ParseHeaders(first, f), HeaderStatus::kOk);
  EXPECT_TRUE(f.has_ports);
  auto later = BuildPacket({.protocol = 17, .payload = "abc", .fragment_offset = 3});
  EXPECT_EQ(ParseHeaders(later, f), HeaderStatus::kFragment);
  EXPECT_FALSE(f.has_ports);
  EXPECT_EQ(f.protocol, 17);
  auto later6 = BuildPacket({.src = "::1", .dst = "::2", .protocol = 6, .fragment_offset = 10});
  EXPECT_EQ(ParseHeaders(later6, f), HeaderStatus::kFragment);
  EXPECT_EQ(f.protocol, 6);
  EXPECT_FALSE(f.has_ports);
  auto first6 = BuildPacket({.src = "::1", .dst = "::2", .protocol = 6, .more_fragments = true});
  EXPECT_EQ(ParseHeaders(first6, f), HeaderStatus::kOk);
  EXPECT_TRUE(f.has_ports);
}

TEST(PacketHeaders, truncated_and_bad_lengths_are_reported_not_crashed_on) {
  auto bytes = BuildPacket({.protocol = 6, .payload = "payload"});
  PacketFields f;
  for (std::size_t n = 0; n < 40; ++n) {
    std::vector<std::uint8_t> cut(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n));
    const HeaderStatus status = ParseHeaders(cut, f);
    EXPECT_TRUE(status == HeaderStatus::kTruncated) << n << " " << HeaderStatusName(status);
  }
  // A capture cut inside the payload is fine: the headers are there.
  std::vector<std::uint8_t> cut(bytes.begin(), bytes.begin() + 42);
  EXPECT_EQ(ParseHeaders(cut, f), HeaderStatus::kOk);
  EXPECT_EQ(f.payload_length, 2u);
  auto bad = bytes;
  bad[0] = 0x44;  // IHL 16 bytes
  EXPECT_EQ(ParseHeaders(bad, f), HeaderStatus::kBadLength);
  bad = bytes;
  bad[2] = 0;
  bad[3] = 30;  // total length shorter than IP + TCP headers
  EXPECT_EQ(ParseHeaders(bad, f), HeaderStatus::kBadLength);
  bad = bytes;
  bad[40 - 20 + 12] = 0x20;  // TCP data offset 8 bytes
  EXPECT_EQ(ParseHeaders(bad, f), HeaderStatus::kBadLength);
  bad = bytes;
  bad[0] = 0x55;
  EXPECT_EQ(ParseHeaders(bad, f), HeaderStatus::kUnknownFamily);
  auto v6 = BuildPacket({.src = "::1", .dst = "::2", .protocol = 6});
  v6[4] = 0;
  v6[5] = 4;  // payload length shorter than the TCP header
  EXPECT_EQ(ParseHeaders(v6, f), HeaderStatus::kBadLength);
}

TEST(PacketHeaders, skips_ipv6_extension_headers) {
  auto bytes = BuildPacket({.src = "::1", .dst = "::2", .protocol = 17, .src_port = 7, .dst_port = 9});
  // Insert an 8-byte hop-by-hop header in front of UDP.
  std::vector<std::uint8_t> hop = {17, 0, 1, 4, 0, 0, 0, 0};
  bytes.insert(bytes.begin() + 40, hop.begin(), hop.end());
  bytes[6] = 0;
  bytes[5] = static_cast<std::uint8_t>(bytes[5] + 8);
  PacketFields f;
  ASSERT_EQ(ParseHeaders(bytes, f), HeaderStatus::kOk);
  EXPECT_EQ(f.protocol, 17);
  EXPECT_EQ(f.src_port, 7);
  EXPECT_EQ(f.dst_port, 9);
}

}  // namespace
}  // namespace verdictd::rules
