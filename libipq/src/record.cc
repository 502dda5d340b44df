#include "record.hh"

#include <linux/netlink.h>

#include <algorithm>
#include <cstring>

#include "libipq/libipq.h"
#include "verdictd/queueio/parser.h"

namespace verdictd::libipq {
namespace {

constexpr std::size_t kPayloadOffset = NLMSG_HDRLEN + offsetof(ipq_packet_msg_t, payload);
constexpr std::size_t kErrorRecordSize = NLMSG_LENGTH(sizeof(nlmsgerr));

}  // namespace

std::size_t PacketRecordSize(std::size_t payload_size) noexcept {
  return kPayloadOffset + payload_size;
}

RecordResult FormatPacketRecord(const queueio::PacketView& view, const RecordContext& context,
                                std::span<std::uint8_t> out) noexcept {
  RecordResult result;
  result.has_id = true;
  result.id = view.id;
  if (context.family != 0 && view.family != context.family) {
    result.status = RecordStatus::kOtherFamily;
    return result;
  }
  result.length = PacketRecordSize(view.payload.size());
  if (out.size() < result.length) {
    result.status = RecordStatus::kTooSmall;
    return result;
  }

  // Everything but the payload is built here, then copied: the caller's
  // buffer need not be aligned for these structures.
  struct {
    nlmsghdr header;
    ipq_packet_msg_t msg;
  } head;
  static_assert(offsetof(decltype(head), msg) == NLMSG_HDRLEN);
  std::memset(&head, 0, sizeof head);
  head.header.nlmsg_len = static_cast<std::uint32_t>(result.length);
  head.header.nlmsg_type = IPQM_PACKET;

  ipq_packet_msg_t& m = head.msg;
  m.packet_id = view.id;
  m.mark = view.has_mark ? view.mark : 0;
  const std::int64_t ns = view.has_timestamp ? view.timestamp_ns : context.receipt_time_ns;
  m.timestamp_sec = static_cast<long>(ns / 1'000'000'000);
  m.timestamp_usec = static_cast<long>((ns % 1'000'000'000) / 1000);
  m.hook = view.hook;
  std::uint16_t in_type = 0;
  if (context.interfaces != nullptr) {
    if (view.indev != 0) in_type = context.interfaces->Lookup(view.indev, m.indev_name);
    if (view.outdev != 0) context.interfaces->Lookup(view.outdev, m.outdev_name);
  }
  // ip_queue sent the protocol as the kernel holds it, in network order.
  m.hw_protocol =
      static_cast<unsigned short>(((view.hw_protocol & 0xff) << 8) | (view.hw_protocol >> 8));
  if (!view.hw_addr.empty()) {
    // As ip_queue: the hardware type of the device the address came from.
    m.hw_type = in_type;
    m.hw_addrlen = static_cast<unsigned char>(std::min(view.hw_addr.size(), sizeof m.hw_addr));
    std::memcpy(m.hw_addr, view.hw_addr.data(), m.hw_addrlen);
  }
  m.data_len = view.payload.size();

  std::memcpy(out.data(), &head, kPayloadOffset);
  if (!view.payload.empty()) {
    std::memcpy(out.data() + kPayloadOffset, view.payload.data(), view.payload.size());
  }
  result.status = RecordStatus::kPacket;
  return result;
}

RecordResult FormatMessageRecord(std::span<const std::uint8_t> message,
                                 const RecordContext& context,
                                 std::span<std::uint8_t> out) noexcept {
  queueio::PacketView view;
  const queueio::ParseResult parsed = queueio::ParsePacketMessage(message, view);
  RecordResult result;
  switch (parsed.status) {
    case queueio::ParseStatus::kOk:
      return FormatPacketRecord(view, context, out);
    case queueio::ParseStatus::kNetlinkError: {
      if (parsed.error_code == 0) return result;  // an acknowledgement
      result.length = kErrorRecordSize;
      if (out.size() < kErrorRecordSize) {
        result.status = RecordStatus::kTooSmall;
        return result;
      }
      struct {
        nlmsghdr header;
        nlmsgerr error;
      } record;
      std::memset(&record, 0, sizeof record);
      std::memcpy(&record.header, message.data(), sizeof record.header);  // seq, pid
      const std::size_t length = std::min<std::size_t>(record.header.nlmsg_len, message.size());
      record.header.nlmsg_len = kErrorRecordSize;
      record.header.nlmsg_flags = 0;
      record.error.error = parsed.error_code;
      // The header of the request that failed, when the kernel echoed it
      // (the parser checked that the message holds at least the error code).
      const std::size_t echoed =
          std::min(length - NLMSG_HDRLEN - sizeof(int), sizeof record.error.msg);
      std::memcpy(&record.error.msg, message.data() + NLMSG_HDRLEN + sizeof(int), echoed);
      std::memcpy(out.data(), &record, kErrorRecordSize);
      result.status = RecordStatus::kError;
      return result;
    }
    case queueio::ParseStatus::kNotPacket:
    case queueio::ParseStatus::kDone:
      return result;
    case queueio::ParseStatus::kTruncated:
    case queueio::ParseStatus::kBadLength:
    case queueio::ParseStatus::kMissingPacketHdr:
      break;
  }
  result.status = RecordStatus::kMalformed;
  result.has_id = parsed.has_id;
  result.id = parsed.id;
  return result;
}

}  // namespace verdictd::libipq

extern "C" int LibipqFormatDatagram(const std::uint8_t* data, std::size_t size, unsigned char* out,
                                    std::size_t out_len) {
  using namespace verdictd::libipq;
  const RecordContext context;
  int records = 0;
  verdictd::queueio::ForEachNetlinkMessage(
      std::span<const std::uint8_t>(data, size), [&](std::span<const std::uint8_t> message) {
        const RecordResult r = FormatMessageRecord(message, context, {out, out_len});
        if (r.status == RecordStatus::kPacket || r.status == RecordStatus::kError) ++records;
      });
  return records;
}
