// The conversion of nfnetlink_queue messages into ip_queue's records, on the
// captured fixtures (tests/fixtures), read back through the public C API.
#include "record.hh"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <linux/netlink.h>
#include <net/if_arp.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "libipq/libipq.h"
#include "verdictd/queueio/parser.h"
#include "verdictd/test_fixtures/fixtures.h"
#include "verdictd/test_fixtures/netlink_messages.h"

namespace verdictd::libipq {
namespace {

using test_fixtures::LoadFixture;

constexpr std::size_t kHeader = NLMSG_HDRLEN + offsetof(ipq_packet_msg_t, payload);
constexpr std::int64_t kReceipt = 1'700'000'000'123'456'789;

// Names interfaces "if<index>", of type ARPHRD_ETHER; counts lookups.
class FakeDirectory final : public InterfaceDirectory {
 public:
  std::uint16_t Lookup(std::uint32_t index, char* name) noexcept override {
    ++lookups;
    std::snprintf(name, IFNAMSIZ, "if%u", index);
    return ARPHRD_ETHER;
  }
  int lookups = 0;
};

queueio::PacketView Parse(const std::vector<std::uint8_t>& bytes) {
  queueio::PacketView view;
  EXPECT_EQ(queueio::ParsePacketMessage(bytes, view).status, queueio::ParseStatus::kOk);
  return view;
}

struct Formatted {
  RecordResult result;
  std::vector<std::uint8_t> buffer;
  const ipq_packet_msg_t& packet() const {
    return *reinterpret_cast<const ipq_packet_msg_t*>(buffer.data() + NLMSG_HDRLEN);
  }
};

Formatted Format(const std::vector<std::uint8_t>& message, RecordContext context,
                 std::size_t size = 70000) {
  Formatted f;
  // 8-byte aligned storage for reading the record back as a struct.
  f.buffer.assign(size, 0xAA);
  f.result = FormatMessageRecord(message, context, f.buffer);
  return f;
}

TEST(Record, ipv4_packet_becomes_an_ipqm_packet_record) {
  const auto bytes = LoadFixture("ipv4_udp");
  const queueio::PacketView view = Parse(bytes);
  FakeDirectory dir;
  RecordContext context;
  context.receipt_time_ns = kReceipt;
  context.interfaces = &dir;
  context.family = AF_INET;
  const Formatted f = Format(bytes, context);
  ASSERT_EQ(f.result.status, RecordStatus::kPacket);
  EXPECT_EQ(f.result.length, kHeader + view.payload.size());
  EXPECT_EQ(ipq_message_type(f.buffer.data()), IPQM_PACKET);
  nlmsghdr header;
  std::memcpy(&header, f.buffer.data(), sizeof header);
  EXPECT_EQ(header.nlmsg_len, f.result.length);

  const ipq_packet_msg_t& m = f.packet();
  EXPECT_EQ(ipq_get_packet(f.buffer.data()), &m);
  EXPECT_EQ(m.packet_id, view.id);
  EXPECT_EQ(m.hook, 3u);  // NF_INET_LOCAL_OUT
  EXPECT_STREQ(m.indev_name, "");
  EXPECT_EQ(std::string(m.outdev_name), "if" + std::to_string(view.outdev));
  EXPECT_EQ(m.hw_protocol, htons(0x0800));
  EXPECT_EQ(m.hw_addrlen, 0);
  EXPECT_EQ(m.hw_type, 0);  // no hardware address at LOCAL_OUT
  EXPECT_EQ(m.mark, 0u);
  // No kernel timestamp in this capture: the time of receipt.
  EXPECT_EQ(m.timestamp_sec, 1'700'000'000);
  EXPECT_EQ(m.timestamp_usec, 123'456);
  ASSERT_EQ(m.data_len, view.payload.size());
  EXPECT_EQ(std::memcmp(m.payload, view.payload.data(), m.data_len), 0);
  EXPECT_EQ(f.buffer[f.result.length], 0xAA);  // nothing written past the record
  EXPECT_EQ(dir.lookups, 1);
}

TEST(Record, input_packet_has_kernel_timestamp_indev_and_hardware_address) {
  const auto bytes = LoadFixture("input_timestamp");
  const queueio::PacketView view = Parse(bytes);
  FakeDirectory dir;
  RecordContext context;
  context.receipt_time_ns = kReceipt;
  context.interfaces = &dir;
  const Formatted f = Format(bytes, context);
  ASSERT_EQ(f.result.status, RecordStatus::kPacket);
  const ipq_packet_msg_t& m = f.packet();
  EXPECT_EQ(m.hook, 1u);  // NF_INET_LOCAL_IN
  EXPECT_EQ(std::string(m.indev_name), "if" + std::to_string(view.indev));
  EXPECT_EQ(m.timestamp_sec, view.timestamp_ns / 1'000'000'000);
  EXPECT_EQ(m.timestamp_usec, (view.timestamp_ns % 1'000'000'000) / 1000);
  EXPECT_NE(m.timestamp_sec, 1'700'000'000);
  EXPECT_EQ(m.hw_addrlen, 6);  // lo's all-zero Ethernet-sized address
  EXPECT_EQ(m.hw_type, ARPHRD_ETHER);
}

TEST(Record, mark_is_copied) {
  const Formatted f = Format(LoadFixture("mark"), {});
  ASSERT_EQ(f.result.status, RecordStatus::kPacket);
  EXPECT_EQ(f.packet().mark, 0x2au);
}

TEST(Record, metadata_only_record_has_no_payload) {
  const Formatted f = Format(LoadFixture("meta_only"), {});
  ASSERT_EQ(f.result.status, RecordStatus::kPacket);
  EXPECT_EQ(f.result.length, kHeader);
  EXPECT_EQ(f.packet().data_len, 0u);
  EXPECT_STREQ(f.packet().outdev_name, "");  // no directory: names stay empty
}

TEST(Record, ipv6_packet_on_an_ipv4_handle_is_not_formatted) {
  const auto bytes = LoadFixture("ipv6_udp");
  RecordContext context;
  context.family = AF_INET;
  const Formatted f = Format(bytes, context);
  EXPECT_EQ(f.result.status, RecordStatus::kOtherFamily);
  EXPECT_TRUE(f.result.has_id);
  EXPECT_EQ(f.result.id, Parse(bytes).id);
  EXPECT_EQ(f.buffer[0], 0xAA);
  context.family = AF_INET6;
  EXPECT_EQ(Format(bytes, context).result.status, RecordStatus::kPacket);
}

TEST(Record, buffer_one_byte_too_small_is_refused_untouched) {
  const auto bytes = LoadFixture("ipv4_udp");
  const std::size_t need = kHeader + Parse(bytes).payload.size();
  const Formatted f = Format(bytes, {}, need - 1);
  EXPECT_EQ(f.result.status, RecordStatus::kTooSmall);
  EXPECT_EQ(f.result.length, need);
  EXPECT_TRUE(f.result.has_id);
  for (std::uint8_t b : f.buffer) ASSERT_EQ(b, 0xAA);
  EXPECT_EQ(Format(bytes, {}, need).result.status, RecordStatus::kPacket);
}

TEST(Record, kernel_error_becomes_nlmsg_error_with_positive_errno) {
  const Formatted f = Format(LoadFixture("error_enoent"), {});
  ASSERT_EQ(f.result.status, RecordStatus::kError);
  EXPECT_EQ(f.result.length, NLMSG_LENGTH(sizeof(nlmsgerr)));
  EXPECT_EQ(ipq_message_type(f.buffer.data()), NLMSG_ERROR);
  EXPECT_EQ(ipq_get_msgerr(f.buffer.data()), ENOENT);
  EXPECT_FALSE(f.result.has_id);
}

TEST(Record, acknowledgement_is_not_handed_out) {
  EXPECT_EQ(Format(test_fixtures::BuildErrorMessage(0), {}).result.status, RecordStatus::kIgnore);
  const Formatted f = Format(test_fixtures::BuildErrorMessage(-EPERM, 7), {});
  ASSERT_EQ(f.result.status, RecordStatus::kError);
  EXPECT_EQ(ipq_get_msgerr(f.buffer.data()), EPERM);
}

TEST(Record, cut_message_is_malformed_but_keeps_its_id) {
  test_fixtures::SyntheticPacket packet;
  packet.id = 4242;
  packet.payload = test_fixtures::FillerPayload(200);
  const auto cut = test_fixtures::CutMessage(test_fixtures::BuildPacketMessage(packet), 50);
  const Formatted f = Format(cut, {});
  EXPECT_EQ(f.result.status, RecordStatus::kMalformed);
  EXPECT_TRUE(f.result.has_id);
  EXPECT_EQ(f.result.id, 4242u);
  packet.with_packet_hdr = false;
  const Formatted none = Format(test_fixtures::BuildPacketMessage(packet), {});
  EXPECT_EQ(none.result.status, RecordStatus::kMalformed);
  EXPECT_FALSE(none.result.has_id);
}

TEST(Record, unaligned_buffer_is_written_byte_for_byte) {
  const auto bytes = LoadFixture("ipv4_udp");
  std::vector<std::uint8_t> aligned(4096), unaligned(4097);
  ASSERT_EQ(FormatMessageRecord(bytes, {}, aligned).status, RecordStatus::kPacket);
  const RecordResult r = FormatMessageRecord(bytes, {}, std::span(unaligned).subspan(1));
  ASSERT_EQ(r.status, RecordStatus::kPacket);
  EXPECT_EQ(std::memcmp(aligned.data(), unaligned.data() + 1, r.length), 0);
}

TEST(Record, datagram_entry_formats_every_fixture_and_survives_damage) {
  std::vector<std::uint8_t> out(70000);
  for (const std::string& name : test_fixtures::PacketFixtureNames()) {
    const auto bytes = LoadFixture(name);
    EXPECT_EQ(LibipqFormatDatagram(bytes.data(), bytes.size(), out.data(), out.size()), 1) << name;
    // Every prefix and a flipped byte at every offset: no crash, no read
    // past the input (ASan), at most one record.
    for (std::size_t i = 0; i < bytes.size(); ++i) {
      EXPECT_LE(LibipqFormatDatagram(bytes.data(), i, out.data(), out.size()), 1);
      auto damaged = bytes;
      damaged[i] ^= 0xff;
      EXPECT_LE(LibipqFormatDatagram(damaged.data(), damaged.size(), out.data(), out.size()), 1);
    }
    EXPECT_EQ(LibipqFormatDatagram(bytes.data(), bytes.size(), out.data(), 20), 0) << name;
  }
}

}  // namespace
}  // namespace verdictd::libipq
