#include "verdictd/queueio/parser.h"

#include <arpa/inet.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <linux/netlink.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstring>
#include <type_traits>

namespace verdictd::queueio {

// parser_inl.h reads netlink headers without <linux/netlink.h>.
static_assert(sizeof(internal::NetlinkHeader) == sizeof(nlmsghdr) &&
                  offsetof(internal::NetlinkHeader, length) == offsetof(nlmsghdr, nlmsg_len) &&
                  offsetof(internal::NetlinkHeader, type) == offsetof(nlmsghdr, nlmsg_type) &&
                  offsetof(internal::NetlinkHeader, pid) == offsetof(nlmsghdr, nlmsg_pid),
              "internal::NetlinkHeader must match struct nlmsghdr");
static_assert(internal::NetlinkAlign(13) == NLMSG_ALIGN(13) && NLMSG_ALIGNTO == 4,
              "internal::NetlinkAlign must match NLMSG_ALIGN");

namespace {

constexpr std::uint16_t kPacketMessageType = (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET;
constexpr std::size_t kPacketHdrSize = 7;  // sizeof(nfqnl_msg_packet_hdr), packed
constexpr std::size_t kAttrsOffset = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(nfgenmsg));

// Attribute payloads by type (types above NFQA_MAX are skipped, as
// nfq_nlmsg_parse() skips them); an absent attribute reads as an empty span
// with a null data(). Only the types in `present_` have been written, so the
// table needs no clearing per message: clearing its spans was a `rep stos`
// of 352 bytes and about a third of the parse.
class AttrTable {
 public:
  static constexpr std::size_t kSize = NFQA_MAX + 1;
  static_assert(kSize <= 32, "one presence bit per attribute type");
  static constexpr std::size_t size() noexcept { return kSize; }
  void Set(std::uint16_t type, const std::uint8_t* data, std::size_t size) noexcept {
    data_[type] = data;
    size_[type] = size;
    present_ |= std::uint32_t{1} << type;
  }
  std::span<const std::uint8_t> operator[](std::size_t type) const noexcept {
    if ((present_ >> type & 1u) == 0) return {};
    return {data_[type], size_[type]};
  }

 private:
  std::uint32_t present_ = 0;
  // Left uninitialized on purpose (see above); read only under present_.
  const std::uint8_t* data_[kSize];
  std::size_t size_[kSize];
};

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

bool AttrU32(std::span<const std::uint8_t> bytes, std::uint32_t& out) noexcept {
  if (bytes.size() < 4) return false;
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

// nfq_nlmsg_parse()'s size rules, checked here in the same single pass that
// checks the lengths: attributes of these types must have exactly this many
// payload bytes (0: any size). Doing it inline instead of through
// mnl_attr_parse()'s callback per attribute cuts parsing roughly in half
// (see bench/pipeline_bench.cc), and parsing is most of the per-packet work.
constexpr std::size_t ExactPayloadSize(std::uint16_t type) noexcept {
  switch (type) {
    case NFQA_MARK:
    case NFQA_IFINDEX_INDEV:
    case NFQA_IFINDEX_OUTDEV:
    case NFQA_IFINDEX_PHYSINDEV:
    case NFQA_IFINDEX_PHYSOUTDEV:
    case NFQA_CAP_LEN:
    case NFQA_SKB_INFO:
    case NFQA_UID:
    case NFQA_GID:
    case NFQA_CT_INFO:
      return sizeof(std::uint32_t);
    case NFQA_TIMESTAMP:
      return sizeof(nfqnl_msg_packet_timestamp);
    case NFQA_HWADDR:
      return sizeof(nfqnl_msg_packet_hw);
    case NFQA_PACKET_HDR:
      return sizeof(nfqnl_msg_packet_hdr);
    default:
      return 0;
  }
}

struct WalkResult {
  ParseStatus status = ParseStatus::kOk;
  bool wrong_size = false;  // a known attribute has the wrong size (nfq_nlmsg_parse would fail)
};

// Walks the attributes strictly: mnl_attr_parse() stops silently at the first
// impossible length, which would turn a damaged message into a packet with
// missing attributes. Also picks up the packet id early, so that a message
// damaged after its header still gets a verdict, and fills `table` (indexed
// by type, the last attribute of a type wins) as nfq_nlmsg_parse() would.
WalkResult StrictWalk(const std::uint8_t* attrs, std::size_t size, bool cut, PacketView& out,
                      ParseResult& result, AttrTable& table) noexcept {
  WalkResult walk;
  std::size_t offset = 0;
  while (offset < size) {
    const std::size_t remaining = size - offset;
    if (remaining < sizeof(nlattr)) {
      walk.status = cut ? ParseStatus::kTruncated : ParseStatus::kBadLength;
      return walk;
    }
    nlattr header;
    std::memcpy(&header, attrs + offset, sizeof header);
    if (header.nla_len < sizeof(nlattr)) {
      walk.status = ParseStatus::kBadLength;
      return walk;
    }
    if (header.nla_len > remaining) {
      walk.status = cut ? ParseStatus::kTruncated : ParseStatus::kBadLength;
      return walk;
    }
    const std::uint16_t type = header.nla_type & NLA_TYPE_MASK;
    const std::size_t payload = header.nla_len - NLA_HDRLEN;
    if (type == NFQA_PACKET_HDR && !result.has_id && payload >= kPacketHdrSize) {
      ReadPacketHdr(attrs + offset + NLA_HDRLEN, out, result);
    }
    if (type < table.size()) {
      const std::size_t exact = ExactPayloadSize(type);
      if (exact != 0 && payload != exact) walk.wrong_size = true;
      table.Set(type, attrs + offset + NLA_HDRLEN, payload);
    }
    offset += NLA_ALIGN(header.nla_len);
  }
  return walk;
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
  // Copied from a constant rather than assigned a temporary: GCC turns the
  // assignment into a `rep stos`, slow to start on short runs, and this
  // into a few vector stores.
  static constexpr PacketView kEmpty{};
  static_assert(std::is_trivially_copyable_v<PacketView>);
  std::memcpy(&out, &kEmpty, sizeof out);
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

  AttrTable attrs;
  const WalkResult walk = StrictWalk(message.data() + kAttrsOffset, available - kAttrsOffset, cut,
                                     out, result, attrs);
  if (walk.status != ParseStatus::kOk) {
    result.status = walk.status;
    return result;
  }
  if (cut) {
    result.status = ParseStatus::kTruncated;
    return result;
  }
  if (walk.wrong_size) {
    // An attribute of a known type has the wrong size for it.
    result.status = ParseStatus::kBadLength;
    return result;
  }

  if (attrs[NFQA_PACKET_HDR].data() == nullptr) {
    result.status = ParseStatus::kMissingPacketHdr;
    return result;
  }
  auto hdr = attrs[NFQA_PACKET_HDR];
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
  // A string of the label's length (nla_put of secctx, seclen in the kernel),
  // not the u32 nfq_nlmsg_parse() expects for it.
  out.secctx = attrs[NFQA_SECCTX];

  auto ts = attrs[NFQA_TIMESTAMP];
  if (ts.size() >= 16) {
    const std::uint64_t sec = LoadBe64(ts.data());
    const std::uint64_t usec = LoadBe64(ts.data() + 8);
    out.has_timestamp = true;
    out.timestamp_ns = static_cast<std::int64_t>(sec * 1'000'000'000ull + usec * 1'000ull);
  }

  auto hw = attrs[NFQA_HWADDR];
  if (hw.size() == sizeof(nfqnl_msg_packet_hw)) {
    const std::size_t len =
        std::min<std::size_t>(LoadBe16(hw.data()), sizeof(nfqnl_msg_packet_hw::hw_addr));
    out.hw_addr = hw.subspan(offsetof(nfqnl_msg_packet_hw, hw_addr), len);
  }

  out.payload = attrs[NFQA_PAYLOAD];
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
  if (attrs[NFQA_CT].data() != nullptr) {
    out.has_ct = true;
    // The table entry only says the nest is at least an attribute header;
    // walk its members with the same length checks as the outer walk.
    auto nest = attrs[NFQA_CT];
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
