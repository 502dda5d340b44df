#include "verdictd/queueio/parser.h"

#include "verdictd/queueio/packet_source.h"

#include <gtest/gtest.h>
#include <linux/netlink.h>

#include <cstring>
#include <string>
#include <vector>

#include "verdictd/test_fixtures/netlink_messages.h"

namespace verdictd::queueio {
namespace {

using test_fixtures::BuildErrorMessage;
using test_fixtures::BuildPacketMessage;
using test_fixtures::SyntheticPacket;

SyntheticPacket FullPacket() {
  SyntheticPacket p;
  p.id = 77;
  p.queue_num = 3;
  p.hook = 1;
  p.mark = 0x55;
  p.indev = 2;
  p.outdev = 4;
  p.uid = 1000;
  p.gid = 100;
  p.skb_info = kSkbGso | kSkbChecksumNotReady;
  p.cap_len = 3000;
  p.payload = std::vector<std::uint8_t>(100, 0xab);
  return p;
}

TEST(Parser, parses_every_attribute_of_a_packet) {
  const auto message = BuildPacketMessage(FullPacket());
  PacketView view;
  const ParseResult r = ParsePacketMessage(message, view);
  ASSERT_EQ(r.status, ParseStatus::kOk) << ParseStatusName(r.status);
  EXPECT_TRUE(r.has_id);
  EXPECT_EQ(r.id, 77u);
  EXPECT_EQ(view.id, 77u);
  EXPECT_EQ(view.queue_num, 3);
  EXPECT_EQ(view.hw_protocol, 0x0800);
  EXPECT_EQ(view.hook, 1);
  EXPECT_TRUE(view.has_mark);
  EXPECT_EQ(view.mark, 0x55u);
  EXPECT_EQ(view.indev, 2u);
  EXPECT_EQ(view.outdev, 4u);
  EXPECT_TRUE(view.has_uid);
  EXPECT_EQ(view.uid, 1000u);
  EXPECT_TRUE(view.has_gid);
  EXPECT_EQ(view.gid, 100u);
  EXPECT_TRUE(view.is_gso());
  EXPECT_EQ(view.payload.size(), 100u);
  EXPECT_EQ(view.original_length, 3000u);
  EXPECT_TRUE(view.truncated());
  // Zero copy: the payload points into the message.
  EXPECT_GE(view.payload.data(), message.data());
  EXPECT_LE(view.payload.data() + view.payload.size(), message.data() + message.size());
}

TEST(Parser, reads_the_security_context_as_text_of_any_length) {
  SyntheticPacket p = FullPacket();
  p.secctx = "system_u:object_r:http_packet_t:s0";  // 34 bytes: not a u32
  const auto message = BuildPacketMessage(p);
  PacketView view;
  const ParseResult r = ParsePacketMessage(message, view);
  ASSERT_EQ(r.status, ParseStatus::kOk) << ParseStatusName(r.status);
  EXPECT_EQ(std::string(view.secctx.begin(), view.secctx.end()), *p.secctx);
  EXPECT_EQ(view.uid, 1000u);  // the attributes after it still parse

  PacketView without;
  ASSERT_EQ(ParsePacketMessage(BuildPacketMessage(FullPacket()), without).status, ParseStatus::kOk);
  EXPECT_TRUE(without.secctx.empty());
}

TEST(Parser, reports_missing_packet_header) {
  SyntheticPacket p = FullPacket();
  p.with_packet_hdr = false;
  const auto message = BuildPacketMessage(p);
  PacketView view;
  const ParseResult r = ParsePacketMessage(message, view);
  EXPECT_EQ(r.status, ParseStatus::kMissingPacketHdr);
  EXPECT_FALSE(r.has_id);
}

TEST(Parser, reports_truncated_message_with_its_id) {
  const auto message = BuildPacketMessage(FullPacket());
  for (std::size_t cut = 0; cut < message.size(); ++cut) {
    PacketView view;
    const ParseResult r = ParsePacketMessage(std::span(message).first(cut), view);
    EXPECT_EQ(r.status, ParseStatus::kTruncated) << "cut at " << cut;
    // The packet header is the first attribute: 20 + 4 + 7 bytes.
    if (cut >= 31) {
      EXPECT_TRUE(r.has_id) << "cut at " << cut;
      EXPECT_EQ(r.id, 77u);
    }
  }
}

TEST(Parser, reports_bad_attribute_length) {
  auto message = BuildPacketMessage(FullPacket());
  // The second attribute (NFQA_MARK, after the 12-byte packet header
  // attribute at offset 20) claims to run past the message.
  std::uint16_t huge = 0xfff0;
  std::memcpy(message.data() + 20 + 12, &huge, sizeof huge);
  PacketView view;
  ParseResult r = ParsePacketMessage(message, view);
  EXPECT_EQ(r.status, ParseStatus::kBadLength);
  EXPECT_TRUE(r.has_id);
  EXPECT_EQ(r.id, 77u);

  std::uint16_t tiny = 2;
  std::memcpy(message.data() + 20 + 12, &tiny, sizeof tiny);
  r = ParsePacketMessage(message, view);
  EXPECT_EQ(r.status, ParseStatus::kBadLength);
  EXPECT_TRUE(r.has_id);
}

TEST(Parser, reports_wrong_size_of_known_attribute) {
  auto message = BuildPacketMessage(FullPacket());
  // NFQA_MARK with a 2-byte payload (the next 2 bytes become padding).
  std::uint16_t len = 6;
  std::memcpy(message.data() + 20 + 12, &len, sizeof len);
  PacketView view;
  const ParseResult r = ParsePacketMessage(message, view);
  EXPECT_EQ(r.status, ParseStatus::kBadLength);
  EXPECT_TRUE(r.has_id);
}

TEST(Parser, reports_bad_message_length) {
  auto message = BuildPacketMessage(FullPacket());
  std::uint32_t len = 8;
  std::memcpy(message.data(), &len, sizeof len);
  PacketView view;
  EXPECT_EQ(ParsePacketMessage(message, view).status, ParseStatus::kBadLength);
}

TEST(Parser, recognises_errors_and_acks) {
  PacketView view;
  auto error = BuildErrorMessage(-2, 9);  // ENOENT: verdict for an unknown id
  ParseResult r = ParsePacketMessage(error, view);
  EXPECT_EQ(r.status, ParseStatus::kNetlinkError);
  EXPECT_EQ(r.error_code, -2);
  auto ack = BuildErrorMessage(0, 9);
  r = ParsePacketMessage(ack, view);
  EXPECT_EQ(r.status, ParseStatus::kNetlinkError);
  EXPECT_EQ(r.error_code, 0);
}

TEST(Parser, walks_several_messages_in_one_datagram) {
  std::vector<std::uint8_t> datagram;
  for (std::uint32_t id = 1; id <= 3; ++id) {
    SyntheticPacket p;
    p.id = id;
    p.payload = std::vector<std::uint8_t>(id, 1);  // odd lengths exercise alignment
    auto m = BuildPacketMessage(p);
    m.resize(NLMSG_ALIGN(m.size()), 0);
    datagram.insert(datagram.end(), m.begin(), m.end());
  }
  auto err = BuildErrorMessage(-2, 1);
  datagram.insert(datagram.end(), err.begin(), err.end());
  std::vector<std::uint32_t> ids;
  int errors = 0;
  const bool complete = ForEachNetlinkMessage(datagram, [&](std::span<const std::uint8_t> m) {
    PacketView view;
    const ParseResult r = ParsePacketMessage(m, view);
    if (r.status == ParseStatus::kOk) ids.push_back(view.id);
    if (r.status == ParseStatus::kNetlinkError) ++errors;
  });
  EXPECT_TRUE(complete);
  EXPECT_EQ(ids, (std::vector<std::uint32_t>{1, 2, 3}));
  EXPECT_EQ(errors, 1);
}

// The worker's entry: every packet of a receive, parsed in place, and the
// damaged or cut end of a datagram reported so that it is counted (and gets
// a verdict when its id is readable).
TEST(ReceiveBatch, for_each_packet_yields_every_message_and_each_cut_end) {
  auto packet = [](std::uint32_t id, std::size_t size) {
    SyntheticPacket p;
    p.id = id;
    p.payload = std::vector<std::uint8_t>(size, 1);
    auto m = BuildPacketMessage(p);
    m.resize(NLMSG_ALIGN(m.size()), 0);
    return m;
  };
  std::vector<std::uint8_t> two = packet(1, 10);
  const auto second = packet(2, 11);
  two.insert(two.end(), second.begin(), second.end());
  // Cut inside its payload as MSG_TRUNC cuts: the header still claims the
  // whole message, and the id is still readable.
  std::vector<std::uint8_t> cut = packet(3, 200);
  cut.resize(100);
  // Whole, but the receive said MSG_TRUNC: what followed is lost.
  const std::vector<std::uint8_t> whole_but_truncated = packet(4, 10);
  const Datagram datagrams[] = {{two, false}, {cut, true}, {whole_but_truncated, true}};
  ReceiveBatch batch;
  batch.datagrams = datagrams;

  std::vector<std::string> seen;
  batch.ForEachPacket([&](const ParseResult& r, const PacketView& view) {
    seen.push_back(std::string(ParseStatusName(r.status)) + ":" +
                   (r.status == ParseStatus::kOk ? std::to_string(view.id)
                    : r.has_id                    ? std::to_string(r.id)
                                                  : "-"));
  });
  const std::string ok = ParseStatusName(ParseStatus::kOk);
  const std::string truncated = ParseStatusName(ParseStatus::kTruncated);
  EXPECT_EQ(seen, (std::vector<std::string>{ok + ":1", ok + ":2", truncated + ":3", ok + ":4",
                                            truncated + ":-"}));
  // The views point into the receive buffers: nothing was copied.
  batch.datagrams = std::span<const Datagram>(datagrams, 1);
  batch.ForEachPacket([&](const ParseResult&, const PacketView& view) {
    EXPECT_GE(view.payload.data(), two.data());
    EXPECT_LE(view.payload.data() + view.payload.size(), two.data() + two.size());
  });
}

// Random bytes, often shaped like a packet message so the attribute walk is
// reached. Each input is copied into a buffer of exactly its size, so a read
// past its end is a heap overflow that ASan reports, and every result is
// checked against what the bytes allow.
TEST(Parser, survives_garbage) {
  std::vector<std::uint8_t> bytes(512);
  std::uint32_t state = 12345;
  int ok = 0, damaged = 0, other = 0;
  std::size_t messages = 0;
  for (int round = 0; round < 2000; ++round) {
    for (auto& b : bytes) {
      state = state * 1103515245 + 12345;
      b = static_cast<std::uint8_t>(state >> 16);
    }
    std::uint32_t len = static_cast<std::uint32_t>(state % 600);
    std::memcpy(bytes.data(), &len, 4);
    std::uint16_t type = (3 << 8);
    if (round % 2 == 0) std::memcpy(bytes.data() + 4, &type, 2);
    const std::vector<std::uint8_t> slice(bytes.begin(),
                                          bytes.begin() + static_cast<std::ptrdiff_t>(state % bytes.size()));
    PacketView view;
    const ParseResult r = ParsePacketMessage(slice, view);
    switch (r.status) {
      case ParseStatus::kOk:
        ++ok;
        ASSERT_GE(slice.size(), sizeof(nlmsghdr));
        ASSERT_LE(len, slice.size()) << "a message longer than its buffer parsed as whole";
        ASSERT_TRUE(r.has_id);
        ASSERT_EQ(r.id, view.id);
        if (!view.payload.empty()) {
          ASSERT_GE(view.payload.data(), slice.data());
          ASSERT_LE(view.payload.data() + view.payload.size(), slice.data() + slice.size());
        }
        break;
      case ParseStatus::kTruncated:
      case ParseStatus::kBadLength:
        ++damaged;
        break;
      default:
        ++other;
        break;
    }
    if (slice.size() < sizeof(nlmsghdr)) {
      ASSERT_NE(r.status, ParseStatus::kOk);
    }
    const std::vector<std::uint8_t> whole(bytes);
    ForEachNetlinkMessage(whole, [&](std::span<const std::uint8_t> m) {
      ++messages;
      ASSERT_GE(m.data(), whole.data());
      ASSERT_LE(m.data() + m.size(), whole.data() + whole.size());
      PacketView v;
      ParsePacketMessage(m, v);
    });
  }
  // The generator reaches every outcome, or the test proves little.
  EXPECT_GT(ok + other, 0);
  EXPECT_GT(damaged, 100);
  EXPECT_GT(messages, 0u);
}

}  // namespace
}  // namespace verdictd::queueio
