#include "verdictd/queueio/parser.h"

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <linux/netlink.h>

#include <libnetfilter_queue/libnetfilter_queue.h>

#include <array>
#include <cstring>

namespace verdictd::queueio {
namespace {

constexpr std::uint16_t kPacketMessageType = (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET;
constexpr std::size_t kPacketHdrSize = 7;  // sizeof(nfqnl_msg_packet_hdr), packed
constexpr std::size_t kAttrsOffset = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(nfgenmsg));

// nfq_nlmsg_parse() fills a table indexed by attribute type up to the NFQA_MAX
// libnetfilter_queue was built with; leave room for a newer one.
constexpr std::size_t kAttrTableSize = 64;
static_assert(kAttrTableSize > NFQA_MAX);

std::uint32_t LoadBe32(const std::uint8_t* p) noexcept {
  std::uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return ntohl(v);
}

std::uint16_t LoadBe16(const std::uint8_t* p) noexcept {
  std::uint16_t v;
  std::memcpy(&v, p, sizeof v);
  return ntohs(v);
}

std::uint64_t LoadBe64(const std::uint8_t* p) noexcept {
  return (std::uint64_t{LoadBe32(p)} << 32) | LoadBe32(p + 4);
}

// Attribute payload as bytes; nullptr when the attribute is absent.
std::span<const std::uint8_t> AttrBytes(const nlattr* attr) noexcept {
  if (attr == nullptr) return {};
  return {static_cast<const std::uint8_t*>(mnl_attr_get_payload(attr)),
          mnl_attr_get_payload_len(attr)};
}

bool AttrU32(const nlattr* attr, std::uint32_t& out) noexcept {
  auto bytes = AttrBytes(attr);
  if (attr == nullptr || bytes.size() < 4) return false;
  out = LoadBe32(bytes.data());
  return true;
}

void ReadPacketHdr(const std::uint8_t* p, PacketView& out, ParseResult& result) noexcept {
  out.id = LoadBe32(p);
  out.hw_protocol = LoadBe16(p + 4);
  out.hook = p[6];
  result.has_id = true;
  result.id = out.id;
}

// Walks the attributes strictly: mnl_attr_parse() stops silently at the first
// impossible length, which would turn a damaged message into a packet with
// missing attributes. Also picks up the packet id early, so that a message
// damaged after its header still gets a verdict.
ParseStatus StrictWalk(const std::uint8_t* attrs, std::size_t size, bool cut, PacketView& out,
                       ParseResult& result) noexcept {
  std::size_t offset = 0;
  while (offset < size) {
    const std::size_t remaining = size - offset;
    if (remaining < sizeof(nlattr)) return cut ? ParseStatus::kTruncated : ParseStatus::kBadLength;
    nlattr header;
    std::memcpy(&header, attrs + offset, sizeof header);
    if (header.nla_len < sizeof(nlattr)) return ParseStatus::kBadLength;
    if (header.nla_len > remaining) {
      return cut ? ParseStatus::kTruncated : ParseStatus::kBadLength;
    }
    if ((header.nla_type & NLA_TYPE_MASK) == NFQA_PACKET_HDR && !result.has_id &&
        header.nla_len >= NLA_HDRLEN + kPacketHdrSize) {
      ReadPacketHdr(attrs + offset + NLA_HDRLEN, out, result);
    }
    offset += NLA_ALIGN(header.nla_len);
  }
  return ParseStatus::kOk;
}

}  // namespace

const char* ParseStatusName(ParseStatus status) noexcept {
  switch (status) {
    case ParseStatus::kOk:
      return "ok";
    case ParseStatus::kTruncated:
      return "truncated";
    case ParseStatus::kBadLength:
      return "bad_length";
    case ParseStatus::kNotPacket:
      return "not_packet";
    case ParseStatus::kMissingPacketHdr:
      return "missing_packet_hdr";
    case ParseStatus::kNetlinkError:
      return "netlink_error";
    case ParseStatus::kDone:
      return "done";
  }
  return "unknown";
}

ParseResult ParsePacketMessage(std::span<const std::uint8_t> message, PacketView& out) noexcept {
  ParseResult result;
  out = PacketView{};
  if (message.size() < sizeof(nlmsghdr)) {
    result.status = ParseStatus::kTruncated;
    return result;
  }
  nlmsghdr header;
  std::memcpy(&header, message.data(), sizeof header);
  if (header.nlmsg_len < sizeof(nlmsghdr)) {
    result.status = ParseStatus::kBadLength;
    return result;
  }
  const bool cut = header.nlmsg_len > message.size();
  const std::size_t available = cut ? message.size() : header.nlmsg_len;

  switch (header.nlmsg_type) {
    case NLMSG_ERROR: {
      if (available < NLMSG_HDRLEN + sizeof(std::int32_t)) {
        result.status = cut ? ParseStatus::kTruncated : ParseStatus::kBadLength;
        return result;
      }
      std::int32_t error;
      std::memcpy(&error, message.data() + NLMSG_HDRLEN, sizeof error);
      result.status = ParseStatus::kNetlinkError;
      result.error_code = error;
      return result;
    }
    case NLMSG_DONE:
    case NLMSG_NOOP:
      result.status = ParseStatus::kDone;
      return result;
    case kPacketMessageType:
      break;
    default:
      result.status = ParseStatus::kNotPacket;
      return result;
  }

  if (available < kAttrsOffset) {
    result.status = cut ? ParseStatus::kTruncated : ParseStatus::kBadLength;
    return result;
  }
  nfgenmsg gen;
  std::memcpy(&gen, message.data() + NLMSG_HDRLEN, sizeof gen);
  out.family = gen.nfgen_family;
  out.queue_num = ntohs(gen.res_id);

  const ParseStatus walk =
      StrictWalk(message.data() + kAttrsOffset, available - kAttrsOffset, cut, out, result);
  if (walk != ParseStatus::kOk) {
    result.status = walk;
    return result;
  }
  if (cut) {
    result.status = ParseStatus::kTruncated;
    return result;
  }

  std::array<nlattr*, kAttrTableSize> attrs{};
  // The whole message is inside `message` and its attribute lengths are sane.
  const auto* nlh = reinterpret_cast<const nlmsghdr*>(message.data());
  if (nfq_nlmsg_parse(nlh, attrs.data()) < 0) {
    // An attribute of a known type has the wrong size for it.
    result.status = ParseStatus::kBadLength;
    return result;
  }

  if (attrs[NFQA_PACKET_HDR] == nullptr) {
    result.status = ParseStatus::kMissingPacketHdr;
    return result;
  }
  auto hdr = AttrBytes(attrs[NFQA_PACKET_HDR]);
  if (hdr.size() < kPacketHdrSize) {
    result.status = ParseStatus::kBadLength;
    return result;
  }
  ReadPacketHdr(hdr.data(), out, result);

  out.has_mark = AttrU32(attrs[NFQA_MARK], out.mark);
  AttrU32(attrs[NFQA_IFINDEX_INDEV], out.indev);
  AttrU32(attrs[NFQA_IFINDEX_OUTDEV], out.outdev);
  AttrU32(attrs[NFQA_IFINDEX_PHYSINDEV], out.physindev);
  AttrU32(attrs[NFQA_IFINDEX_PHYSOUTDEV], out.physoutdev);
  AttrU32(attrs[NFQA_SKB_INFO], out.skb_info);
  out.has_uid = AttrU32(attrs[NFQA_UID], out.uid);
  out.has_gid = AttrU32(attrs[NFQA_GID], out.gid);

  auto ts = AttrBytes(attrs[NFQA_TIMESTAMP]);
  if (ts.size() >= 16) {
    const std::uint64_t sec = LoadBe64(ts.data());
    const std::uint64_t usec = LoadBe64(ts.data() + 8);
    out.has_timestamp = true;
    out.timestamp_ns = static_cast<std::int64_t>(sec * 1'000'000'000ull + usec * 1'000ull);
  }

  out.payload = AttrBytes(attrs[NFQA_PAYLOAD]);
  std::uint32_t cap_len = 0;
  // The kernel sends NFQA_CAP_LEN only when it copied less than the packet.
  out.original_length = AttrU32(attrs[NFQA_CAP_LEN], cap_len)
                            ? cap_len
                            : static_cast<std::uint32_t>(out.payload.size());

  std::uint32_t ct_info = 0;
  if (AttrU32(attrs[NFQA_CT_INFO], ct_info)) {
    out.has_ct = true;
    out.ct_info = ct_info <= static_cast<std::uint32_t>(CtInfo::kRelatedReply)
                      ? static_cast<CtInfo>(ct_info)
                      : CtInfo::kUnknown;
  }
  if (const nlattr* ct = attrs[NFQA_CT]; ct != nullptr) {
    out.has_ct = true;
    // The table entry only says the nest is at least an attribute header;
    // walk its members with the same length checks as the outer walk.
    auto nest = AttrBytes(ct);
    std::size_t offset = 0;
    while (nest.size() - offset >= sizeof(nlattr)) {
      nlattr inner;
      std::memcpy(&inner, nest.data() + offset, sizeof inner);
      if (inner.nla_len < sizeof(nlattr) || inner.nla_len > nest.size() - offset) break;
      if (inner.nla_len >= NLA_HDRLEN + 4) {
        const std::uint8_t* value = nest.data() + offset + NLA_HDRLEN;
        switch (inner.nla_type & NLA_TYPE_MASK) {
          case CTA_ID:
            out.ct_id = LoadBe32(value);
            break;
          case CTA_STATUS:
            out.ct_status = LoadBe32(value);
            break;
          default:
            break;
        }
      }
      offset += NLA_ALIGN(inner.nla_len);
      if (offset > nest.size()) break;
    }
  }
  result.status = ParseStatus::kOk;
  return result;
}

}  // namespace verdictd::queueio
